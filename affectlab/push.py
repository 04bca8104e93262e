"""`affectlab push RUN_DIR --repo ORG/NAME`: push a finished run folder through `affectlab.hub.push_run`.

The same path `--push_to_hub` takes; prints one JSON line with the pinned commit sha. Exit code 2 for a
missing/refused token, 1 for other failures (the local folder is untouched either way).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from affectlab.hub import HubAuthError, HubError, push_run

    parser = argparse.ArgumentParser(prog="affectlab push", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--repo", required=True, help="<org>/<name> on the Hub")
    parser.add_argument("--private", action="store_true")
    parser.add_argument("--message", default=None)
    parser.add_argument("--extra", default="", help="comma-separated globs of other files to push (default: only the model, card and eval summary)")
    parser.add_argument("--predictions", action="store_true", help="push per-example prediction files too (refused for non-redistributable data)")
    parser.add_argument("--retries", type=int, default=3)
    parser.add_argument("--backoff", type=float, default=1.0)
    args = parser.parse_args(argv)
    try:
        result = push_run(args.run_dir, args.repo, private=args.private, commit_message=args.message,
                          retries=args.retries, backoff=args.backoff, predictions=args.predictions,
                          extra=[g.strip() for g in args.extra.split(",") if g.strip()])
    except HubAuthError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except HubError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    index = Path(args.run_dir) / "result_records.json"
    if index.is_file():  # the run's local result records now name the pushed model and revision
        from affectlab.results import attach_revision

        from affectlab.io import atomic_write_json

        moved = attach_revision(json.loads(index.read_text(encoding="utf-8"))["records"], result.repo_id, result.revision)
        atomic_write_json(index, {"records": moved})
    print(json.dumps({"repo_id": result.repo_id, "revision": result.revision, "url": result.url}), flush=True)
    return 0
