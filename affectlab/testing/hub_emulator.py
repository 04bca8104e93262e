"""A small Hugging Face Hub emulator on 127.0.0.1 for offline end-to-end tests of the *unmodified* client.

It speaks the subset of the Hub HTTP API that `huggingface_hub` (2.x) and `transformers` use to publish and
pull models and datasets, so tests point `HF_ENDPOINT` at it and run the real client code:

* `POST /api/repos/create` (409 when the repo exists), `GET /api/whoami-v2`, `POST /api/validate-yaml`
* `GET /api/{models,datasets,spaces}/<ns>/<name>[/revision/<rev>]` (info with `sha` and `siblings`)
* `POST /api/<type>s/<id>/preupload/<rev>` (files >= `lfs_threshold` bytes or binary-looking -> "lfs")
* `POST /<prefix><id>.git/info/lfs/objects/batch` + `PUT /__lfs/<oid>` + `POST /__lfs/verify`
  (basic LFS transfer; the server checks the sha256 and the size of every uploaded object)
* `POST /api/<type>s/<id>/commit/<rev>` (NDJSON: header, file, lfsFile, deletedFile, deletedFolder;
  `parentCommit` checked; commits are serialised by a lock, so concurrent commits all land, each on
  top of the previous head)
* `GET /api/<type>s/<id>/tree/<rev>[/<path>]` (`recursive`), `POST /api/<type>s/<id>/paths-info/<rev>`,
  `GET /api/<type>s/<id>/commits/<rev>`, `GET /api/<type>s/<id>/refs` (`include_prs=1`: `pullRequests`)
* **Pull requests** (`create_commit(create_pr=True)`, `create_pull_request`, `create_discussion`):
  `POST /api/<type>s/<id>/commit/main?create_pr=1` opens pull request N on the ref `refs/pr/N`, made from
  `parentCommit` (default: the head of main), and answers its `pullRequestUrl` (`.../discussions/N`), so
  the client's `CommitInfo` carries `pr_num` and `pr_revision`; commits to `refs/pr/N` add to it; every
  revision argument (download, tree, info) accepts `refs/pr/N`. Any authenticated user who can read the
  repo may open one (as on the Hub: the point of a pull request); writers, or the PR's author, may push
  to it. `GET .../discussions` (`type`, `status`, `author` filters; one page), `GET .../discussions/N`
  (events: the description as a comment, commits, status changes; `changes.base`, `mergeCommitId`),
  `POST .../discussions` (a discussion or an empty draft pull request), and `POST .../discussions/N/`
  `comment`, `status` (open / closed: writers or the author) and `merge` (writers: the files the pull
  request added, changed or deleted since the commit it was made from are applied on top of main;
  a file that main changed differently meanwhile is a conflict, 409).
* `HEAD`/`GET /<prefix><id>/resolve/<rev>/<path>` by branch or commit sha (`X-Repo-Commit`, `ETag`,
  `X-Linked-Etag`/`X-Linked-Size` for LFS files, `Range` requests), with the Hub's `X-Error-Code`
  headers (`RepoNotFound`, `RevisionNotFound`, `EntryNotFound`) so the client raises its usual errors.

Auth: write calls need `Authorization: Bearer <token>` with a token from `tokens` (token -> user name);
a missing/unknown token gets 401, writing into another user's namespace (not in `orgs`) gets 403. Reads of
public repos need no token. Tokens are never logged (the request log keeps method, path and status only).

Fault injection for retry tests: `emulator.fail_next(pattern, times, status=None)` makes the next `times`
requests whose "METHOD path" matches the regex `pattern` fail, either by dropping the connection without a
response (`status=None`) or by answering `status`.

**Xet**: `huggingface_hub` >= 1.0 uploads through Xet storage whenever the `hf_xet` package is installed;
it never asks the server whether Xet is available, so no server answer can make it fall back. The emulator
does not implement Xet (CAS, `xet-write-token`, `X-Xet-*` headers): clients must run with
`HF_HUB_DISABLE_XET=1` (see `client_env()`), which selects the plain LFS batch protocol implemented here.
Downloads never see `X-Xet-Hash`, so the client downloads over plain HTTP.

Not implemented: Xet storage, multipart LFS uploads (the emulator never sends `chunk_size`, so the client
always uses a single PUT), branches and tags other than the ones commits create (`create_branch`,
`create_tag`), `CommitOperationCopy` of LFS files, deleting/moving repos, repo settings and visibility
changes, gated repos, Spaces runtime, Inference, search/list endpoints (`list_models`...), editing / hiding
comments and renaming discussions, diffs of pull requests (`diff` is empty), webhooks, `.gitattributes`
semantics and `.gitignore` filtering, pagination (every listing is one page), rate limits, persistence (all
state lives in memory and dies with the server).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
SHA1_RE = re.compile(r"^[0-9a-f]{40}$")


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Entry:
    """One file in a commit tree: its bytes live in the server's blob store under `sha256`."""

    sha256: str
    size: int
    blob_id: str  # git blob sha1 (regular files) or the sha1 of the LFS pointer (LFS files)
    lfs: bool


@dataclass
class Commit:
    oid: str
    parent: str | None
    title: str
    description: str
    author: str
    date: str
    tree: dict[str, Entry]


@dataclass
class Discussion:
    """A discussion or pull request (`is_pr`; its changes live on the ref `refs/pr/<num>`)."""

    num: int
    title: str
    author: str
    is_pr: bool
    created_at: str
    status: str = "open"                 # open | draft | closed | merged
    base_oid: str | None = None          # the commit a pull request was made from (the merge base)
    merge_commit: str | None = None
    events: list[dict] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"refs/pr/{self.num}"


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    owner: str
    created_at: str
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    pr_refs: dict[str, str] = field(default_factory=dict)    # "refs/pr/N" -> commit oid
    discussions: list[Discussion] = field(default_factory=list)


class _Fail(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, extra: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.extra = status, message, code, extra or {}


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _event(kind: str, author: str, data: dict) -> dict:
    """One discussion event as the Hub serialises it (`huggingface_hub.community.deserialize_event`)."""
    material = json.dumps([kind, author, data, _now()], sort_keys=True).encode()
    return {"id": hashlib.sha1(material).hexdigest()[:24], "type": kind, "createdAt": _now(),
            "author": {"name": author, "type": "user"}, "data": data}


def _comment(author: str, text: str) -> dict:
    import html

    now = _now()
    return _event("comment", author, {"edited": False, "hidden": False, "numEdits": 0, "editors": [author],
                                      "reactions": [], "isReport": False,
                                      "latest": {"raw": text, "html": f"<p>{html.escape(text)}</p>",
                                                 "updatedAt": now, "author": {"name": author}}})


def _lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


class HubEmulator:
    """The server: `with HubEmulator(tokens={"hf_x": "alice"}) as hub: os.environ["HF_ENDPOINT"] = hub.url`."""

    def __init__(self, tokens: dict[str, str] | None = None, orgs: dict[str, list[str]] | None = None,
                 host: str = "127.0.0.1", port: int = 0, lfs_threshold: int = 10 * 1024 * 1024):
        self.tokens = dict(tokens or {})
        self.orgs = {user: list(v) for user, v in (orgs or {}).items()}
        self.lfs_threshold = lfs_threshold
        self.repos: dict[tuple[str, str], Repo] = {}
        self.blobs: dict[str, bytes] = {}  # sha256 -> content
        self.lock = threading.RLock()
        self.log: list[tuple[str, str, int]] = []  # (method, path, status); never headers or bodies
        self._faults: list[list] = []
        self._counter = 0
        handler = type("Handler", (_Handler,), {"hub": self})
        self.server = ThreadingHTTPServer((host, port), handler)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> "HubEmulator":
        self._thread = threading.Thread(target=self.server.serve_forever, name="hub-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "HubEmulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def client_env(self, token: str | None = None, **extra: str) -> dict[str, str]:
        """Environment variables for a client process talking to this emulator (online, no Xet)."""
        env = {"HF_ENDPOINT": self.url, "HF_HUB_DISABLE_XET": "1", "HF_HUB_OFFLINE": "0",
               "TRANSFORMERS_OFFLINE": "0", "HF_DATASETS_OFFLINE": "0", "HF_HUB_DISABLE_TELEMETRY": "1",
               "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_HUB_ETAG_TIMEOUT": "30", "HF_HUB_DOWNLOAD_TIMEOUT": "60"}
        if token is not None:
            env["HF_TOKEN"] = token
        env.update(extra)
        return env

    def fail_next(self, pattern: str, times: int = 1, status: int | None = None) -> None:
        """Make the next `times` requests matching regex `pattern` ("METHOD /path") drop or answer `status`."""
        with self.lock:
            self._faults.append([re.compile(pattern), times, status])

    def _take_fault(self, method: str, path: str):
        with self.lock:
            for fault in self._faults:
                if fault[1] > 0 and fault[0].search(f"{method} {path}"):
                    fault[1] -= 1
                    return fault
        return None

    # -- state helpers ---------------------------------------------------------------------------------
    def _repo(self, repo_type: str, repo_id: str, user: str | None = None) -> Repo:
        repo = self.repos.get((repo_type, repo_id))
        if repo is None or (repo.private and not self._may_write(user, repo_id)):
            raise _Fail(404, "Repository not found", "RepoNotFound")
        return repo

    def _may_write(self, user: str | None, repo_id: str) -> bool:
        namespace = repo_id.split("/")[0]
        return user is not None and (namespace == user or namespace in self.orgs.get(user, []))

    def _resolve(self, repo: Repo, revision: str) -> Commit:
        revision = unquote(revision)
        oid = repo.branches.get(revision) or repo.pr_refs.get(revision)
        if oid is None and SHA1_RE.match(revision) and revision in repo.commits:
            oid = revision
        if oid is None:
            raise _Fail(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return repo.commits[oid]

    def create_repo(self, repo_type: str, repo_id: str, owner: str, private: bool = False) -> Repo:
        with self.lock:
            if (repo_type, repo_id) in self.repos:  # the Hub's 409 body carries the url (exist_ok reads it)
                raise _Fail(409, "You already created this repo",
                            extra={"url": f"{self.url}/{URL_PREFIX[repo_type]}{repo_id}"})
            repo = Repo(repo_type, repo_id, private, owner, _now())
            self.repos[(repo_type, repo_id)] = repo
            self._commit(repo, None, "initial commit", "", owner, [])
            return repo

    def _commit(self, repo: Repo, parent_expected: str | None, title: str, description: str, author: str,
                ops: list[tuple[str, dict]], branch: str = "main") -> Commit:
        with self.lock:
            refs = repo.pr_refs if branch.startswith("refs/pr/") else repo.branches
            head = refs.get(branch)
            if parent_expected is not None and parent_expected != head:
                raise _Fail(412, "A commit has happened since. Please refresh and try again.")
            tree = dict(repo.commits[head].tree) if head else {}
            if head is None and branch != "main":
                raise _Fail(404, f"Invalid rev id: {branch}", "RevisionNotFound")
            for key, value in ops:
                path = value["path"].lstrip("/")
                if key == "file":
                    if value.get("encoding", "base64") != "base64":
                        raise _Fail(400, f"unsupported encoding {value.get('encoding')!r}")
                    data = base64.b64decode(value["content"])
                    digest = hashlib.sha256(data).hexdigest()
                    self.blobs[digest] = data
                    tree[path] = Entry(digest, len(data), git_blob_sha1(data), False)
                elif key == "lfsFile":
                    digest = value["oid"]
                    if value.get("algo", "sha256") != "sha256" or digest not in self.blobs:
                        raise _Fail(422, f"LFS object {digest} for {path} was never uploaded")
                    if len(self.blobs[digest]) != int(value["size"]):
                        raise _Fail(422, f"LFS object {digest} has the wrong size")
                    tree[path] = Entry(digest, int(value["size"]),
                                       git_blob_sha1(_lfs_pointer(digest, int(value["size"]))), True)
                elif key == "_entry":  # an entry of another commit (merging a pull request)
                    tree[path] = value["entry"]
                elif key == "deletedFile":
                    if path not in tree:
                        raise _Fail(404, "A file with this name doesn't exist", "EntryNotFound")
                    del tree[path]
                elif key == "deletedFolder":
                    prefix = path.rstrip("/") + "/"
                    for p in [p for p in tree if p.startswith(prefix)]:
                        del tree[p]
                else:
                    raise _Fail(400, f"unsupported commit operation {key!r}")
            self._counter += 1
            material = json.dumps([repo.repo_id, head, title, self._counter,
                                   sorted((p, e.sha256) for p, e in tree.items())]).encode()
            commit = Commit(hashlib.sha1(material).hexdigest(), head, title, description, author, _now(), tree)
            repo.commits[commit.oid] = commit
            refs[branch] = commit.oid
            return commit

    # -- discussions and pull requests ---------------------------------------------------------------------
    def open_discussion(self, repo: Repo, author: str, title: str, description: str = "", *, pull_request: bool,
                        draft: bool = False, parent: str | None = None, ops: list | None = None) -> Discussion:
        """A new discussion, or pull request N on `refs/pr/N` made from `parent` (default: main's head)
        with `ops` committed on it."""
        title = (title or "").strip()
        if not 3 <= len(title) <= 200:
            raise _Fail(400, "The title must be between 3 and 200 characters long")
        with self.lock:
            base = parent or repo.branches["main"]
            if base not in repo.commits:
                raise _Fail(400, f"parent commit {base} does not exist")
            num = len(repo.discussions) + 1
            disc = Discussion(num, title, author, pull_request, _now(), status="draft" if draft else "open",
                              base_oid=base if pull_request else None)
            if description:
                disc.events.append(_comment(author, description))
            repo.discussions.append(disc)
            if pull_request:
                repo.pr_refs[disc.ref] = base
                if ops:
                    commit = self._commit(repo, None, title, description, author, ops, branch=disc.ref)
                    disc.events.append(_event("commit", author, {"subject": title, "oid": commit.oid}))
            return disc

    def discussion(self, repo: Repo, num: int) -> Discussion:
        if not 1 <= num <= len(repo.discussions):
            raise _Fail(404, "Discussion not found")
        return repo.discussions[num - 1]

    def merge_pull_request(self, repo: Repo, disc: Discussion, user: str, comment: str | None = None) -> Commit:
        """Apply what the pull request changed since its base onto main (conflict: 409)."""
        with self.lock:
            if not disc.is_pr or disc.status not in ("open", "draft"):
                raise _Fail(400, f"discussion {disc.num} is not an open pull request")
            base_tree = repo.commits[disc.base_oid].tree
            pr_tree = repo.commits[repo.pr_refs[disc.ref]].tree
            main_tree = repo.commits[repo.branches["main"]].tree
            ops, conflicts = [], []
            for path in sorted(set(base_tree) | set(pr_tree)):
                before, after = base_tree.get(path), pr_tree.get(path)
                if before == after:
                    continue  # the pull request did not touch it
                if main_tree.get(path) not in (before, after):
                    conflicts.append(path)
                elif after is None:
                    if path in main_tree:
                        ops.append(("deletedFile", {"path": path}))
                else:
                    ops.append(("_entry", {"path": path, "entry": after}))
            if conflicts:
                raise _Fail(409, f"merge conflict in {', '.join(conflicts)}", extra={"filesWithConflicts": conflicts})
            title = f"Merge pull request #{disc.num}: {disc.title}"
            commit = self._commit(repo, None, title, comment or "", user, ops)
            disc.status, disc.merge_commit = "merged", commit.oid
            if comment:
                disc.events.append(_comment(user, comment))
            disc.events.append(_event("status-change", user, {"status": "merged"}))
            return commit


class _Handler(BaseHTTPRequestHandler):
    hub: HubEmulator
    protocol_version = "HTTP/1.1"
    server_version = "affectlab-hub-emulator/1"

    def log_message(self, format, *args):  # noqa: A002 - silence stderr; the hub keeps its own safe log
        pass

    # -- plumbing ----------------------------------------------------------------------------------------
    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            return self.rfile.read(length)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return b""

    def _user(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        if not auth:
            return None
        token = auth[7:] if auth.startswith("Bearer ") else ""
        user = self.hub.tokens.get(token)
        if user is None:
            raise _Fail(401, "Invalid credentials in Authorization header")
        return user

    def _writer(self, repo_id: str) -> str:
        user = self._authenticated()
        if not self.hub._may_write(user, repo_id):
            raise _Fail(403, f"You don't have the rights to write to {repo_id}")
        return user

    def _authenticated(self) -> str:
        user = self._user()
        if user is None:
            raise _Fail(401, "You must be authenticated to write")
        return user

    def _committer(self, repo: Repo, branch: str, create_pr: bool) -> str:
        """Who may commit: writers to a branch; anyone authenticated opening a pull request; writers or
        the author pushing to an open pull request's ref."""
        user = self._authenticated()
        if create_pr or self.hub._may_write(user, repo.repo_id):
            return user
        if branch.startswith("refs/pr/") and branch in repo.pr_refs:
            disc = self.hub.discussion(repo, int(branch.rsplit("/", 1)[1]))
            if disc.author == user:
                return user
        raise _Fail(403, f"You don't have the rights to write to {repo.repo_id}")

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
              content_type: str = "application/json", head: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(body)
        self.hub.log.append((self.command, urlsplit(self.path).path, status))

    def _json(self, obj, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers)

    def _dispatch(self, method: str) -> None:
        path = urlsplit(self.path).path
        fault = self.hub._take_fault(method, path)
        body = self._body() if method in ("POST", "PUT") else b""
        if fault is not None:
            if fault[2] is None:  # drop the connection without answering
                self.hub.log.append((method, path, 0))
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(2)
                return
            return self._json({"error": "injected failure"}, fault[2],
                              {"X-Error-Message": "injected failure"})
        try:
            self._route(method, path, parse_qs(urlsplit(self.path).query), body)
        except _Fail as err:
            headers = {"X-Error-Message": err.message}
            if err.code:
                headers["X-Error-Code"] = err.code
            self._send(err.status, b"" if method == "HEAD" else json.dumps({"error": err.message, **err.extra}).encode(),
                       headers, head=method == "HEAD")

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    # -- routes --------------------------------------------------------------------------------------------
    def _route(self, method: str, path: str, query: dict, body: bytes) -> None:
        hub = self.hub
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if method == "GET" and path == "/api/whoami-v2":
            user = self._user()
            if user is None:
                raise _Fail(401, "Invalid credentials in Authorization header")
            return self._json({"type": "user", "name": user, "fullname": user,
                               "orgs": [{"name": o, "type": "org"} for o in hub.orgs.get(user, [])],
                               "auth": {"type": "access_token", "accessToken": {"role": "write"}}})
        if method == "POST" and path == "/api/validate-yaml":
            import yaml

            content = json.loads(body or b"{}").get("content", "")
            if content.startswith("---"):
                try:
                    yaml.safe_load(content.split("---", 2)[1])
                except yaml.YAMLError as exc:
                    return self._json({"errors": [{"message": f"invalid YAML: {exc}"}]}, 400)
            return self._json({"errors": [], "warnings": []})
        if method == "POST" and path == "/api/repos/create":
            payload = json.loads(body or b"{}")
            repo_id = f"{payload.get('organization') or self._user() or ''}/{payload['name']}"
            owner = self._writer(repo_id)
            repo_type = payload.get("type") or "model"
            private = payload.get("private") or payload.get("visibility") == "private"
            hub.create_repo(repo_type, repo_id, owner, bool(private))
            url = f"{hub.url}/{URL_PREFIX[repo_type]}{repo_id}"
            return self._json({"url": url, "name": repo_id, "id": repo_id})
        if method == "PUT" and len(parts) == 2 and parts[0] == "__lfs":
            digest = parts[1]
            if hashlib.sha256(body).hexdigest() != digest:
                raise _Fail(400, "sha256 of the uploaded object does not match its oid")
            with hub.lock:
                hub.blobs[digest] = body
            return self._send(200)
        if method == "POST" and parts == ["__lfs", "verify"]:
            payload = json.loads(body)
            if payload["oid"] not in hub.blobs or len(hub.blobs[payload["oid"]]) != payload["size"]:
                raise _Fail(404, "object not found or wrong size")
            return self._json({"success": True})
        if parts and parts[0] == "api" and len(parts) >= 4 and parts[1] in REPO_TYPES:
            return self._api_repo(method, REPO_TYPES[parts[1]], f"{parts[2]}/{parts[3]}", parts[4:], query, body)
        # /<prefix><ns>/<name>.git/info/lfs/objects/batch  and  /<prefix><ns>/<name>/resolve/<rev>/<path>
        repo_type = "model"
        if parts and parts[0] in ("datasets", "spaces"):
            repo_type, parts = REPO_TYPES[parts[0]], parts[1:]
        if len(parts) >= 6 and parts[1].endswith(".git") and parts[2:] == ["info", "lfs", "objects", "batch"]:
            return self._lfs_batch(repo_type, f"{parts[0]}/{parts[1][:-4]}", body)
        if len(parts) >= 5 and parts[2] == "resolve" and method in ("GET", "HEAD"):
            return self._resolve_file(method, repo_type, f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:]))
        raise _Fail(404, f"the emulator does not implement {method} {path}")

    def _info(self, repo: Repo, commit: Commit) -> dict:
        siblings = []
        for p, e in sorted(commit.tree.items()):
            sib = {"rfilename": p, "size": e.size, "blobId": e.blob_id}
            if e.lfs:
                sib["lfs"] = {"sha256": e.sha256, "size": e.size, "pointerSize": len(_lfs_pointer(e.sha256, e.size))}
            siblings.append(sib)
        author = repo.repo_id.split("/")[0]
        return {"_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24], "id": repo.repo_id,
                "modelId": repo.repo_id, "author": author, "sha": commit.oid, "lastModified": commit.date,
                "createdAt": repo.created_at, "private": repo.private, "gated": False, "disabled": False,
                "downloads": 0, "likes": 0, "tags": [], "siblings": siblings}

    def _path_info(self, path: str, entry: Entry) -> dict:
        info = {"type": "file", "path": path, "size": entry.size, "oid": entry.blob_id}
        if entry.lfs:
            info["lfs"] = {"oid": entry.sha256, "size": entry.size,
                           "pointerSize": len(_lfs_pointer(entry.sha256, entry.size))}
        return info

    def _api_repo(self, method: str, repo_type: str, repo_id: str, rest: list[str], query: dict, body: bytes):
        hub = self.hub
        user = self._user()
        if method == "GET" and (not rest or rest[0] == "revision"):
            repo = hub._repo(repo_type, repo_id, user)
            commit = hub._resolve(repo, rest[1] if len(rest) > 1 else "main")
            return self._json(self._info(repo, commit))
        if method == "GET" and rest == ["refs"]:
            repo = hub._repo(repo_type, repo_id, user)
            refs = {"branches": [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": oid}
                                 for b, oid in repo.branches.items()], "tags": [], "converts": []}
            if query.get("include_prs", ["0"])[0] in ("1", "true", "True"):
                refs["pullRequests"] = [{"name": ref.split("/", 1)[1], "ref": ref, "targetCommit": oid}
                                        for ref, oid in repo.pr_refs.items()]
            return self._json(refs)
        if rest and rest[0] == "discussions":
            return self._discussions(method, hub._repo(repo_type, repo_id, user), rest[1:], query, body, user)
        if not rest:
            raise _Fail(404, "not implemented")
        action, rev = rest[0], (rest[1] if len(rest) > 1 else "main")
        create_pr = query.get("create_pr", ["0"])[0] in ("1", "true", "True")
        if method == "POST" and action == "preupload":
            repo = hub._repo(repo_type, repo_id, user)
            self._committer(repo, unquote(rev), create_pr)
            tree = hub._resolve(repo, rev).tree
            files = []
            for f in json.loads(body)["files"]:
                sample = base64.b64decode(f.get("sample", ""))
                lfs = f["size"] >= hub.lfs_threshold or b"\0" in sample
                existing = tree.get(f["path"])
                files.append({"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False,
                              "oid": (existing.sha256 if existing.lfs else existing.blob_id) if existing else None})
            return self._json({"files": files, "commitOid": repo.branches["main"]})
        if method == "POST" and action == "commit":
            repo = hub._repo(repo_type, repo_id, user)
            branch = unquote(rev)
            author = self._committer(repo, branch, create_pr)
            lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
            header = next((item["value"] for item in lines if item["key"] == "header"), None)
            if header is None:
                raise _Fail(400, "commit payload without header")
            ops = [(item["key"], item["value"]) for item in lines if item["key"] != "header"]
            if any(key.startswith("_") for key, _ in ops):
                raise _Fail(400, "unsupported commit operation")
            prefix = f"{hub.url}/{URL_PREFIX[repo_type]}{repo_id}"
            if create_pr:
                if branch != "main":
                    raise _Fail(400, "pull requests are opened against main")
                disc = hub.open_discussion(repo, author, header.get("summary", ""), header.get("description", ""),
                                           pull_request=True, parent=header.get("parentCommit"), ops=ops)
                oid = repo.pr_refs[disc.ref]
                return self._json({"success": True, "commitOid": oid, "commitUrl": f"{prefix}/commit/{oid}",
                                   "pullRequestUrl": f"{prefix}/discussions/{disc.num}"})
            if branch.startswith("refs/pr/"):
                disc = hub.discussion(repo, int(branch.rsplit("/", 1)[1]))
                if disc.status not in ("open", "draft"):
                    raise _Fail(400, f"pull request {disc.num} is {disc.status}")
            commit = hub._commit(repo, header.get("parentCommit"), header.get("summary", ""),
                                 header.get("description", ""), author, ops, branch=branch)
            if branch.startswith("refs/pr/"):
                disc.events.append(_event("commit", author, {"subject": commit.title, "oid": commit.oid}))
            return self._json({"success": True, "commitOid": commit.oid, "commitUrl": f"{prefix}/commit/{commit.oid}",
                               "pullRequestUrl": None})
        if method == "GET" and action == "tree":
            repo = hub._repo(repo_type, repo_id, user)
            tree = hub._resolve(repo, rev).tree
            base = "/".join(rest[2:]).strip("/")
            recursive = query.get("recursive", ["False"])[0].lower() == "true"
            prefix = base + "/" if base else ""
            if base and base in tree:
                raise _Fail(404, f"{base} is a file", "EntryNotFound")
            if base and not any(p.startswith(prefix) for p in tree):
                raise _Fail(404, f"{base} does not exist", "EntryNotFound")
            out, folders = [], set()
            for p, e in sorted(tree.items()):
                if not p.startswith(prefix):
                    continue
                rel = p[len(prefix):].split("/")
                for depth in range(1, len(rel)):
                    folder = prefix + "/".join(rel[:depth])
                    if (recursive or depth == 1) and folder not in folders:
                        folders.add(folder)
                        out.append({"type": "directory", "path": folder, "oid": hashlib.sha1(folder.encode()).hexdigest()})
                if recursive or len(rel) == 1:
                    out.append(self._path_info(p, e))
            return self._json(out)
        if method == "POST" and action == "paths-info":
            repo = hub._repo(repo_type, repo_id, user)
            tree = hub._resolve(repo, rev).tree
            form = parse_qs(body.decode()) if body else {}
            out = []
            for p in form.get("paths", []):
                p = p.strip("/")
                if p in tree:
                    out.append(self._path_info(p, tree[p]))
                elif any(q.startswith(p + "/") for q in tree):
                    out.append({"type": "directory", "path": p, "oid": hashlib.sha1(p.encode()).hexdigest()})
            return self._json(out)
        if method == "GET" and action == "commits":
            repo = hub._repo(repo_type, repo_id, user)
            commit, out = hub._resolve(repo, rev), []
            while commit is not None:
                out.append({"id": commit.oid, "title": commit.title, "message": commit.description,
                            "date": commit.date, "authors": [{"user": commit.author}]})
                commit = repo.commits.get(commit.parent) if commit.parent else None
            return self._json(out)
        raise _Fail(404, f"the emulator does not implement {method} /api/{repo_type}s/{repo_id}/{'/'.join(rest)}")

    def _discussion_json(self, repo: Repo, disc: Discussion, details: bool = False) -> dict:
        out = {"num": disc.num, "title": disc.title, "author": {"name": disc.author, "type": "user"},
               "createdAt": disc.created_at, "status": disc.status, "isPullRequest": disc.is_pr, "pinned": False,
               "numComments": sum(e["type"] == "comment" for e in disc.events), "topReactions": [],
               "repo": {"name": repo.repo_id, "type": repo.repo_type}}
        if details:
            out["events"] = list(disc.events)
            if disc.is_pr:
                out["changes"] = {"base": "refs/heads/main", "headCommitId": repo.pr_refs.get(disc.ref)}
                if disc.merge_commit:
                    out["changes"]["mergeCommitId"] = disc.merge_commit
                out["filesWithConflicts"] = []
                out["diff"] = ""
        return out

    def _discussions(self, method: str, repo: Repo, rest: list[str], query: dict, body: bytes, user: str | None):
        hub = self.hub
        if method == "GET" and not rest:
            kind = query.get("type", ["all"])[0]
            status = query.get("status", ["all"])[0]
            author = query.get("author", [None])[0]
            items = [d for d in repo.discussions
                     if (kind == "all" or (kind == "pull_request") == d.is_pr)
                     and (status == "all" or (status == "open") == (d.status in ("open", "draft")))
                     and (author is None or d.author == author)]
            items.sort(key=lambda d: -d.num)  # newest first, as the Hub lists them
            return self._json({"discussions": [self._discussion_json(repo, d) for d in items], "count": len(items),
                               "start": 0, "numClosedDiscussions": sum(d.status in ("closed", "merged")
                                                                       for d in repo.discussions)})
        if method == "POST" and not rest:
            author = self._authenticated()
            payload = json.loads(body or b"{}")
            disc = hub.open_discussion(repo, author, payload.get("title", ""), payload.get("description", ""),
                                       pull_request=bool(payload.get("pullRequest")),
                                       draft=bool(payload.get("pullRequest")))
            return self._json({"num": disc.num, "url": f"{hub.url}/{URL_PREFIX[repo.repo_type]}{repo.repo_id}"
                                                       f"/discussions/{disc.num}"})
        if not rest or not rest[0].isdigit():
            raise _Fail(404, "Discussion not found")
        disc = hub.discussion(repo, int(rest[0]))
        if method == "GET" and len(rest) == 1:
            return self._json(self._discussion_json(repo, disc, details=True))
        action = rest[1] if len(rest) == 2 else None
        payload = json.loads(body or b"{}") if body else {}
        if method == "POST" and action == "comment":
            author = self._authenticated()
            event = _comment(author, payload.get("comment", ""))
            disc.events.append(event)
            return self._json({"newMessage": event})
        if method == "POST" and action == "status":
            author = self._authenticated()
            if not (hub._may_write(author, repo.repo_id) or author == disc.author):
                raise _Fail(403, f"You don't have the rights to change the status of discussion {disc.num}")
            if payload.get("status") not in ("open", "closed") or disc.status == "merged":
                raise _Fail(400, "status must be open or closed (and a merged pull request stays merged)")
            with hub.lock:
                if payload.get("comment"):
                    disc.events.append(_comment(author, payload["comment"]))
                disc.status = payload["status"]
                event = _event("status-change", author, {"status": disc.status})
                disc.events.append(event)
            return self._json({"newStatus": event})
        if method == "POST" and action == "merge":
            author = self._writer(repo.repo_id)
            hub.merge_pull_request(repo, disc, author, payload.get("comment"))
            return self._json({"success": True})
        raise _Fail(404, f"the emulator does not implement {method} discussions/{'/'.join(rest)}")

    def _lfs_batch(self, repo_type: str, repo_id: str, body: bytes) -> None:
        # any authenticated reader may upload objects (a pull request's files); commits check the rights
        self._authenticated()
        self.hub._repo(repo_type, repo_id, self._user())
        payload = json.loads(body)
        if payload.get("operation") != "upload":
            raise _Fail(400, "the emulator only implements LFS uploads")
        objects = []
        for obj in payload["objects"]:
            item = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self.hub.blobs:  # already-present objects get no actions (client skips them)
                item["actions"] = {"upload": {"href": f"{self.hub.url}/__lfs/{obj['oid']}"},
                                   "verify": {"href": f"{self.hub.url}/__lfs/verify"}}
            objects.append(item)
        self._send(200, json.dumps({"transfer": "basic", "objects": objects}).encode(),
                   content_type="application/vnd.git-lfs+json")

    def _resolve_file(self, method: str, repo_type: str, repo_id: str, rev: str, path: str) -> None:
        repo = self.hub._repo(repo_type, repo_id, self._user())
        commit = self.hub._resolve(repo, rev)
        entry = commit.tree.get(path)
        if entry is None:
            raise _Fail(404, "Entry not found", "EntryNotFound")
        data = self.hub.blobs[entry.sha256]
        etag = entry.sha256 if entry.lfs else entry.blob_id
        headers = {"X-Repo-Commit": commit.oid, "ETag": f'"{etag}"', "Accept-Ranges": "bytes"}
        if entry.lfs:
            headers.update({"X-Linked-Etag": f'"{entry.sha256}"', "X-Linked-Size": str(entry.size)})
        status = 200
        rng = self.headers.get("Range")
        if rng and method == "GET":
            m = re.match(r"bytes=(\d+)-(\d*)$", rng.strip())
            if m:
                start = int(m.group(1))
                end = int(m.group(2)) if m.group(2) else len(data) - 1
                if start >= len(data):
                    raise _Fail(416, "Range not satisfiable")
                headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
                data, status = data[start:end + 1], 206
        self._send(status, data, headers, content_type="application/octet-stream", head=method == "HEAD")


def main(argv: list[str] | None = None) -> None:
    """`python -m affectlab.testing.hub_emulator --port 8765 --token hf_x:alice` serves until interrupted."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--token", action="append", default=[], help="TOKEN:USER (repeatable)")
    args = parser.parse_args(argv)
    tokens = dict(t.split(":", 1) for t in args.token)
    hub = HubEmulator(tokens=tokens, port=args.port)
    print(f"hub emulator on {hub.url} (set HF_ENDPOINT={hub.url} HF_HUB_DISABLE_XET=1)", flush=True)
    try:
        hub.server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
