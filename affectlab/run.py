"""The run life-cycle every task family goes through, in the same order:

    parse (TrlParser; multi-rank CPU fix) -> claim the push from Trainer -> seed -> refuse what cannot be
    honoured + check the model exists -> data (validated before anything is written) -> fit (model through
    affectlab.models, PEFT, Trainer, train) -> evaluate -> stage: model, family files, train_results.json,
    eval_results.json (one schema), model card -> atomic move into output_dir -> result records (one per
    evaluated split) -> push if asked.

`run_task(task_cls, script_args, training_args, model_args)` is what `scripts/<family>.py` and
`affectlab train <family>` call; `parse_task_args(task_cls, argv)` parses a recipe + CLI overrides.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger("affectlab.run")
STAGING = ".final-staging"


@dataclass
class RunResult:
    output_dir: Path
    results: dict                       # {split: {metric: value}} (eval_results.json "results")
    eval_results: dict                  # the whole eval_results.json payload
    records: list[str] = field(default_factory=list)   # where the result records were written
    pushed: object = None               # affectlab.hub.PushResult when pushed


def make_parser(task_cls):
    from trl import TrlParser

    return TrlParser(task_cls.dataclass_types())


def parse_task_args(task_cls, argv: list[str] | None = None):
    """(script_args, training_args, model_args) from `--config recipe.yaml` + CLI flags, CPU-DDP aware."""
    from affectlab.configs import parse_script_args

    return parse_script_args(make_parser(task_cls), resolve_recipe_argument(argv))


def resolve_recipe_argument(argv: list[str] | None) -> list[str] | None:
    """`--config NAME.yaml` that is not a file here names a packaged recipe (`affectlab/_resources/recipes`)."""
    import sys

    from affectlab.paths import resource_path

    args = list(sys.argv[1:] if argv is None else argv)
    for i, arg in enumerate(args):
        value, prefix = (args[i + 1], None) if arg == "--config" and i + 1 < len(args) else (
            (arg.split("=", 1)[1], "--config=") if arg.startswith("--config=") else (None, None))
        if value is None or Path(value).exists():
            continue
        try:
            found = str(resource_path("recipes", value))
        except FileNotFoundError:
            from affectlab.errors import ArgumentError

            raise ArgumentError("config", f"no recipe {value!r} here or among the packaged recipes") from None
        if prefix:
            args[i] = prefix + found
        else:
            args[i + 1] = found
    return args


def configure_logging() -> None:
    import transformers

    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    transformers.utils.logging.set_verbosity_warning()


def run_task(task_cls, script_args, training_args, model_args) -> RunResult:
    """Run one family's training from parsed arguments; see the module docstring for the steps."""
    from transformers import set_seed

    from affectlab.hub import claim_push
    from affectlab.models import check_model_available, resolve_model_name

    configure_logging()
    push_wanted = claim_push(training_args)
    token = take_token(training_args)
    set_seed(training_args.seed)
    task = task_cls(script_args, training_args, model_args)
    task.push_token = token
    task.check_options()
    check_output_dir(task)
    check_model_available(resolve_model_name(model_args.model_name_or_path), model_args.model_revision)

    data = task.load_data()
    clear_output_dir(task)
    fit = task.fit(data)
    evaluations = task.evaluate(fit, data)
    return finish_run(task, data, fit, evaluations, push_wanted)


def take_token(training_args) -> str | None:
    """Remove `hub_token` from the arguments before anything saves them (training_args.bin, cards, records)."""
    token = getattr(training_args, "hub_token", None)
    if token:
        training_args.hub_token = None
    return token or None


def check_output_dir(task) -> None:
    """Refuse a non-empty output_dir holding another run, unless resuming it or asked to overwrite it.

    `--resume_from_checkpoint true` means the latest COMPLETE checkpoint in output_dir (incomplete ones, from
    a kill mid-write, are skipped with a warning; an error when there is none), see affectlab.checkpointing.
    """
    from affectlab.checkpointing import checkpoint_problem, latest_complete_checkpoint
    from affectlab.errors import ArgumentError

    training_args = task.training_args
    out = Path(training_args.output_dir)
    resume = training_args.resume_from_checkpoint
    if isinstance(resume, str) and resume.lower() in ("true", "latest"):
        last = latest_complete_checkpoint(out) if out.is_dir() else None
        if last is None:
            raise ArgumentError("resume_from_checkpoint", f"no complete checkpoint to resume in {out}")
        training_args.resume_from_checkpoint = last
    elif isinstance(resume, str) and resume.lower() == "false":
        training_args.resume_from_checkpoint = None
    elif resume and not Path(str(resume)).is_dir():
        raise ArgumentError("resume_from_checkpoint", f"{resume} is not a checkpoint folder")
    elif resume and checkpoint_problem(resume):
        raise ArgumentError("resume_from_checkpoint", f"{resume} is an incomplete checkpoint "
                                                      f"({checkpoint_problem(resume)}); pass true for the latest complete one")
    if training_args.resume_from_checkpoint or not out.is_dir() or not any(out.iterdir()):
        return
    if getattr(task.args, "overwrite_output_dir", False):
        return
    raise ArgumentError("output_dir", f"{out} is not empty (it holds another run); pass --overwrite_output_dir true "
                                      "to replace it, --resume_from_checkpoint true to continue it, or choose another folder")


def clear_output_dir(task) -> None:
    """With --overwrite_output_dir, remove the old run's files (after the data and model checks passed)."""
    out = Path(task.training_args.output_dir)
    if getattr(task.args, "overwrite_output_dir", False) and not task.training_args.resume_from_checkpoint and out.is_dir():
        if task.training_args.process_index == 0:
            for item in out.iterdir():
                shutil.rmtree(item) if item.is_dir() and not item.is_symlink() else item.unlink()


def _is_main(trainer) -> bool:
    return trainer is None or trainer.is_world_process_zero()


def _barrier(trainer) -> None:
    if trainer is not None:
        trainer.accelerator.wait_for_everyone()


def stage_outputs(task, data, fit, evaluations, staging: Path):
    """Family files, train_results.json, the eval_results payload (validated) and the card, into `staging`."""
    from affectlab.cards import run_card
    from affectlab.errors import UserError
    from affectlab.eval_results import EvalResultsError, build_eval_results
    from affectlab.io import atomic_write_json, atomic_write_text
    from affectlab.models import hub_model_id, peft_method

    training_args, model_args, trainer = task.training_args, task.model_args, fit.trainer
    output_dir = Path(training_args.output_dir)
    staging.mkdir(parents=True, exist_ok=True)
    task.save_artifacts(staging, fit, data, evaluations)
    log_history = trainer.state.log_history if trainer is not None else []
    atomic_write_json(staging / "train_results.json", {**fit.train_metrics, "train_rows": fit.train_rows,
                                                       "world_size": getattr(training_args, "world_size", 1),
                                                       "log_history": log_history})
    try:
        payload = build_eval_results(task, data, evaluations, base_model=model_args.model_name_or_path,
                                     base_model_hub_id=hub_model_id(model_args.model_name_or_path),
                                     method=peft_method(model_args), seed=training_args.seed,
                                     extra=task.extra_results(fit, data, evaluations))
    except EvalResultsError as err:
        if "primary metric" in str(err):  # e.g. a constant prediction on too few rows: report no number at all
            raise UserError(f"the run cannot report its primary metric ({err}); evaluate on more rows "
                            "(--max_eval_samples) or train longer — nothing was written to the output folder") from None
        raise
    repo_id = training_args.hub_model_id or f"<user>/{output_dir.name}"
    card = run_card(task, data=data, evaluations=evaluations, fit=fit, eval_payload=payload,
                    training_args=training_args, model_args=model_args, repo_id=repo_id,
                    context=task.card_context(fit, data, evaluations))
    card.save(str(staging / "README.md"))
    text = task.report(evaluations) if task.args.print_report else ""
    if text:
        atomic_write_text(staging / "report.txt", text)
    return payload, text


def finish_run(task, data, fit, evaluations, push_wanted: bool) -> RunResult:
    """Stage every output, move it into output_dir atomically, write result records, push."""
    from affectlab.io import atomic_write_json

    output_dir = Path(task.training_args.output_dir)
    staging = output_dir / STAGING
    trainer = fit.trainer
    if _is_main(trainer) and staging.exists():
        shutil.rmtree(staging)
    _barrier(trainer)
    task.save_model(fit, staging)
    result = RunResult(output_dir=output_dir, results={}, eval_results={})
    if _is_main(trainer):
        try:
            payload, text = stage_outputs(task, data, fit, evaluations, staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)  # nothing half-written: the staging folder goes
            raise
        # every file lands by rename; eval_results.json, the marker of a finished run, comes last
        for item in staging.iterdir():
            target = output_dir / item.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(item, target)
        staging.rmdir()
        atomic_write_json(output_dir / "eval_results.json", payload)
        if text:
            print(text, end="", flush=True)
        result.results, result.eval_results = payload["results"], payload
        result.records, result.pushed = record_and_publish(task, data, evaluations, payload, push_wanted)
    _barrier(trainer)
    return result


RECORDS_INDEX = "result_records.json"  # where this run's local result records are (never pushed)


def record_and_publish(task, data, evaluations, payload: dict, push_wanted: bool):
    """Result records first (a local folder: before the push, so a failed push loses nothing), then the push;
    a successful push adds the pushed repo id and revision to the local records. Records for a results
    dataset on the Hub are written after the push, naming the pushed revision. A failed push exits
    non-zero with one line ending in the command that pushes the run later."""
    import sys

    from affectlab.hub import HubAuthError, HubError
    from affectlab.io import atomic_write_json
    from affectlab.results import HF_RESULTS_PREFIX, attach_revision, default_results_location

    output_dir = Path(task.training_args.output_dir)
    location = str(task.args.results_location or default_results_location())
    local = not location.startswith(HF_RESULTS_PREFIX)
    records, pushed, failure = [], None, None
    if task.args.save_results and local:
        records = write_records(task, data, evaluations, payload, None)
        atomic_write_json(output_dir / RECORDS_INDEX, {"records": [str(Path(p).resolve()) for p in records]})
    if push_wanted:
        try:
            pushed = publish(task, output_dir)
        except HubError as err:
            failure = err
    if pushed is not None and records:
        records = attach_revision(records, pushed.repo_id, pushed.revision)
        atomic_write_json(output_dir / RECORDS_INDEX, {"records": records})
    if task.args.save_results and not local:
        records = write_records(task, data, evaluations, payload, pushed)
    if failure is not None:
        print(f"error: {failure}", file=sys.stderr, flush=True)
        sys.exit(2 if isinstance(failure, HubAuthError) else 1)
    return records, pushed


def publish(task, output_dir: Path):
    """Push the finished run folder once (affectlab.hub.push_run) with the token taken from the arguments."""
    from affectlab.hub import push_run

    training_args = task.training_args
    repo_id = training_args.hub_model_id or output_dir.name
    extra = [g.strip() for g in (getattr(task.args, "push_extra", None) or "").split(",") if g.strip()]
    pushed = push_run(output_dir, repo_id, token=getattr(task, "push_token", None), extra=extra,
                      predictions=bool(getattr(task.args, "push_predictions", False)),
                      private=bool(getattr(training_args, "hub_private_repo", False)),
                      commit_message=f"affectlab: {output_dir.name}")
    print(f"pushed {pushed.repo_id}@{pushed.revision}", flush=True)
    return pushed


def local_model_id(output_dir: Path) -> str:
    """The id a result record names for a model that was not pushed: `local/<output folder name>`."""
    return f"local/{output_dir.name}"


def write_records(task, data, evaluations, payload: dict, pushed) -> list[str]:
    """One leaderboard result record per evaluated split (per-example predictions or scores, no text)."""
    from affectlab.results import result_record, save_result

    training_args, model_args = task.training_args, task.model_args
    output_dir = Path(training_args.output_dir)
    repo_id = pushed.repo_id if pushed else local_model_id(output_dir)
    revision = pushed.revision if pushed else None
    config = {"script": _plain_args(task.args), "training": training_args.to_dict(), "model": _plain_args(model_args)}
    paths = []
    for split, ev in evaluations.items():
        metrics = {k: float(v) for k, v in payload["results"][split].items()
                   if k != "num_examples" and isinstance(v, (int, float)) and not isinstance(v, bool)}
        record = result_record(
            model_repo=repo_id, revision=revision, task=task.record_task, task_type=task.task_type,
            dataset=data.info.name, dataset_config=data.info.config, split=split, metrics=metrics,
            y_true=ev.y_true, y_pred=ev.y_pred, scores=ev.scores, fingerprint=ev.fingerprint,
            base_model=payload["model"]["base_model_hub_id"] or model_args.model_name_or_path,
            method=payload["model"]["method"], family=task.name, seed=training_args.seed, config=config,
            primary_metric=task.primary_metric, label_names=ev.label_names)
        path = save_result(record, task.args.results_location)
        print(f"result record: {path}", flush=True)
        paths.append(path)
    return paths


def _plain_args(args) -> dict:
    import dataclasses

    out = dataclasses.asdict(args) if dataclasses.is_dataclass(args) else dict(vars(args))
    return json.loads(json.dumps(out, default=str))
