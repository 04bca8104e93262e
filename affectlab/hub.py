"""The one publishing path to the Hugging Face Hub, and the results records the leaderboard reads.

* `push_run(run_dir, repo_id)` pushes a finished output folder (full model or PEFT adapter, tokenizer, the
  `custom_models` code files and complete `auto_map` that `save_pretrained` wrote (`check_custom_code`
  refuses a folder that would not load with `trust_remote_code`), the model card with its `model-index`, the
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
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from affectlab.io import atomic_write_json, atomic_write_text

PUSH_RECORD = "hub_push.json"
# Pushes are an allow-list: the model and what is needed to use and judge it, nothing else. Anything
# more only when named (`push_extra`); per-example predictions only with `push_predictions`, and never for
# data whose licence forbids redistribution (the eval summary says so: dataset.redistributable).
PUSH_ALLOWED = (
    "config.json", "generation_config.json",
    "model.safetensors", "model-*-of-*.safetensors", "model.safetensors.index.json",
    "adapter_config.json", "adapter_model.safetensors",
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.txt",
    "vocab.json", "merges.txt", "tokenizer.model", "spiece.model", "sentencepiece.bpe.model", "chat_template.jinja",
    "chat_template.json",
    "README.md", "eval_results.json", ".eval_results/*.yaml",
    "personas.json", "label_set.json",          # what a persona-conditioned model needs to be used
)
PREDICTION_FILES = ("predictions_*.jsonl", "generations_*.jsonl")


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
def _top_level_names(tree) -> set[str]:
    """Names a module binds at top level (classes, functions, assignments, imports; inside if/try too)."""
    import ast

    names, todo = set(), list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target]):
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.If, ast.Try)):
            todo += node.body + node.orelse + getattr(node, "finalbody", [])
            todo += [n for h in getattr(node, "handlers", []) for n in h.body]
    return names


def _custom_code_problems(folder: Path, config: dict) -> tuple[list[str], list[str]]:
    """(code files the folder's `auto_map` needs, problems that keep it from loading with trust_remote_code)."""
    import ast

    from transformers.dynamic_module_utils import get_relative_imports
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    auto_map = config.get("auto_map") or {}
    model_type = config.get("model_type")
    if not auto_map:
        if model_type and model_type not in CONFIG_MAPPING_NAMES:
            return [], [f"config.json has model_type {model_type!r}, which transformers does not know, and no auto_map"]
        return [], []
    needed: dict[str, set[str]] = {}
    for ref in auto_map.values():
        for item in (ref if isinstance(ref, (list, tuple)) else [ref]):
            if item and "--" not in item:  # "other/repo--module.Class" lives in another repo
                module, _, cls = item.rpartition(".")
                needed.setdefault(f"{module}.py", set()).add(cls)
    problems = []
    provided = {item.rpartition(".")[2] for ref in auto_map.values()
                for item in (ref if isinstance(ref, (list, tuple)) else [ref]) if item}
    for arch in config.get("architectures") or []:
        if arch not in provided:
            problems.append(f"architectures names {arch}, which no auto_map entry provides")
    present, queue = [], sorted(needed, reverse=True)
    while queue:
        name = queue.pop()
        path = folder / name
        if not path.is_file():
            problems.append(f"auto_map needs {name}, which the folder lacks")
            continue
        present.append(name)
        missing = sorted(needed.get(name, set()) - _top_level_names(ast.parse(path.read_text(encoding="utf-8"))))
        if missing:
            problems.append(f"{name} defines no {', '.join(missing)}")
        for dep in sorted(get_relative_imports(path)):
            dep_file = f"{dep}.py"
            if dep_file not in present and dep_file not in queue:
                if (folder / dep_file).is_file():
                    queue.append(dep_file)
                else:
                    problems.append(f"{name} imports .{dep}, but the folder has no {dep_file}")
    return sorted(present), problems


def check_custom_code(folder: str | os.PathLike) -> list[str]:
    """Refuse a saved model folder that would not load with `trust_remote_code=True`; return its code files.

    The folder must be complete as `save_pretrained` of a `custom_models` model writes it: every module that
    `config.json`'s `auto_map` names is present and defines the named class, every module they import
    relatively is present (transitively), every class in `architectures` is provided by some `auto_map`
    entry, and a `model_type` transformers does not know comes with an `auto_map`. Nothing is written or
    copied: an incomplete folder raises `HubError` (one line) naming what is missing.
    """
    folder = Path(folder)
    config_path = folder / "config.json"
    if not config_path.is_file():
        return []
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise HubError(f"{config_path} is not valid JSON ({err})") from None
    present, problems = _custom_code_problems(folder, config)
    if problems:
        raise HubError(f"refusing to push {folder}: it would not load with trust_remote_code ({'; '.join(problems)}). "
                       f"Save the model with save_pretrained after importing its custom_models package (that writes "
                       f"every code file and the complete auto_map), then push again.")
    return present


def write_eval_result_entries(folder: str | os.PathLike, eval_results: dict | None = None,
                              dataset_id: str | None = None, date: str | None = None) -> list[Path]:
    """Write the Hub's `.eval_results/<dataset>.yaml` entries from `eval_results.json` (the typed schema of
    `affectlab.eval_results`: one entry per split x card metric, on the dataset's Hub id). Returns the files."""
    import yaml
    from huggingface_hub import EvalResultEntry, eval_result_entries_to_yaml

    from affectlab.cards import HUB_METRICS

    folder = Path(folder)
    if eval_results is None:
        path = folder / "eval_results.json"
        if not path.is_file():
            return []
        eval_results = json.loads(path.read_text(encoding="utf-8"))
    dataset = eval_results.get("dataset")
    if isinstance(dataset, dict):
        dataset = dataset.get("hub_id") or dataset.get("name")
    dataset_id = dataset_id or dataset
    if not dataset_id:
        return []
    metrics_shown = list((eval_results.get("task") or {}).get("card_metrics") or HUB_METRICS)
    entries = []
    for split, metrics in (eval_results.get("results") or {}).items():
        for key in metrics_shown:
            if metrics.get(key) is not None:
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
            delay = backoff * (2 ** attempt)
            detail = redact(f"{type(exc).__name__}: {exc}".splitlines()[0], token)[:160]
            print(f"{what}: attempt {attempt + 1} of {retries + 1} failed ({detail}); retrying in {delay:.0f}s",
                  file=sys.stderr, flush=True)
            time.sleep(delay)
            attempt += 1


def _mapped(exc: BaseException, what: str, token: str | None, on_fail: str = "", attempts: int = 1) -> HubError:
    """A `HubAuthError` (401/403) or `HubPushError` for `exc`, with the token redacted from the message."""
    detail = redact(f"{type(exc).__name__}: {exc}".splitlines()[0], token)
    if _is_auth_error(exc):
        return HubAuthError(f"{what}: the Hub refused the token ({detail}). Check that HF_TOKEN has "
                            f"write access to the namespace.{on_fail}")
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    return HubPushError(f"{what} failed{tries}: {detail}.{on_fail}")


def _pipeline_files(run_dir: Path) -> list[str]:
    """Code files of the custom pipelines a config declares (`custom_pipelines.*.impl` = `module.Class`)."""
    config = run_dir / "config.json"
    if not config.is_file():
        return []
    pipelines = json.loads(config.read_text(encoding="utf-8")).get("custom_pipelines") or {}
    return sorted({spec["impl"].split(".")[0] + ".py" for spec in pipelines.values() if spec.get("impl")})


def files_to_push(run_dir: str | os.PathLike, code_files=(), extra=(), predictions: bool = False) -> list[str]:
    """The files of `run_dir` a push carries (relative paths): PUSH_ALLOWED + the model's code files +
    files matching `extra` (+ prediction files with `predictions`). Refuses predictions of data whose
    licence forbids redistribution."""
    from fnmatch import fnmatch

    run_dir = Path(run_dir)
    patterns = [*PUSH_ALLOWED, *code_files, *extra, *_pipeline_files(run_dir)]
    if predictions:
        summary = run_dir / "eval_results.json"
        dataset = json.loads(summary.read_text(encoding="utf-8")).get("dataset") if summary.is_file() else None
        if isinstance(dataset, dict) and dataset.get("redistributable") is False:
            raise HubError(f"--push_predictions: the predictions of {run_dir.name} quote {dataset.get('name')}, whose "
                           "licence forbids redistribution; they stay local")
        patterns += PREDICTION_FILES
    out = []
    for path in sorted(p for p in run_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(run_dir).as_posix()
        if any(part.startswith(".") and part != ".eval_results" for part in rel.split("/")):
            continue
        if any(fnmatch(rel, pat) for pat in patterns):
            out.append(rel)
    return out


def push_run(run_dir: str | os.PathLike, repo_id: str, *, token: str | None = None, private: bool = False,
             commit_message: str | None = None, retries: int = 3, backoff: float = 1.0,
             endpoint: str | None = None, extra=(), predictions: bool = False) -> PushResult:
    """Push a finished output folder as one commit and record the commit sha in `<run_dir>/hub_push.json`.

    Only the allow-listed files go (see `files_to_push`); the list is checked for the token first."""
    from huggingface_hub import HfApi
    from huggingface_hub.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # our retries say one line per attempt; the client's own retry logs are noise
    run_dir = Path(run_dir).resolve()
    if not run_dir.is_dir():
        raise HubError(f"{run_dir} is not a folder")
    if not ((run_dir / "config.json").is_file() or (run_dir / "adapter_config.json").is_file()):
        raise HubError(f"{run_dir} holds neither a model (config.json) nor an adapter (adapter_config.json)")
    on_fail = (f" The local outputs in {run_dir} are intact; push them later with: "
               f"python scripts/push.py {run_dir} --repo {repo_id}")
    code_files = check_custom_code(run_dir)
    token = get_token(token)
    if not token:
        raise HubAuthError(f"no Hugging Face token: set HF_TOKEN or run `hf auth login`.{on_fail}")
    shutil.rmtree(run_dir / ".eval_results", ignore_errors=True)  # never a stale entry beside new weights
    write_eval_result_entries(run_dir)
    files = files_to_push(run_dir, code_files, extra, predictions)
    assert_no_secret([run_dir / f for f in files], token)
    api = HfApi(endpoint=endpoint, token=token)
    with_retries(lambda: api.create_repo(repo_id, private=private, exist_ok=True), what=f"creating {repo_id}",
                 retries=retries, backoff=backoff, token=token, on_fail=on_fail)
    message = commit_message or f"affectlab: push {run_dir.name}"
    info = with_retries(lambda: api.upload_folder(folder_path=str(run_dir), repo_id=repo_id, commit_message=message,
                                                  allow_patterns=files),
                        what=f"pushing {run_dir} to {repo_id}", retries=retries, backoff=backoff, token=token,
                        on_fail=on_fail)
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
