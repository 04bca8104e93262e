"""The SFT report (affectlab.tasks.sft.format_report): an undefined correlation (a model that answers one
value for every text) reads n/a with the reason, never a bare nan."""

from types import SimpleNamespace

from affectlab.tasks.sft import format_report


def test_undefined_correlation_is_named_not_nan():
    args = SimpleNamespace(dataset_name="emobank", dataset_config="aggregated", persona_mode="personalized_instruction",
                           split_strategy="predefined", eval_split="validation")
    base = {"scores": {"num_prompts": 48, "usable_rate": 0.6042, "pearson_V": 0.1241, "pearson_A": -0.2474}}
    tuned = {"scores": {"num_prompts": 48, "usable_rate": 1.0, "pearson_V": -0.1709, "pearson_A": float("nan")}}
    text = format_report(base, tuned, args, ["V", "A"], "smollm2-135m-instruct", 192, ["comparison.png"])
    assert "| pearson_A | -0.2474 | n/a |" in text and "| usable_rate | 0.6042 | 1.0000 |" in text
    assert "nan" not in text and "the same value for every text" in text and "![comparison.png](comparison.png)" in text
