"""Check the output folders of `make smoke`: each family wrote a card that `huggingface_hub.ModelCard.load`
parses with at least one model-index result, an eval_results.json in the one schema, and one result
record per evaluated split; the leaderboard's records cover every family.

    python -m affectlab.testing.smoke_check outputs/smoke [--families classifier nli span-qa regression sft]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

FOLDERS = {"classifier": "classifier", "nli": "nli", "span-qa": "span_qa", "regression": "regression", "sft": "sft"}


def check_run(folder: Path) -> tuple[list[str], dict]:
    """(problems, summary) of one run folder."""
    from huggingface_hub import ModelCard

    from affectlab.eval_results import EvalResultsError, validate_eval_results

    problems, summary = [], {}
    try:
        card = ModelCard.load(folder / "README.md")
        summary["model_index_results"] = len(card.data.eval_results or [])
        if not card.data.eval_results:
            problems.append(f"{folder}/README.md: no model-index result")
    except Exception as err:  # noqa: BLE001 - any failure to parse is the finding
        problems.append(f"{folder}/README.md: {type(err).__name__}: {err}")
    try:
        payload = validate_eval_results(json.loads((folder / "eval_results.json").read_text(encoding="utf-8")))
        summary["splits"] = sorted(payload["results"])
        summary["primary"] = {s: payload["results"][s].get(payload["task"]["primary_metric"]) for s in payload["results"]}
    except (OSError, ValueError, EvalResultsError) as err:
        problems.append(f"{folder}/eval_results.json: {err}")
        payload = None
    index = folder / "result_records.json"
    records = json.loads(index.read_text(encoding="utf-8"))["records"] if index.is_file() else []
    splits = sorted(json.loads(Path(p).read_text(encoding="utf-8"))["dataset"]["split"] for p in records if Path(p).is_file())
    summary["records"] = splits
    if payload is not None and splits != sorted(payload["results"]):
        problems.append(f"{folder}: result records for {splits}, evaluated splits {sorted(payload['results'])}")
    return problems, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--families", nargs="*", default=list(FOLDERS))
    args = parser.parse_args(argv)
    problems = []
    for family in args.families:
        found, summary = check_run(args.root / FOLDERS[family])
        problems += found
        print(f"{family:<11} {'ok' if not found else 'FAILED':<7} {json.dumps(summary, sort_keys=True)}")
    for line in problems:
        print(f"error: {line}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
