"""The run life-cycle every task family goes through, in the same order:

    parse (TrlParser; multi-rank CPU fix) -> claim the push from Trainer -> seed -> refuse what cannot be
    honoured + check the model exists -> data (validated before anything is written) -> fit (model through
    affectlab.models, PEFT, Trainer, train) -> evaluate -> stage: model, family files, train_results.json,
    eval_results.json (one schema), model card -> atomic move into output_dir -> result records (one per
    evaluated split) -> push if asked.

`run_task(task_cls, script_args, training_args, model_args)` is what `scripts/<family>.py` and
`affectlab train <family>` call; `parse_task_args(task_cls, argv)` parses a recipe + CLI overrides.

Several seeds (`--seeds 1337,1338,1339`, or `seeds: [...]` in a recipe; every family): the life-cycle runs
once per seed, each in `<output_dir>/seed-<n>` with its own model, card, eval_results.json and result records
(each carrying its seed and the shared `run_group` id; their model id is `local/<output_dir name>` until
pushed), then `<output_dir>/seeds_results.json` holds, per split and metric, the mean, the sample standard
deviation, n and every seed's value, and `seeds_report.md` the same as a card section (also printed).
Pushing several seeds needs `--push_seed N`: that seed's model is pushed (one model per repo, as an HF user
expects), with the over-seeds section added to its card; the other seeds stay local. Without `--push_seed` a
push with several seeds is refused before anything runs.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

logger = logging.getLogger("affectlab.run")
STAGING = ".final-staging"


@dataclass
class RunResult:
    output_dir: Path
    results: dict                       # {split: {metric: value}} (eval_results.json "results")
    eval_results: dict                  # the whole eval_results.json payload
    records: list[str] = field(default_factory=list)   # where the result records were written
    pushed: object = None               # affectlab.hub.PushResult when pushed
    seed_runs: dict = field(default_factory=dict)       # several seeds: {seed: RunResult of <output_dir>/seed-<n>}


def make_parser(task_cls):
    from trl import TrlParser

    return TrlParser(task_cls.dataclass_types())


def parse_task_args(task_cls, argv: list[str] | None = None):
    """(script_args, training_args, model_args) from `--config recipe.yaml` + CLI flags, CPU-DDP aware."""
    from affectlab.configs import parse_script_args

    argv = resolve_recipe_argument(argv)
    parsed = parse_script_args(make_parser(task_cls), argv)
    check_seed_flags(parsed[0], argv)
    return parsed


def check_seed_flags(script_args, argv: list[str]) -> None:
    """An explicit `--seed N` on the command line must be one of `--seeds` (else: which one was meant?)."""
    from affectlab.errors import ArgumentError

    seeds = getattr(script_args, "seeds", None)
    explicit = None
    for i, arg in enumerate(argv or []):
        if arg == "--seed" and i + 1 < len(argv):
            explicit = argv[i + 1]
        elif arg.startswith("--seed="):
            explicit = arg.split("=", 1)[1]
    if seeds and explicit is not None and str(explicit).strip() not in {str(s) for s in seeds}:
        raise ArgumentError("seed", f"--seed {explicit} conflicts with --seeds {','.join(map(str, seeds))}; "
                                    f"give only --seeds (--seeds {explicit} for one run with that seed)")


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
    """Run one family's training from parsed arguments; see the module docstring for the steps. With several
    `seeds`, once per seed and then the aggregate (`run_seeds`)."""
    seeds = getattr(script_args, "seeds", None)
    if seeds and len(seeds) > 1:
        return run_seeds(task_cls, script_args, training_args, model_args)
    if seeds:
        training_args.seed = seeds[0]
    return run_once(task_cls, script_args, training_args, model_args)


def run_once(task_cls, script_args, training_args, model_args, *, push_wanted: bool | None = None,
             token: str | None = None, run_group: dict | None = None, after_checks=None,
             before_publish=None) -> RunResult:
    """One run of the life-cycle. `run_seeds` passes the push decision and token it took, the run group,
    `after_checks()` (called once the data and model checks passed) and `before_publish(task, payload)`."""
    from transformers import set_seed

    from affectlab.hub import claim_push
    from affectlab.models import check_model_available, resolve_model_name

    configure_logging()
    claimed = claim_push(training_args)
    push_wanted = claimed if push_wanted is None else push_wanted
    token = take_token(training_args) or token
    set_seed(training_args.seed)
    task = task_cls(script_args, training_args, model_args)
    task.push_token = token
    task.run_group = run_group
    task.before_publish = before_publish
    task.check_options()
    check_output_dir(task)
    check_model_available(resolve_model_name(model_args.model_name_or_path), model_args.model_revision)

    data = task.load_data()
    if after_checks is not None:
        after_checks()
    clear_output_dir(task)
    fit = task.fit(data)
    evaluations = task.evaluate(fit, data)
    return finish_run(task, data, fit, evaluations, push_wanted)


SEEDS_RESULTS = "seeds_results.json"
SEEDS_REPORT = "seeds_report.md"
SEEDS_SCHEMA = "affectlab.seeds/1"


def seed_folder(output_dir: Path, seed: int) -> Path:
    return Path(output_dir) / f"seed-{seed}"


def run_seeds(task_cls, script_args, training_args, model_args) -> RunResult:
    """The life-cycle once per seed (`<output_dir>/seed-<n>`), then mean ± sd over the seeds in output_dir.

    Refused before anything runs: `--push_to_hub` without `--push_seed`, `--push_seed` without
    `--push_to_hub`, and resuming (a checkpoint belongs to one seed: resume that seed's folder alone)."""
    from affectlab.errors import ArgumentError
    from affectlab.hub import claim_push
    from affectlab.io import atomic_write_json

    seeds = list(script_args.seeds)
    group = Path(training_args.output_dir)
    push_wanted = claim_push(training_args)
    push_seed = getattr(script_args, "push_seed", None)
    if push_wanted and push_seed is None:
        raise ArgumentError("push_seed", f"--push_to_hub with {len(seeds)} seeds ({','.join(map(str, seeds))}) "
                                         "pushes one model: name its seed with --push_seed N (its card carries the "
                                         "mean ± sd over every seed)")
    if push_seed is not None and not push_wanted:
        raise ArgumentError("push_seed", "--push_seed names the seed to push, but --push_to_hub is not set")
    if training_args.resume_from_checkpoint not in (None, False) and str(training_args.resume_from_checkpoint).lower() != "false":
        raise ArgumentError("resume_from_checkpoint", f"cannot resume {len(seeds)} seeds at once; resume one seed's "
                                                      f"folder ({group}/seed-<n>) with --seeds <n>")
    token = take_token(training_args)
    check_output_dir(SimpleNamespace(training_args=training_args, args=script_args))
    run_group = {"id": f"{group.name}-{uuid.uuid4().hex[:12]}", "name": group.name, "seeds": seeds}
    order = [s for s in seeds if s != push_seed] + ([push_seed] if push_seed is not None else [])
    payloads: dict[int, dict] = {}
    runs: dict[int, RunResult] = {}

    def clear_group():
        if training_args.process_index == 0 and group.is_dir():
            for item in group.iterdir():
                shutil.rmtree(item) if item.is_dir() and not item.is_symlink() else item.unlink()

    def before_publish(task, payload):
        payloads[task.training_args.seed] = payload
        text = write_seed_aggregate(group, run_group, {s: payloads[s] for s in seeds if s in payloads})
        card = Path(task.training_args.output_dir) / "README.md"
        card.write_text(card.read_text(encoding="utf-8").rstrip("\n") + "\n\n" + text, encoding="utf-8")

    for i, seed in enumerate(order):
        args_i, model_i = copy.deepcopy(script_args), copy.deepcopy(model_args)
        train_i = copy.deepcopy(training_args)
        train_i.seed, train_i.output_dir = seed, str(seed_folder(group, seed))
        if train_i.run_name in (None, str(group)):
            train_i.run_name = f"{group.name}-seed-{seed}"
        pushing = push_wanted and seed == push_seed
        if pushing:
            train_i.hub_model_id = training_args.hub_model_id or group.name
        logger.info("seed %s (%d of %d) -> %s", seed, i + 1, len(seeds), train_i.output_dir)
        run = run_once(task_cls, args_i, train_i, model_i, push_wanted=pushing, token=token, run_group=run_group,
                       after_checks=clear_group if i == 0 else None, before_publish=before_publish if pushing else None)
        runs[seed] = run
        payloads[seed] = run.eval_results
    result = RunResult(output_dir=group, results={}, eval_results={}, seed_runs={s: runs[s] for s in seeds if s in runs})
    if training_args.process_index == 0:
        ordered = {s: payloads[s] for s in seeds}
        text = write_seed_aggregate(group, run_group, ordered)
        print(text, end="", flush=True)
        result.eval_results = json.loads((group / SEEDS_RESULTS).read_text(encoding="utf-8"))
        result.results = {split: {k: v["mean"] for k, v in metrics.items()}
                          for split, metrics in result.eval_results["results"].items()}
        result.records = [p for s in seeds for p in runs[s].records]
        result.pushed = runs[push_seed].pushed if push_seed is not None else None
        if result.records:
            atomic_write_json(group / RECORDS_INDEX, {"records": [str(Path(p).resolve()) for p in result.records]})
    return result


def seed_aggregate(payloads: dict[int, dict], run_group: dict | None = None) -> dict:
    """Mean, sample standard deviation (ddof 1; None for one seed), n and the per-seed values of every scalar
    metric of every split, from the seeds' eval_results.json payloads ({seed: payload}, in seed order)."""
    import numpy as np

    first = next(iter(payloads.values()))
    results: dict[str, dict] = {}
    for split in first["results"]:
        metrics = {}
        for key in first["results"][split]:
            if key == "num_examples":
                continue
            values = {str(s): p["results"].get(split, {}).get(key) for s, p in payloads.items()}
            numbers = [float(v) for v in values.values() if isinstance(v, (int, float)) and not isinstance(v, bool)]
            if not numbers:
                continue
            arr = np.asarray(numbers, dtype=float)
            metrics[key] = {"mean": float(arr.mean()), "sd": float(arr.std(ddof=1)) if len(arr) > 1 else None,
                            "n": len(arr), "values": values}
        results[split] = metrics
    protocol = {k: first[k] for k in ("threshold_policy",) if k in first}
    return {"schema": SEEDS_SCHEMA, "family": first["family"], "task": first["task"],
            "dataset": {k: first["dataset"].get(k) for k in ("name", "config", "hub_id")},
            "model": first["model"], "run_group": run_group, "seeds": [int(s) for s in payloads],
            "runs": {str(s): f"seed-{s}" for s in payloads}, "protocol": protocol, "results": results,
            "num_examples": {split: first["results"][split].get("num_examples") for split in first["results"]}}


def seed_report(aggregate: dict) -> str:
    """The aggregate as a markdown section (the group folder's report, the pushed seed's card)."""
    from affectlab.registry import is_known_metric, metric_info

    seeds = aggregate["seeds"]
    shown = list(dict.fromkeys([aggregate["task"]["primary_metric"], *aggregate["task"].get("card_metrics", [])]))
    lines = [f"## Results over {len(seeds)} seeds", "",
             f"Mean ± sample standard deviation over seeds {', '.join(map(str, seeds))} (n = {len(seeds)}); each seed "
             "is a separate training run (its own initialisation, data order and, where the recipe samples rows, "
             "its own sample).", ""]
    policy = (aggregate.get("protocol") or {}).get("threshold_policy")
    if isinstance(policy, dict) and policy.get("name"):
        lines += [f"Threshold policy: `{policy['name']}`"
                  + ("; `macro_f1_tuned` tunes thresholds on the split itself (optimistic, for comparison)."
                     if policy["name"] in ("heldout_train", "crossfit") else "."), ""]
    lines += ["| split | metric | mean ± sd | " + " | ".join(f"seed {s}" for s in seeds) + " |",
              "|---|---|---|" + "---|" * len(seeds)]
    for split, metrics in aggregate["results"].items():
        keys = [k for k in shown if k in metrics] + [k for k in metrics if k.endswith("_tuned") and k not in shown]
        for key in keys:
            m = metrics[key]
            name = metric_info(key).display if is_known_metric(key) else key
            sd = "–" if m["sd"] is None else f"{m['sd']:.4f}"
            cells = " | ".join("–" if m["values"].get(str(s)) is None else f"{m['values'][str(s)]:.4f}" for s in seeds)
            lines.append(f"| {split} | {name} | {m['mean']:.4f} ± {sd} | {cells} |")
    return "\n".join(lines) + "\n"


def write_seed_aggregate(group: Path, run_group: dict | None, payloads: dict[int, dict]) -> str:
    """`seeds_results.json` and `seeds_report.md` into the group folder; returns the report's text."""
    from affectlab.io import atomic_write_json, atomic_write_text

    aggregate = seed_aggregate(payloads, run_group)
    text = seed_report(aggregate)
    atomic_write_json(Path(group) / SEEDS_RESULTS, aggregate)
    atomic_write_text(Path(group) / SEEDS_REPORT, text)
    return text


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
                                     extra={**task.extra_results(fit, data, evaluations),
                                            **({"run_group": task.run_group} if getattr(task, "run_group", None) else {})})
    except EvalResultsError as err:
        if "primary metric" in str(err):  # e.g. a constant prediction on too few rows: report no number at all
            raise UserError(f"the run cannot report its primary metric ({err}); evaluate on more rows "
                            "(--max_eval_samples) or train longer — nothing was written to the output folder") from None
        raise
    run_group = getattr(task, "run_group", None)
    repo_id = training_args.hub_model_id or f"<user>/{run_group['name'] if run_group else output_dir.name}"
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
        if getattr(task, "before_publish", None) is not None:
            task.before_publish(task, payload)
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
    run_group = getattr(task, "run_group", None)
    repo_id = pushed.repo_id if pushed else local_model_id(output_dir.parent if run_group else output_dir)
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
            primary_metric=task.primary_metric, label_names=ev.label_names,
            protocol=task.record_protocol(split), run_group=run_group)
        path = save_result(record, task.args.results_location)
        print(f"result record: {path}", flush=True)
        paths.append(path)
    return paths


def _plain_args(args) -> dict:
    import dataclasses

    out = dataclasses.asdict(args) if dataclasses.is_dataclass(args) else dict(vars(args))
    return json.loads(json.dumps(out, default=str))
