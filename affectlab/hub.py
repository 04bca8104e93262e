"""The one publishing path to the Hugging Face Hub, and the results records the leaderboard reads.

* `push_run(run_dir, repo_id)` pushes a finished output folder (full model or PEFT adapter, tokenizer, the
  `custom_models` code files with a complete `auto_map`, the model card with its `model-index`, the
  `.eval_results/*.yaml` entries and `eval_results.json`) in one commit, pins the commit sha it created and
  records it in `<run_dir>/hub_push.json`. Connection drops and 5xx answers are retried with backoff; a
  missing token or a 401/403 raises `HubAuthError`, anything else that still fails raises `HubPushError`
  naming the local folder and the `scripts/push.py` command that re-pushes it. Local outputs are never
  touched by a failure, and the token never appears in messages, cards or written files.
* `result_record(...)` builds one evaluation result with provenance (model repo + revision, base model,
  dataset name/config/split + fingerprint of the evaluated rows, seed, config hash, library versions,
  hardware, date) and the per-example predictions the leaderboard bootstraps from; `save_result(record,
  results=...)` appends it as `<org>/<model>/results_<UTC timestamp>.json` to a local folder (the default,
  `$AFFECTLAB_RESULTS` or `results/`) or to a results dataset repo (`hf://datasets/<org>/<name>`). A file is
  never overwritten: locally it is created with an exclusive link, on the Hub the commit is made on top of
  the head it checked (`parent_commit`) and retried on a conflict, so concurrent writers all land.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from affectlab.io import atomic_write_json, atomic_write_text
from affectlab.paths import REPO_ROOT

RESULTS_ENV = "AFFECTLAB_RESULTS"
HF_RESULTS_PREFIX = "hf://datasets/"
PUSH_RECORD = "hub_push.json"
NEVER_PUSH = [PUSH_RECORD, ".final-staging/**", "checkpoint-*/**", "runs/**", "**/.*.tmp-*", "**/.*.old-*"]
RESULT_SCHEMA = "affectlab.result/1"


class HubError(RuntimeError):
    """A Hub operation failed; the message is safe to print (no token) and says what to do next."""


class HubAuthError(HubError):
    """No token, or the Hub answered 401/403."""


class HubPushError(HubError):
    """The push failed after retries; the local outputs are intact and can be re-pushed."""


# ---------------------------------------------------------------------------------------------------------
# secrets
# ---------------------------------------------------------------------------------------------------------
def get_token(token: str | None = None) -> str | None:
    """An explicit token, else `HF_TOKEN` / the saved login (huggingface_hub's lookup)."""
    if token:
        return token
    from huggingface_hub import get_token as hf_get_token

    return hf_get_token()


def redact(text: str, *secrets: str | None) -> str:
    """`text` with every secret (and anything shaped like an `hf_` token) replaced by `***`."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return re.sub(r"hf_[A-Za-z0-9]{8,}", "hf_***", text)


def assert_no_secret(paths: Iterable[str | os.PathLike], token: str | None) -> None:
    """Raise if the token occurs in any of the files under `paths` (files or folders)."""
    if not token:
        return
    needle = token.encode()
    for root in paths:
        root = Path(root)
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        for f in files:
            if needle in f.read_bytes():
                raise HubError(f"refusing to publish: {f} contains the Hub token")


# ---------------------------------------------------------------------------------------------------------
# preparing a run folder
# ---------------------------------------------------------------------------------------------------------
def _custom_code_sources() -> dict[str, Path]:
    """`modeling_x.py` / `configuration_x.py` file name -> path, for every package in `custom_models/`."""
    out = {}
    for pkg in sorted((REPO_ROOT / "custom_models").glob("*/")):
        for f in pkg.glob("*.py"):
            if f.name != "__init__.py":
                out.setdefault(f.name, f)
    return out


def _custom_auto_maps() -> dict[str, dict[str, str]]:
    """model_type -> complete AUTO_MAP for every `custom_models` package that declares one."""
    import importlib

    out = {}
    for pkg in sorted((REPO_ROOT / "custom_models").glob("*/__init__.py")):
        name = pkg.parent.name
        for f in pkg.parent.glob("configuration_*.py"):
            text = f.read_text(encoding="utf-8")
            m = re.search(r"model_type\s*=\s*[\"']([\w-]+)[\"']", text)
            if m and "AUTO_MAP" in text:
                mod = importlib.import_module(f"custom_models.{name}.{f.stem}")
                out[m.group(1)] = dict(mod.AUTO_MAP)
    return out


def ensure_custom_code(folder: str | os.PathLike) -> list[str]:
    """Make a saved model folder loadable with `trust_remote_code=True` from the Hub.

    For a `config.json` whose `model_type` is one of ours, the complete `auto_map` (every Auto class the
    code supports) is written into the config; every module named by `auto_map` is copied from
    `custom_models/` (with the sibling modules it imports) when missing. Returns the code files present.
    """
    folder = Path(folder)
    config_path = folder / "config.json"
    if not config_path.is_file():
        return []
    config = json.loads(config_path.read_text(encoding="utf-8"))
    maps = _custom_auto_maps() if config.get("model_type") else {}
    auto_map = dict(config.get("auto_map") or {})
    full = maps.get(config.get("model_type"))
    if full and any(auto_map.get(k) != v for k, v in full.items()):
        auto_map.update(full)
        config["auto_map"] = auto_map
        atomic_write_text(config_path, json.dumps(config, indent=2, sort_keys=True) + "\n")
    sources = _custom_code_sources()
    needed = set()
    for ref in auto_map.values():
        for item in (ref if isinstance(ref, list) else [ref]):
            if item and "--" not in item:  # "other/repo--module.Class" lives in another repo
                needed.add(item.split(".")[0] + ".py")
    present = []
    queue = sorted(needed)
    while queue:
        name = queue.pop()
        target = folder / name
        if not target.is_file():
            if name not in sources:
                raise HubError(f"{folder}: auto_map names {name} but neither the folder nor custom_models/ has it")
            shutil.copyfile(sources[name], target)
        present.append(name)
        for dep in re.findall(r"^from \.(\w+) import", target.read_text(encoding="utf-8"), flags=re.M):
            if f"{dep}.py" not in present and f"{dep}.py" not in queue:
                queue.append(f"{dep}.py")
    return sorted(present)


def write_eval_result_entries(folder: str | os.PathLike, eval_results: dict | None = None,
                              dataset_id: str | None = None, date: str | None = None) -> list[Path]:
    """Write the Hub's `.eval_results/<dataset>.yaml` entries from `eval_results.json` (`{"results": {split:
    {metric: value}}}`); one entry per split x metric in `cards.HUB_METRICS`. Returns the written files."""
    import yaml
    from huggingface_hub import EvalResultEntry
    from huggingface_hub._eval_results import eval_result_entries_to_yaml

    from affectlab.cards import HUB_METRICS

    folder = Path(folder)
    if eval_results is None:
        path = folder / "eval_results.json"
        if not path.is_file():
            return []
        eval_results = json.loads(path.read_text(encoding="utf-8"))
    dataset_id = dataset_id or eval_results.get("dataset")
    if not dataset_id:
        return []
    entries = []
    for split, metrics in (eval_results.get("results") or {}).items():
        for key in HUB_METRICS:
            if key in metrics:
                entries.append(EvalResultEntry(dataset_id=dataset_id, task_id=f"{split}/{key}",
                                               value=round(float(metrics[key]), 4), date=date,
                                               notes=f"affectlab {key} on the {split} split"))
    if not entries:
        return []
    out = folder / ".eval_results" / f"{re.sub(r'[^A-Za-z0-9_.-]+', '__', dataset_id)}.yaml"
    atomic_write_text(out, yaml.safe_dump(eval_result_entries_to_yaml(entries), sort_keys=False))
    return [out]


# ---------------------------------------------------------------------------------------------------------
# pushing
# ---------------------------------------------------------------------------------------------------------
@dataclass
class PushResult:
    repo_id: str
    revision: str  # the commit sha this push created (pin it: from_pretrained(repo_id, revision=revision))
    url: str
    files: list[str]


def _is_auth_error(exc: BaseException) -> bool:
    from huggingface_hub.errors import HfHubHTTPError

    response = getattr(exc, "response", None)
    return isinstance(exc, HfHubHTTPError) and response is not None and response.status_code in (401, 403)


def _is_transient(exc: BaseException) -> bool:
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(exc, HfHubHTTPError):
        response = exc.response
        return response is not None and (response.status_code >= 500 or response.status_code in (408, 429))
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & {"TransportError", "ConnectError", "ReadError", "RemoteProtocolError", "NetworkError", "TimeoutException",
                "ConnectionError", "OSError"}:
        return True
    cause = exc.__cause__ or exc.__context__
    return cause is not None and cause is not exc and _is_transient(cause)


def with_retries(fn, *, what: str, retries: int = 3, backoff: float = 1.0, token: str | None = None,
                 on_fail: str = ""):
    """Call `fn()`; retry transient failures with exponential backoff; map errors to `HubError`s."""
    attempt = 0
    while True:
        try:
            return fn()
        except HubError:
            raise
        except Exception as exc:  # noqa: BLE001 - classified below
            if _is_auth_error(exc) or not _is_transient(exc) or attempt >= retries:
                raise _mapped(exc, what, token, on_fail, attempt + 1) from None
            time.sleep(backoff * (2 ** attempt))
            attempt += 1


def _mapped(exc: BaseException, what: str, token: str | None, on_fail: str = "", attempts: int = 1) -> HubError:
    """A `HubAuthError` (401/403) or `HubPushError` for `exc`, with the token redacted from the message."""
    detail = redact(f"{type(exc).__name__}: {exc}".splitlines()[0], token)
    if _is_auth_error(exc):
        return HubAuthError(f"{what}: the Hub refused the token ({detail}). Check that HF_TOKEN has "
                            f"write access to the namespace.{on_fail}")
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    return HubPushError(f"{what} failed{tries}: {detail}.{on_fail}")


def push_run(run_dir: str | os.PathLike, repo_id: str, *, token: str | None = None, private: bool = False,
             commit_message: str | None = None, retries: int = 3, backoff: float = 1.0,
             endpoint: str | None = None) -> PushResult:
    """Push a finished output folder as one commit and record the commit sha in `<run_dir>/hub_push.json`."""
    from huggingface_hub import HfApi

    run_dir = Path(run_dir).resolve()
    if not run_dir.is_dir():
        raise HubError(f"{run_dir} is not a folder")
    if not ((run_dir / "config.json").is_file() or (run_dir / "adapter_config.json").is_file()):
        raise HubError(f"{run_dir} holds neither a model (config.json) nor an adapter (adapter_config.json)")
    on_fail = (f" The local outputs in {run_dir} are intact; push them later with: "
               f"python scripts/push.py {run_dir} --repo {repo_id}")
    token = get_token(token)
    if not token:
        raise HubAuthError(f"no Hugging Face token: set HF_TOKEN or run `hf auth login`.{on_fail}")
    code_files = ensure_custom_code(run_dir)
    write_eval_result_entries(run_dir)
    assert_no_secret([run_dir], token)
    api = HfApi(endpoint=endpoint, token=token)
    with_retries(lambda: api.create_repo(repo_id, private=private, exist_ok=True), what=f"creating {repo_id}",
                 retries=retries, backoff=backoff, token=token, on_fail=on_fail)
    message = commit_message or f"affectlab: push {run_dir.name}"
    info = with_retries(lambda: api.upload_folder(folder_path=str(run_dir), repo_id=repo_id, commit_message=message,
                                                  ignore_patterns=NEVER_PUSH),
                        what=f"pushing {run_dir} to {repo_id}", retries=retries, backoff=backoff, token=token,
                        on_fail=on_fail)
    files = sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file()
                   and p.name != PUSH_RECORD and not any(part.startswith((".final-staging", "checkpoint-", "runs"))
                                                          for part in p.relative_to(run_dir).parts))
    result = PushResult(repo_id=repo_id, revision=info.oid, url=f"{api.endpoint.rstrip('/')}/{repo_id}", files=files)
    atomic_write_json(run_dir / PUSH_RECORD, {"repo_id": repo_id, "revision": info.oid, "url": result.url,
                                              "date": utc_now().isoformat(), "code_files": code_files})
    return result


# ---------------------------------------------------------------------------------------------------------
# results records
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
                  y_true: list, y_pred: list, dataset_rows: Iterable[Any] | None = None, dataset_config: str | None = None,
                  base_model: str | None = None, seed: int | None = None, config: Any = None,
                  primary_metric: str | None = None, task_type: str = "text-classification",
                  label_names: list[str] | None = None, date: _dt.datetime | None = None) -> dict:
    """One evaluation result with provenance and per-example predictions (`y_true`, `y_pred`: class ids, or
    0/1 lists per example for multi-label)."""
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} examples, y_pred {len(y_pred)}")
    date = date or utc_now()
    primary_metric = primary_metric or next(iter(metrics))
    if primary_metric not in metrics:
        raise ValueError(f"primary metric {primary_metric!r} is not among {sorted(metrics)}")
    return {
        "schema": RESULT_SCHEMA,
        "model": {"repo_id": model_repo, "revision": revision, "base_model": base_model},
        "task": {"name": task, "type": task_type, "primary_metric": primary_metric, "label_names": label_names},
        "dataset": {"name": dataset, "config": dataset_config, "split": split, "num_rows": len(y_true),
                    "fingerprint": fingerprint_rows(dataset_rows) if dataset_rows is not None else None},
        "metrics": {k: float(v) for k, v in metrics.items()},
        "predictions": {"y_true": _plain(y_true), "y_pred": _plain(y_pred)},
        "seed": seed,
        "config_hash": config_hash(config) if config is not None else None,
        "versions": library_versions(),
        "hardware": hardware(),
        "date": date.isoformat(),
    }


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
    return os.environ.get(RESULTS_ENV) or str(REPO_ROOT / "results")


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


# ---------------------------------------------------------------------------------------------------------
# what every training script calls
# ---------------------------------------------------------------------------------------------------------
def claim_push(training_args) -> bool:
    """Take `--push_to_hub` away from `Trainer` and return whether it was asked for.

    Trainer would otherwise create the repo at start-up and push checkpoints on its own path; every
    affectlab script instead pushes the finished output folder once, through `push_run`.
    """
    wanted = bool(getattr(training_args, "push_to_hub", False))
    training_args.push_to_hub = False
    return wanted


def publish_finished_run(output_dir: str | os.PathLike, training_args, wanted: bool) -> PushResult | None:
    """Push a finished run when `wanted` (see `claim_push`); on failure print one line and exit non-zero."""
    import sys

    if not wanted:
        return None
    repo_id = training_args.hub_model_id or Path(output_dir).name
    try:
        pushed = push_run(output_dir, repo_id, private=bool(getattr(training_args, "hub_private_repo", False)),
                          commit_message=f"affectlab: {Path(output_dir).name}")
    except HubError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2 if isinstance(err, HubAuthError) else 1)
    print(f"pushed {pushed.repo_id}@{pushed.revision}", flush=True)
    return pushed
