"""Result records: one evaluation of one model on one split, with provenance, for the leaderboard.

* `result_record(...)` builds one evaluation result with provenance (model repo + revision, base model,
  dataset name/config/split + fingerprint of the evaluated rows, seed, config hash, library versions,
  hardware, date; the evaluation `protocol` and the multi-seed `run_group` where they apply) and the
  per-example predictions the leaderboard bootstraps from (class ids, 0/1 rows,
  regression values, or per-example scores: never the rows' text).
* `save_result(record, results=...)` appends it as `<org>/<model>/results_<UTC timestamp>.json` to a local
  folder (the default: `$AFFECTLAB_RESULTS` or `./results`) or to a results dataset repo
  (`hf://datasets/<org>/<name>`). A file is never overwritten: locally it is created with an exclusive
  link, on the Hub the commit is made on top of the head it checked (`parent_commit`) and retried on a
  conflict, so concurrent writers all land. `load_results` reads them back.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import re
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable

from affectlab.hub import HubAuthError, HubError, HubPushError, _is_transient, _mapped, get_token, with_retries

RESULTS_ENV = "AFFECTLAB_RESULTS"
HF_RESULTS_PREFIX = "hf://datasets/"
RESULT_SCHEMA = "affectlab.result/1"


# ---------------------------------------------------------------------------------------------------------
def utc_now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def fingerprint_rows(rows: Iterable[Any]) -> str:
    """sha256 over the evaluated rows in order (dict rows as canonical JSON): same rows, same fingerprint."""
    h = hashlib.sha256()
    n = 0
    for row in rows:
        h.update(json.dumps(row, sort_keys=True, ensure_ascii=False, default=str).encode())
        h.update(b"\n")
        n += 1
    return f"sha256:{h.hexdigest()}:{n}"


def config_hash(config: Any) -> str:
    """sha256 of a config (dict, dataclass, or object with `to_dict`) as canonical JSON, secrets removed."""
    import dataclasses

    if hasattr(config, "to_dict"):
        config = config.to_dict()
    elif dataclasses.is_dataclass(config):
        config = dataclasses.asdict(config)
    config = _drop_secrets(config)
    return "sha256:" + hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def _drop_secrets(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _drop_secrets(v) for k, v in obj.items() if not re.search(r"token|secret|password", str(k), re.I)}
    if isinstance(obj, (list, tuple)):
        return [_drop_secrets(v) for v in obj]
    return obj


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("affectlab", "torch", "transformers", "datasets", "huggingface_hub", "evaluate", "peft",
                 "accelerate", "scikit-learn", "numpy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def hardware() -> dict[str, Any]:
    info: dict[str, Any] = {"platform": platform.platform(), "machine": platform.machine(), "cpu_count": os.cpu_count()}
    try:
        import torch

        info["cuda"] = torch.cuda.is_available()
        if info["cuda"]:
            info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except ImportError:  # pragma: no cover
        pass
    return info


def result_record(*, model_repo: str, revision: str | None, task: str, dataset: str, split: str, metrics: dict,
                  y_true=None, y_pred=None, scores: dict[str, list] | None = None,
                  dataset_rows: Iterable[Any] | None = None, fingerprint: str | None = None,
                  dataset_config: str | None = None, base_model: str | None = None, method: str | None = None,
                  family: str | None = None, seed: int | None = None, config: Any = None,
                  primary_metric: str | None = None, task_type: str = "text-classification",
                  label_names: list[str] | None = None, date: _dt.datetime | None = None,
                  protocol: dict | None = None, run_group: dict | None = None) -> dict:
    """One evaluation result with provenance and per-example predictions.

    `y_true`, `y_pred`: class ids, 0/1 lists per example (multi-label) or value lists (regression); or,
    where predictions are text (span extraction, LLM answers), `scores`: per-example metric values
    (`{"f1": [...], "exact": [...]}`) whose mean is the metric. Never the rows' text: the evaluated rows
    are identified by `fingerprint` (or `dataset_rows`, hashed here). `protocol`: how the split was evaluated
    beyond its name (`threshold_policy`, ...); `run_group`: the multi-seed run this record is one seed of
    (`{"id", "name", "seeds"}`: records sharing the id are one model trained with several seeds)."""
    if (y_true is None) != (y_pred is None):
        raise ValueError("give both y_true and y_pred, or neither")
    if y_true is not None and len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} examples, y_pred {len(y_pred)}")
    if y_true is None and not scores:
        raise ValueError("a result record needs per-example predictions (y_true/y_pred) or per-example scores")
    num_rows = len(y_true) if y_true is not None else len(next(iter(scores.values())))
    if scores and any(len(v) != num_rows for v in scores.values()):
        raise ValueError("per-example scores must all have one value per evaluated row")
    date = date or utc_now()
    primary_metric = primary_metric or next(iter(metrics))
    if primary_metric not in metrics:
        raise ValueError(f"primary metric {primary_metric!r} is not among {sorted(metrics)}")
    if fingerprint is None and dataset_rows is not None:
        fingerprint = fingerprint_rows(dataset_rows)
    predictions: dict[str, Any] = {}
    if y_true is not None:
        predictions.update(y_true=_plain(y_true), y_pred=_plain(y_pred))
    if scores:
        predictions["scores"] = {k: _plain(v) for k, v in scores.items()}
    record = {
        "schema": RESULT_SCHEMA,
        "model": {"repo_id": model_repo, "revision": revision, "base_model": base_model, "method": method},
        "task": {"name": task, "type": task_type, "family": family, "primary_metric": primary_metric,
                 "label_names": label_names},
        "dataset": {"name": dataset, "config": dataset_config, "split": split, "num_rows": num_rows,
                    "fingerprint": fingerprint},
        "metrics": {k: float(v) for k, v in metrics.items()},
        "predictions": predictions,
        "seed": seed,
        "config_hash": config_hash(config) if config is not None else None,
        "versions": library_versions(),
        "hardware": hardware(),
        "date": date.isoformat(),
    }
    if protocol:
        record["protocol"] = dict(protocol)
    if run_group:
        record["run_group"] = dict(run_group)
    return record


def attach_revision(paths, repo_id: str, revision: str) -> list[str]:
    """Name the pushed model in this run's own local records (written before the push under a local id):
    each record gets the repo id and revision and moves to `<org>/<model>/` beside the model's other results.
    Returns the new paths."""
    from affectlab.io import atomic_write_text

    moved = []
    for path in map(Path, paths):
        if not path.is_file():
            continue
        record = json.loads(path.read_text(encoding="utf-8"))
        record["model"]["repo_id"], record["model"]["revision"] = repo_id, revision
        root = path.parent.parent.parent
        target = root / result_path(record)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() and target != path:
            target = target.with_name(target.stem + f"-{revision[:8]}.json")
        atomic_write_text(target, json.dumps(record, indent=1, sort_keys=True) + "\n")
        if target != path:
            path.unlink()
            try:
                path.parent.rmdir()
            except OSError:
                pass
        moved.append(str(target))
    return moved


def _plain(values) -> list:
    import numpy as np

    return np.asarray(values).tolist()


def result_path(record: dict, when: _dt.datetime | None = None) -> str:
    """`<org>/<model>/results_<UTC timestamp>.json` (models without an org go under `local/`)."""
    repo = record["model"]["repo_id"]
    org, _, name = repo.rpartition("/") if "/" in repo else ("local", "", repo)
    when = (when or _dt.datetime.fromisoformat(record["date"])).astimezone(_dt.timezone.utc)
    stamp = when.strftime("%Y-%m-%dT%H-%M-%S.%fZ")
    safe = lambda s: re.sub(r"[^A-Za-z0-9_.-]+", "_", s)  # noqa: E731
    return f"{safe(org)}/{safe(name)}/results_{stamp}.json"


def default_results_location() -> str:
    return os.environ.get(RESULTS_ENV) or "results"


def save_result(record: dict, results: str | os.PathLike | None = None, *, token: str | None = None,
                retries: int = 5, backoff: float = 0.5, endpoint: str | None = None) -> str:
    """Append `record` to a results folder or `hf://datasets/<org>/<name>`; never overwrite. Returns its path."""
    results = str(results or default_results_location())
    text = json.dumps(record, indent=1, sort_keys=True) + "\n"
    token_for_check = get_token(token) if results.startswith(HF_RESULTS_PREFIX) else (token or os.environ.get("HF_TOKEN"))
    if token_for_check and token_for_check in text:
        raise HubError("refusing to write a result that contains the Hub token")
    if results.startswith(HF_RESULTS_PREFIX):
        return _save_result_to_repo(record, text, results[len(HF_RESULTS_PREFIX):].strip("/"), token_for_check,
                                    retries, backoff, endpoint)
    root = Path(results)
    when = _dt.datetime.fromisoformat(record["date"])
    while True:
        target = root / result_path(record, when)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        try:
            os.link(tmp, target)  # atomic and exclusive: fails if the name exists
            return str(target)
        except FileExistsError:
            when += _dt.timedelta(microseconds=1)
        finally:
            os.unlink(tmp)


def _save_result_to_repo(record, text, repo_id, token, retries, backoff, endpoint) -> str:
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.errors import HfHubHTTPError

    if not token:
        raise HubAuthError("no Hugging Face token: set HF_TOKEN or run `hf auth login` to push results "
                           f"to {repo_id} (or save them to a local folder)")
    api = HfApi(endpoint=endpoint, token=token)
    with_retries(lambda: api.create_repo(repo_id, repo_type="dataset", exist_ok=True), what=f"creating {repo_id}",
                 retries=retries, backoff=backoff, token=token)
    when = _dt.datetime.fromisoformat(record["date"])
    for attempt in range(50):
        head = with_retries(lambda: api.dataset_info(repo_id).sha, what=f"reading {repo_id}", retries=retries,
                            backoff=backoff, token=token)
        path = result_path(record, when)
        exists = with_retries(lambda: api.get_paths_info(repo_id, [path], repo_type="dataset", revision=head),
                              what=f"reading {repo_id}", retries=retries, backoff=backoff, token=token)
        if exists:
            if getattr(exists[0], "blob_id", None) == _git_blob_sha1(text.encode()):
                return f"{HF_RESULTS_PREFIX}{repo_id}/{path}"  # an earlier attempt landed (its answer was lost)
            when += _dt.timedelta(microseconds=1)
            continue
        try:  # not wrapped in with_retries: a lost answer must not make a duplicate commit
            api.create_commit(repo_id, repo_type="dataset", parent_commit=head,
                              operations=[CommitOperationAdd(path, text.encode())],
                              commit_message=f"result {record['model']['repo_id']} on {record['dataset']['name']}")
            return f"{HF_RESULTS_PREFIX}{repo_id}/{path}"
        except Exception as exc:  # noqa: BLE001
            status = exc.response.status_code if isinstance(exc, HfHubHTTPError) and exc.response is not None else None
            if status in (409, 412):  # someone committed since we read the head: read it again and retry
                time.sleep(backoff * (0.5 + (os.getpid() % 7) / 7))
                continue
            if not _is_transient(exc) or attempt >= retries:
                raise _mapped(exc, f"pushing a result to {repo_id}", token) from None
            time.sleep(backoff)
    raise HubPushError(f"pushing a result to {repo_id}: the branch kept moving; try again")


def _git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def load_results(results: str | os.PathLike | None = None, *, token: str | None = None,
                 endpoint: str | None = None) -> list[dict]:
    """All result records of a folder or `hf://datasets/<org>/<name>` (each with its `_path`)."""
    results = str(results or default_results_location())
    out = []
    if results.startswith(HF_RESULTS_PREFIX):
        from huggingface_hub import snapshot_download

        repo_id = results[len(HF_RESULTS_PREFIX):].strip("/")
        local = snapshot_download(repo_id, repo_type="dataset", token=get_token(token), endpoint=endpoint,
                                  allow_patterns=["*/*/results_*.json"])
        root = Path(local)
    else:
        root = Path(results)
    for f in sorted(root.glob("*/*/results_*.json")):
        record = json.loads(f.read_text(encoding="utf-8"))
        if record.get("schema") == RESULT_SCHEMA:
            record["_path"] = str(f.relative_to(root))
            out.append(record)
    return out


