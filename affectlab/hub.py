"""The one publishing path to the Hugging Face Hub, and the results records the leaderboard reads.

* `push_run(run_dir, repo_id)` pushes a finished output folder (full model or PEFT adapter, tokenizer, the
  `custom_models` code files with a complete `auto_map`, the model card with its `model-index`, the
  `.eval_results/*.yaml` entries and `eval_results.json`) in one commit, pins the commit sha it created and
  records it in `<run_dir>/hub_push.json`. Connection drops and 5xx answers are retried with backoff; a
  missing token or a 401/403 raises `HubAuthError`, anything else that still fails raises `HubPushError`
  naming the local folder and the `scripts/push.py` command that re-pushes it. Local outputs are never
  touched by a failure, and the token never appears in messages, cards or written files.

Result records (the leaderboard's input) live in `affectlab.results`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from affectlab.io import atomic_write_json, atomic_write_text
from affectlab.paths import REPO_ROOT

PUSH_RECORD = "hub_push.json"
NEVER_PUSH = [PUSH_RECORD, ".final-staging/**", "checkpoint-*/**", "runs/**", "**/.*.tmp-*", "**/.*.old-*"]


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
                                              "date": _dt_now(), "code_files": code_files})
    return result


def _dt_now() -> str:
    import datetime

    return datetime.datetime.now(datetime.timezone.utc).isoformat()


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
