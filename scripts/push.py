"""Push a finished run folder (model or PEFT adapter + tokenizer + code + card + eval results) to the Hub.

    python scripts/push.py outputs/<run> --repo <org>/<name> [--private] [--message "..."]

Same as `affectlab push`: `affectlab.push.main` -> `affectlab.hub.push_run`, the path `--push_to_hub` takes.
"""

from affectlab.push import main

if __name__ == "__main__":
    from affectlab.cli import run_entry_point

    run_entry_point(main)
