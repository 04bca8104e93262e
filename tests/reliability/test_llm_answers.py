"""LLM answer parsing, case by case: a clean parse is told apart from a repaired one, a value the parser
would have to invent is never used, and with several JSON objects the answer is the last complete one."""

from __future__ import annotations

import pytest

from affectlab.personas import LabelSet, parse_answer

VAD = LabelSet("vad", ("V", "A", "D"), 1.0, 5.0)

CASES = [
    # text, parsed, clean, schema_valid, usable, ambiguous, values
    ('{"V": 3.2, "A": 2.5, "D": 3.0}', True, True, True, True, False, [3.2, 2.5, 3.0]),
    ('{"V": 3.2, "A": 2.5, "D": 3', True, False, False, False, False, None),            # truncated: D may be 3.5
    ('{"V": 3.2, "A": 2.5, "D": 3.1,', True, False, False, True, False, [3.2, 2.5, 3.1]),  # truncated after D: complete
    ("{'V': 3.2, 'A': 2.5, 'D': 3.0}", True, False, False, True, False, [3.2, 2.5, 3.0]),  # repaired quotes
    ('Example: {"V": 1.0, "A": 1.0, "D": 1.0}. Answer: {"V": 4.0, "A": 3.5, "D": 2.0}',
     True, True, False, True, True, [4.0, 3.5, 2.0]),                                     # prompt example first
    ('{"V": 4.0, "A": 3.5, "D": 2.0} {"note": "confident"}', True, True, True, True, False, [4.0, 3.5, 2.0]),
    ('{"V": 4.0} then {"V": 2.0, "A": 2.0, "D": 2.0}', True, True, True, True, False, [2.0, 2.0, 2.0]),
]


@pytest.mark.parametrize("text,parsed,clean,valid,usable,ambiguous,values", CASES)
def test_answer_cases(text, parsed, clean, valid, usable, ambiguous, values):
    out = parse_answer(text, VAD)
    assert (out["parsed"], out["clean"], out["schema_valid"], out["usable"], out["ambiguous"]) == \
        (parsed, clean, valid, usable, ambiguous), out
    if values is None:
        assert out["values"] is None
    else:
        assert [out["values"][d] for d in "VAD"] == pytest.approx(values)
