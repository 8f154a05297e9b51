"""A minimal local fake of the Hugging Face Hub HTTP API, so tests can drive the real ``huggingface_hub`` client.

Scope (huggingface_hub 2.4; dataset repos only for file downloads, set up with ``add_dataset``; model repos for
the rest): ``HfApi.create_repo`` (``private``, 409 for ``exist_ok``),
``create_branch``, ``create_commit`` / ``upload_file`` / ``upload_folder`` (preupload + ndjson commit, including
``deletedFile``/``deletedFolder`` and ``parent_commit``), ``model_info`` / ``repo_info``, ``list_repo_tree`` /
``list_repo_files``, ``list_repo_refs``, ``whoami``, README metadata validation, and ``hf_hub_download`` /
``snapshot_download`` (HEAD/GET on ``/{repo_id}/resolve/{revision}/{path}``, branch names or commit hashes). A new repo
has one empty commit on ``main``. Preupload answers ``uploadMode: "regular"`` for every file, whatever its size, so the
client inlines contents (base64) in the commit and never uses LFS or Xet; resolve answers carry no ``X-Xet-Hash``, so
downloads are plain HTTP GETs. Write endpoints (and reads of private repos) need ``Authorization: Bearer ...``
(any token, or exactly ``token`` when given) and answer 401 otherwise. It listens on 127.0.0.1, on a free port.

How tests point the client at it. ``huggingface_hub.constants`` reads ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` once, at
import, and ``tests/conftest.py`` sets ``HF_HUB_OFFLINE=1``: in offline mode the shared session's request hook raises
``OfflineModeIsEnabled`` for *every* request, a custom endpoint included. So wrap the test in ``hub.online()``, which
sets ``constants.HF_HUB_OFFLINE = False`` and points ``constants.ENDPOINT`` / ``HUGGINGFACE_CO_URL_TEMPLATE`` at this
server (restoring all three on exit). Redirecting the default endpoint, not only lifting offline mode, matters: some
calls ignore ``endpoint=`` (building request headers looks up ``{ENDPOINT}/api/agent-harnesses``) and would otherwise
try huggingface.co (here that lookup shows up in ``hub.requests`` as a 404'd ``GET /api/agent-harnesses``). In pytest,
``monkeypatch.setattr(huggingface_hub.constants, name, value)`` on the same three names is equivalent. Inside
``online()``, ``HfApi(endpoint=hub.endpoint, token=...)`` and ``snapshot_download(..., endpoint=hub.endpoint)`` work,
and so does leaving ``endpoint`` out::

    with FakeHub(token="hf_fake") as hub, hub.online():
        api = HfApi(endpoint=hub.endpoint, token="hf_fake")
        api.create_repo("me/model", private=True)
        api.upload_folder(repo_id="me/model", folder_path=src)
        snapshot_download("me/model", endpoint=hub.endpoint, token="hf_fake", local_dir=dst)
    assert all(r.authenticated for r in hub.requests if r.method == "POST")

For a subprocess (e.g. the CLI), pass ``env={**os.environ, **hub.env()}`` instead (``HF_ENDPOINT``,
``HF_HUB_OFFLINE=0``, ``HF_TOKEN``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit

REDACTED = "<redacted>"
_API = re.compile(r"/api/models/([^/]+/[^/]+)(?:/(revision|tree|refs|preupload|commit|branch)(?:/([^/]+)(/.*)?)?)?")
_RESOLVE = re.compile(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)")
_DATASET_RESOLVE = re.compile(r"/datasets/([^/]+/[^/]+)/resolve/([^/]+)/(.+)")
_RANGE = re.compile(r"bytes=(\d+)-(\d*)")
Response = tuple[int, dict[str, str], bytes]


class RecordedRequest(NamedTuple):
    """One request as the server saw it; the ``Authorization`` value is replaced by ``REDACTED``."""

    method: str
    path: str  # with the query string
    headers: dict[str, str]

    @property
    def authenticated(self) -> bool:
        return any(key.lower() == "authorization" for key in self.headers)


class _HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message = status, message
        self.headers = {"X-Error-Message": message, **({"X-Error-Code": code} if code else {}), **(headers or {})}


def git_blob_oid(data: bytes) -> str:
    """The git blob id of ``data`` (what the Hub reports as a regular file's oid and ETag)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _json(data: Any, status: int = 200) -> Response:
    return status, {"Content-Type": "application/json"}, json.dumps(data).encode()


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _dispatch(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, headers, payload = self.server.hub.handle(self.command, self.path, dict(self.headers.items()), body)
        self.send_response(status)
        for key, value in {**headers, "Content-Length": str(len(payload))}.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_HEAD = do_POST = _dispatch

    def log_message(self, format: str, *args: Any) -> None:  # silence the default stderr log
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # so that server_close() joins the request threads
    hub: FakeHub


class FakeHub:
    """The fake Hub: ``with FakeHub() as hub:`` serves on ``hub.endpoint`` until the block exits.

    ``repos`` maps repo_id to ``{"private": bool, "branches": {name: {path: bytes}}, "heads": {name: commit_oid},
    "commits": [{"oid", "branch", "summary", "description", "files": {path: bytes}}]}`` (oldest commit first);
    ``requests`` lists every request received, in order.
    """

    def __init__(self, token: str | None = None, username: str = "fake-user") -> None:
        self.token, self.username = token, username
        self.repos: dict[str, dict[str, Any]] = {}
        self.requests: list[RecordedRequest] = []
        self.endpoint = ""
        self._lock = threading.Lock()
        self._instance = uuid.uuid4().hex
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> FakeHub:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.hub = self
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-hub", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
        self._server = self._thread = None

    @contextmanager
    def online(self) -> Iterator[FakeHub]:
        """Lift huggingface_hub's offline mode and send its default endpoint here, for the duration of the block."""
        from huggingface_hub import constants

        values = {
            "HF_HUB_OFFLINE": False,
            "ENDPOINT": self.endpoint,
            "HUGGINGFACE_CO_URL_TEMPLATE": self.endpoint + "/{repo_id}/resolve/{revision}/{filename}",
        }
        saved = {name: getattr(constants, name) for name in values}
        for name, value in values.items():
            setattr(constants, name, value)
        try:
            yield self
        finally:
            for name, value in saved.items():
                setattr(constants, name, value)

    def add_dataset(self, repo_id: str, branches: dict[str, dict[str, bytes]]) -> None:
        """A public dataset repo with these files per branch (a branch may be named like the Hub's
        `refs/convert/parquet`), served to `hf_hub_download(..., repo_type="dataset")`."""
        repo: dict[str, Any] = {"private": False, "branches": {}, "heads": {}, "commits": []}
        with self._lock:
            for branch, files in branches.items():
                self._new_commit(f"datasets/{repo_id}", repo, branch, {"summary": "add data"}, dict(files))
            self.repos[f"datasets/{repo_id}"] = repo

    def env(self) -> dict[str, str]:
        """Environment variables that point a huggingface_hub started in a subprocess at this server."""
        env = {"HF_ENDPOINT": self.endpoint, "HF_HUB_OFFLINE": "0"}
        return env | ({"HF_TOKEN": self.token} if self.token else {})

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Response:
        """Answer one request (called by the server threads; usable directly too)."""
        auth = next((value for key, value in headers.items() if key.lower() == "authorization"), None)
        authorized = auth is not None and auth.startswith("Bearer ") and self.token in (None, auth[len("Bearer ") :])
        redacted = {key: REDACTED if key.lower() == "authorization" else value for key, value in headers.items()}
        url = urlsplit(target)
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        with self._lock:
            self.requests.append(RecordedRequest(method, target, redacted))
            try:
                return self._route(method, url.path, query, headers, body, authorized)
            except _HubError as err:
                status, json_headers, payload = _json({"error": err.message}, err.status)
                return status, json_headers | err.headers, payload

    def _route(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes, authorized: bool
    ) -> Response:
        if method == "POST" and path == "/api/repos/create":
            return self._create_repo(json.loads(body or b"{}"), authorized)
        if method == "POST" and path == "/api/validate-yaml":
            return _json({"errors": [], "warnings": []})
        if method == "GET" and path == "/api/whoami-v2":
            self._require_auth(authorized)
            return _json({"type": "user", "name": self.username, "auth": {"accessToken": {"role": "write"}}})
        if match := _API.fullmatch(path):
            repo_id, action, revision = unquote(match[1]), match[2], unquote(match[3] or "main")
            if action in ("preupload", "commit", "branch"):
                self._require_auth(authorized)
            repo = self._repo(repo_id, authorized)
            if method == "GET" and action in (None, "revision"):
                oid, files = self._resolve(repo, revision)
                siblings = [dict(rfilename=p, size=len(d), blobId=git_blob_oid(d)) for p, d in sorted(files.items())]
                return _json(dict(id=repo_id, modelId=repo_id, sha=oid, private=repo["private"], siblings=siblings))
            if method == "GET" and action == "tree":
                recursive = query.get("recursive", "").lower() in ("1", "true")
                return _json(self._tree(repo, revision, unquote(match[4] or "").strip("/"), recursive))
            if method == "GET" and action == "refs":
                branches = [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": o} for n, o in repo["heads"].items()]
                return _json({"branches": branches, "converts": [], "tags": [], "pullRequests": []})
            if method == "POST" and action == "preupload":
                files = self._resolve(repo, revision)[1]
                paths = [f["path"] for f in json.loads(body)["files"]]
                oids = {p: git_blob_oid(files[p]) if p in files else None for p in paths}  # client skips unchanged
                modes = [dict(path=p, uploadMode="regular", shouldIgnore=False, oid=o) for p, o in oids.items()]
                return _json({"files": modes})
            if method == "POST" and action == "commit":
                return self._commit(repo_id, repo, revision, query, body)
            if method == "POST" and action == "branch":
                if revision in repo["branches"]:
                    raise _HubError(409, f"Branch {revision} already exists")
                start = json.loads(body or b"{}").get("startingPoint") or "main"
                repo["heads"][revision], files = self._resolve(repo, start)
                repo["branches"][revision] = dict(files)
                return _json({})
        dataset_file = _DATASET_RESOLVE.fullmatch(path)
        if method in ("GET", "HEAD") and (match := dataset_file or _RESOLVE.fullmatch(path)):
            repo = self._repo(("datasets/" if dataset_file else "") + unquote(match[1]), authorized)
            oid, files = self._resolve(repo, unquote(match[2]))
            filename = unquote(match[3])
            if filename not in files:
                raise _HubError(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": oid})
            data, status = files[filename], 200
            out = {"ETag": f'"{git_blob_oid(data)}"', "X-Repo-Commit": oid, "Content-Type": "application/octet-stream"}
            if wanted := _RANGE.fullmatch(next((v for k, v in headers.items() if k.lower() == "range"), "")):
                start, end = int(wanted[1]), int(wanted[2]) if wanted[2] else len(data) - 1
                out["Content-Range"], data, status = f"bytes {start}-{end}/{len(data)}", data[start : end + 1], 206
            return status, out, data
        raise _HubError(404, f"FakeHub does not implement {method} {path}")

    def _require_auth(self, authorized: bool) -> None:
        if not authorized:
            raise _HubError(401, "Invalid credentials in Authorization header")

    def _repo(self, repo_id: str, authorized: bool) -> dict[str, Any]:
        repo = self.repos.get(repo_id)
        if repo is None or (repo["private"] and not authorized):
            raise _HubError(404 if repo is None else 401, "Repository not found", "RepoNotFound")
        return repo

    def _resolve(self, repo: dict[str, Any], revision: str) -> tuple[str, dict[str, bytes]]:
        if revision in repo["heads"]:
            return repo["heads"][revision], repo["branches"][revision]
        commit = next((c for c in repo["commits"] if c["oid"] == revision), None)
        if commit is None:
            raise _HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit["oid"], commit["files"]

    def _new_commit(self, repo_id: str, repo: dict[str, Any], branch: str, header: dict, files: dict) -> str:
        # Unique per server instance, as real commit ids are: the client caches files by commit id.
        oid = hashlib.sha1(f"{self._instance}\0{repo_id}\0{len(repo['commits'])}\0{branch}".encode()).hexdigest()
        summary, description = header.get("summary", ""), header.get("description", "")
        repo["commits"].append(
            {"oid": oid, "branch": branch, "summary": summary, "description": description, "files": dict(files)}
        )
        repo["heads"][branch], repo["branches"][branch] = oid, files
        return oid

    def _create_repo(self, payload: dict[str, Any], authorized: bool) -> Response:
        self._require_auth(authorized)
        if payload.get("type") not in (None, "model"):
            raise _HubError(400, "FakeHub only serves model repos")
        repo_id = f"{payload.get('organization') or self.username}/{payload['name']}"
        url = f"{self.endpoint}/{repo_id}"
        if repo_id in self.repos:
            return _json({"error": "You already created this model repo", "url": url}, 409)
        private = payload.get("visibility") == "private" or payload.get("private") is True
        self.repos[repo_id] = {"private": private, "branches": {}, "heads": {}, "commits": []}
        self._new_commit(repo_id, self.repos[repo_id], "main", {"summary": "initial commit"}, {})
        return _json({"url": url, "name": repo_id, "id": repo_id})

    def _commit(self, repo_id: str, repo: dict[str, Any], branch: str, query: dict, body: bytes) -> Response:
        if query.get("create_pr") or branch not in repo["heads"]:
            raise _HubError(404, f"Invalid rev id: {branch} (FakeHub only commits to branches)", "RevisionNotFound")
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        header = next((line["value"] for line in lines if line["key"] == "header"), {})
        if header.get("parentCommit") not in (None, repo["heads"][branch]):
            raise _HubError(412, "A commit has happened since. Please refresh and try again.")
        files = dict(repo["branches"][branch])
        for line in lines:
            key, value = line["key"], line["value"]
            if key == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                if files.pop(value["path"], None) is None:
                    raise _HubError(404, "A file with this name doesn't exist", "EntryNotFound")
            elif key == "deletedFolder":
                files = {p: d for p, d in files.items() if not p.startswith(value["path"].rstrip("/") + "/")}
            elif key != "header":
                raise _HubError(400, f"FakeHub does not support {key!r} commit operations (LFS/Xet)")
        oid = self._new_commit(repo_id, repo, branch, header, files)
        return _json({"success": True, "commitOid": oid, "commitUrl": f"{self.endpoint}/{repo_id}/commit/{oid}"})

    def _tree(self, repo: dict[str, Any], revision: str, folder: str, recursive: bool) -> list[dict[str, Any]]:
        files = self._resolve(repo, revision)[1]
        prefix, entries = f"{folder}/" if folder else "", {}
        for path, data in files.items():
            if not path.startswith(prefix):
                continue
            parts = path[len(prefix) :].split("/")
            for depth in range(1, len(parts) if recursive else min(2, len(parts))):
                folder_path = prefix + "/".join(parts[:depth])
                entries[folder_path] = dict(type="directory", oid=git_blob_oid(folder_path.encode()), path=folder_path)
            if recursive or len(parts) == 1:
                entries[path] = {"type": "file", "oid": git_blob_oid(data), "size": len(data), "path": path}
        if folder and not entries:
            raise _HubError(404, f"{folder} does not exist", "EntryNotFound")
        return [entries[path] for path in sorted(entries)]
