"""A small Hugging Face Hub-compatible HTTP server for tests (stdlib only).

It speaks the subset of the Hub protocol that `huggingface_hub`, `transformers` and `datasets` use to
create repos, commit files (inline or through git-LFS), list trees and download files, so tests can run
the real client code paths against 127.0.0.1. Storage lives in `store.HubStore`.

    with LocalHub() as hub:           # or hub = LocalHub().start(); ...; hub.stop()
        HfApi(endpoint=hub.endpoint).create_repo("user/demo")

Test hooks: `hub.fail_next("commit" | "lfs_upload", times=1, mode="error" | "disconnect")` makes the next
requests of that kind fail (a 500, or a dropped connection) *after* the server received them, and
`hub.requests` records `(method, path, status)` of every request served.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import tempfile
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from .store import REPO_TYPES, HubError, HubStore

USER = "user"  # every token is accepted and belongs to this user
_TYPE_FROM_PLURAL = {f"{t}s": t for t in REPO_TYPES}
_URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
_CHUNK = 1024 * 1024


class LocalHub:
    def __init__(self, root: str | None = None, host: str = "127.0.0.1", port: int = 0):
        self._owns_root = root is None
        self.root = root or tempfile.mkdtemp(prefix="local_hub_")
        self.store = HubStore(self.root)
        self.requests: list[tuple[str, str, int]] = []
        self._faults: Counter = Counter()
        self._fault_modes: dict[str, str] = {}
        self._faults_lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((host, port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.hub = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> LocalHub:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="local-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> LocalHub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def fail_next(self, kind: str, times: int = 1, mode: str = "error") -> None:
        assert kind in ("commit", "lfs_upload") and mode in ("error", "disconnect")
        with self._faults_lock:
            self._faults[kind] += times
            self._fault_modes[kind] = mode

    def _take_fault(self, kind: str) -> str | None:
        with self._faults_lock:
            if self._faults[kind] <= 0:
                return None
            self._faults[kind] -= 1
            return self._fault_modes[kind]


class _Disconnect(Exception):
    """Raised by a test hook: drop the connection without answering."""


def _split_rev(parts: list[str]) -> tuple[str, list[str]]:
    """Revision + remaining segments; tolerates an unquoted 'refs/convert/parquet'-style revision."""
    if len(parts) >= 3 and parts[0] == "refs" and parts[1] in ("convert", "pr", "heads", "tags"):
        return "/".join(parts[:3]), parts[3:]
    return (parts[0] if parts else "main"), parts[1:]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every response carries a Content-Length
    server_version = "LocalHub/1.0"

    # ---------------------------------------------------------------- plumbing
    @property
    def hub(self) -> LocalHub:
        return self.server.hub  # type: ignore[attr-defined]

    @property
    def store(self) -> HubStore:
        return self.hub.store

    def log_message(self, format, *args) -> None:  # silence stderr
        pass

    def log_request(self, code="-", size="-") -> None:
        self.hub.requests.append((self.command, self.path, int(code) if str(code).isdigit() else 0))

    def do_GET(self):
        self._dispatch()

    def do_HEAD(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def do_PUT(self):
        self._dispatch()

    def do_DELETE(self):
        self._dispatch()

    def _dispatch(self) -> None:
        self._body_state = "unread"  # -> "reading" -> "done"
        url = urlsplit(self.path)
        self.query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        self.base = f"http://{self.headers.get('Host') or self.hub.endpoint.split('://')[1]}"
        try:
            self._route([unquote(s) for s in url.path.split("/")[1:]], url.path)
        except (_Disconnect, BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            self.hub.requests.append((self.command, self.path, 0))  # 0: dropped without an answer
            return
        except HubError as err:
            self._drain()
            self._send_error(err)
        except Exception as err:  # a server bug must still produce a response, not a hung client
            self._drain()
            self._send_error(HubError(500, f"{type(err).__name__}: {err}"))

    def _iter_body(self):
        self._body_state = "reading"
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                yield self.rfile.read(size)
                self.rfile.readline()
        else:
            remaining = int(self.headers.get("Content-Length") or 0)
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, _CHUNK))
                if not chunk:
                    break
                remaining -= len(chunk)
                yield chunk
        self._body_state = "done"

    def _body(self) -> bytes:
        return b"".join(self._iter_body()) if self._body_state == "unread" else b""

    def _drain(self) -> None:
        """Consume the unread request body, so that the kept-alive connection stays in sync."""
        if self._body_state == "unread":
            for _ in self._iter_body():
                pass
        elif self._body_state == "reading":  # abandoned half-way: the connection cannot be reused
            self.close_connection = True

    def _json_body(self) -> dict:
        body = self._body()
        return json.loads(body) if body.strip() else {}

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, ctype="application/json") -> None:
        self._drain()  # never leave request bytes behind on a kept-alive connection
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, obj, status: int = 200, headers: dict | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers)

    def _send_error(self, err: HubError) -> None:
        headers = {"X-Error-Message": err.message.encode("ascii", "replace").decode()[:500], **err.headers}
        if err.code:
            headers["X-Error-Code"] = err.code
        self._send_json({"error": err.message}, err.status, headers)

    def _require_token(self) -> None:
        if not self.headers.get("Authorization", "").startswith("Bearer "):
            raise HubError(401, "Invalid credentials in Authorization header")

    # ----------------------------------------------------------------- routing
    def _route(self, seg: list[str], raw_path: str) -> None:
        method = self.command
        if raw_path.endswith(".git/info/lfs/objects/batch") and method == "POST":
            return self._lfs_batch(*self._repo_from_git_path(raw_path))
        if seg[:2] == ["_lfs", "upload"] and method == "PUT" and len(seg) == 4:
            return self._lfs_upload(seg[2], int(seg[3]))
        if seg[:2] == ["_lfs", "verify"] and method == "POST":
            return self._lfs_verify()
        if seg and seg[0] == "api":
            return self._route_api(seg[1:], method)
        return self._route_resolve(seg, method)

    def _route_api(self, seg: list[str], method: str) -> None:
        if seg == ["whoami-v2"] and method == "GET":
            return self._send_json(_whoami())
        if seg == ["agent-harnesses"] and method == "GET":  # fetched by huggingface_hub's agent detection
            return self._send_json({"standardEnvVars": [], "harnesses": {}})
        if seg == ["validate-yaml"] and method == "POST":
            self._body()
            return self._send_json({"errors": [], "warnings": []})
        if seg == ["repos", "create"] and method == "POST":
            return self._create_repo()
        if seg == ["repos", "delete"] and method in ("DELETE", "POST"):
            return self._delete_repo()
        if len(seg) < 3 or seg[0] not in _TYPE_FROM_PLURAL:
            raise HubError(404, f"Unknown API route /api/{'/'.join(seg)}")
        repo_type, repo_id, rest = _TYPE_FROM_PLURAL[seg[0]], f"{seg[1]}/{seg[2]}", seg[3:]
        action = rest[0] if rest else ""
        if method == "GET" and action in ("", "revision"):
            rev = _split_rev(rest[1:])[0] if rest else "main"
            return self._repo_info(repo_type, repo_id, rev)
        if method == "GET" and action == "tree":
            rev, path = _split_rev(rest[1:])
            return self._tree(repo_type, repo_id, rev, "/".join(path).strip("/"))
        if method == "POST" and action == "paths-info":
            return self._paths_info(repo_type, repo_id, _split_rev(rest[1:])[0])
        if method == "GET" and action == "refs":
            return self._refs(repo_type, repo_id)
        if method == "GET" and action == "commits":
            return self._commits(repo_type, repo_id, _split_rev(rest[1:])[0])
        if method == "POST" and action == "preupload":
            return self._preupload(repo_type, repo_id, _split_rev(rest[1:])[0])
        if method == "POST" and action == "commit":
            return self._commit(repo_type, repo_id, _split_rev(rest[1:])[0])
        if action == "branch" and method in ("POST", "DELETE"):
            return self._branch(repo_type, repo_id, "/".join(rest[1:]), method)
        if action == "tag" and method in ("POST", "DELETE"):
            return self._tag(repo_type, repo_id, "/".join(rest[1:]), method)
        if action == "settings" and method == "PUT":
            self._require_token()
            self.store.update_settings(repo_type, repo_id, self._json_body().get("private"))
            return self._send_json({})
        raise HubError(404, f"Unknown API route /api/{'/'.join(seg)}")

    def _route_resolve(self, seg: list[str], method: str) -> None:
        repo_type = "model"
        if seg and seg[0] in ("datasets", "spaces"):
            repo_type, seg = _TYPE_FROM_PLURAL[seg[0]], seg[1:]
        if method in ("GET", "HEAD") and len(seg) >= 5 and seg[2] == "resolve":
            rev, path = _split_rev(seg[3:])
            return self._resolve(repo_type, f"{seg[0]}/{seg[1]}", rev, "/".join(path))
        raise HubError(404, f"Not found: {self.path}")

    @staticmethod
    def _repo_from_git_path(raw_path: str) -> tuple[str, str]:
        seg = [unquote(s) for s in raw_path[: -len(".git/info/lfs/objects/batch")].strip("/").split("/")]
        repo_type = _TYPE_FROM_PLURAL[seg.pop(0)] if seg[0] in ("datasets", "spaces") else "model"
        return repo_type, "/".join(seg)

    # ------------------------------------------------------------------- repos
    def _create_repo(self) -> None:
        self._require_token()
        body = self._json_body()
        repo_type = body.get("type") or "model"
        if repo_type not in REPO_TYPES:
            raise HubError(400, f"Invalid repo type {repo_type}")
        repo_id = f"{body.get('organization') or USER}/{body['name']}"
        url = f"{self.base}/{_URL_PREFIX[repo_type]}{repo_id}"
        try:
            private = body.get("visibility") == "private" or body.get("private") is True
            self.store.create_repo(repo_type, repo_id, private, body.get("sdk"))
        except HubError as err:
            if err.status == 409:
                return self._send_json({"error": err.message, "url": url}, 409)
            raise
        self._send_json({"url": url, "name": repo_id, "id": repo_id})

    def _delete_repo(self) -> None:
        self._require_token()
        body = self._json_body()
        self.store.delete_repo(body.get("type") or "model", f"{body.get('organization') or USER}/{body['name']}")
        self._send_json({})

    def _load_at(self, repo_type: str, repo_id: str, rev: str) -> tuple[dict, str, dict]:
        with self.store.lock:
            repo = self.store.load(repo_type, repo_id)
            sha = self.store.resolve(repo, rev)
            return repo, sha, repo["commits"][sha]["files"]

    def _repo_info(self, repo_type: str, repo_id: str, rev: str) -> None:
        repo, sha, files = self._load_at(repo_type, repo_id, rev)
        with_blobs = self.query.get("blobs", "").lower() in ("1", "true")
        siblings = []
        for path in sorted(files):
            sibling = {"rfilename": path}
            if with_blobs:
                entry = files[path]
                sibling.update(size=entry["size"], blobId=entry["oid"])
                if entry["lfs"]:
                    sibling["lfs"] = {
                        "size": entry["size"],
                        "sha256": entry["sha256"],
                        "pointerSize": entry["pointer_size"],
                    }
            siblings.append(sibling)
        info = {
            "_id": hashlib.sha1(f"{repo_type}/{repo_id}".encode()).hexdigest()[:24],
            "id": repo_id,
            "author": repo_id.split("/")[0],
            "sha": sha,
            "lastModified": repo["commits"][sha]["date"],
            "createdAt": repo["created_at"],
            "private": repo["private"],
            "gated": False,
            "disabled": False,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
            "usedStorage": sum(e["size"] for e in files.values()),
        }
        if repo_type == "model":
            info.update(modelId=repo_id, downloads=0)
        elif repo_type == "dataset":
            info.update(downloads=0)
        else:
            info.update(sdk=repo["sdk"])
        self._send_json(info)

    def _refs(self, repo_type: str, repo_id: str) -> None:
        repo = self.store.load(repo_type, repo_id)

        def refs(kind: str, prefix: str) -> list[dict]:
            return [{"name": n, "ref": f"{prefix}{n}", "targetCommit": s} for n, s in repo["refs"][kind].items()]

        branches, tags = refs("branches", "refs/heads/"), refs("tags", "refs/tags/")
        self._send_json({"branches": branches, "tags": tags, "converts": [], "pullRequests": []})

    def _commits(self, repo_type: str, repo_id: str, rev: str) -> None:
        repo, sha, _ = self._load_at(repo_type, repo_id, rev)
        self._send_json(
            [
                {
                    "id": c["id"],
                    "title": c["title"],
                    "message": c["message"],
                    "date": c["date"],
                    "authors": [{"user": a} for a in c["authors"]],
                }
                for c in self.store.history(repo, sha)
            ]
        )

    def _branch(self, repo_type: str, repo_id: str, branch: str, method: str) -> None:
        self._require_token()
        if method == "POST":
            self.store.create_branch(repo_type, repo_id, branch, self._json_body().get("startingPoint"))
        else:
            self.store.delete_branch(repo_type, repo_id, branch)
        self._send_json({})

    def _tag(self, repo_type: str, repo_id: str, name: str, method: str) -> None:
        self._require_token()
        if method == "POST":  # /tag/{revision} with {"tag": name}
            self.store.create_tag(repo_type, repo_id, name, self._json_body()["tag"])
        else:  # /tag/{tag}
            self.store.delete_tag(repo_type, repo_id, name)
        self._send_json({})

    # -------------------------------------------------------------- listings
    def _path_entry(self, repo: dict, sha: str, files: dict, path: str, expand: bool) -> dict | None:
        if path in files:
            entry = files[path]
            out = {"type": "file", "oid": entry["oid"], "size": entry["size"], "path": path}
            if entry["lfs"]:
                out["lfs"] = {"oid": entry["sha256"], "size": entry["size"], "pointerSize": entry["pointer_size"]}
            if expand:
                out["securityFileStatus"] = {
                    "status": "safe",
                    "avScan": {"virusFound": False},
                    "pickleImportScan": None,
                }
        else:
            below = sorted((p, e["oid"]) for p, e in files.items() if p.startswith(path + "/"))
            if not below:
                return None
            tree_oid = hashlib.sha1(json.dumps(below).encode()).hexdigest()  # stable, changes with the content
            out = {"type": "directory", "oid": tree_oid, "size": 0, "path": path}
        if expand:
            last = self.store.last_commit_of(repo, sha, path, out["type"] == "directory")
            out["lastCommit"] = {"id": last["id"], "title": last["title"], "date": last["date"]}
        return out

    def _tree(self, repo_type: str, repo_id: str, rev: str, path: str) -> None:
        repo, sha, files = self._load_at(repo_type, repo_id, rev)
        recursive = self.query.get("recursive", "").lower() in ("1", "true")
        expand = self.query.get("expand", "").lower() in ("1", "true")
        prefix = f"{path}/" if path else ""
        children: set[str] = set()
        for file_path in files:
            if not file_path.startswith(prefix):
                continue
            parts = file_path[len(prefix) :].split("/")
            depth = len(parts) if recursive else 1
            children.update(prefix + "/".join(parts[: i + 1]) for i in range(depth))
        if path and not children:
            raise HubError(404, f"{path} does not exist on {rev}", "EntryNotFound", {"X-Repo-Commit": sha})
        entries = [self._path_entry(repo, sha, files, p, expand) for p in sorted(children)]
        # directories first, like the Hub
        self._send_json(sorted(entries, key=lambda e: (e["type"] != "directory", e["path"])))

    def _paths_info(self, repo_type: str, repo_id: str, rev: str) -> None:
        body = self._body()
        if self.headers.get("Content-Type", "").startswith("application/json"):
            data = json.loads(body or b"{}")
            paths, expand = data.get("paths", []), bool(data.get("expand"))
        else:  # the client posts a form: paths=a&paths=b&expand=false
            form = parse_qs(body.decode())
            paths, expand = form.get("paths", []), form.get("expand", ["false"])[-1].lower() in ("1", "true")
        repo, sha, files = self._load_at(repo_type, repo_id, rev)
        entries = [self._path_entry(repo, sha, files, p.strip("/"), expand) for p in paths]
        self._send_json([e for e in entries if e is not None])

    # ---------------------------------------------------------------- uploads
    def _preupload(self, repo_type: str, repo_id: str, rev: str) -> None:
        self._require_token()
        body = self._json_body()
        _, sha, files = self._load_at(repo_type, repo_id, rev)
        out = []
        for item in body.get("files", []):
            path = item["path"]
            mode = self.store.upload_mode(files, path, item.get("size", 0), base64.b64decode(item.get("sample", "")))
            existing = files.get(path)
            # `oid` lets the client skip unchanged files: sha256 for LFS files, git blob sha1 otherwise
            oid = None if existing is None else (existing["sha256"] if existing["lfs"] else existing["oid"])
            ignore = self.store.should_ignore(files, path, body.get("gitIgnore"))
            out.append({"path": path, "uploadMode": mode, "shouldIgnore": ignore, "oid": oid})
        self._send_json({"files": out, "commitOid": sha})

    def _commit(self, repo_type: str, repo_id: str, branch: str) -> None:
        self._require_token()
        if self.query.get("create_pr") in ("1", "true"):
            raise HubError(400, "Pull requests are not supported by the local test Hub")
        lines = [line for line in self._body().splitlines() if line.strip()]
        try:
            ops = [json.loads(line) for line in lines]
        except json.JSONDecodeError as err:
            raise HubError(400, f"Malformed NDJSON commit payload: {err}") from err
        fault = self.hub._take_fault("commit")

        def before_ref_update():
            if fault == "disconnect":
                raise _Disconnect()
            if fault == "error":
                raise HubError(500, "Simulated failure while committing (test hook)")

        sha = self.store.apply_commit(repo_type, repo_id, branch, ops, before_ref_update)
        commit_url = f"{self.base}/{_URL_PREFIX[repo_type]}{repo_id}/commit/{sha}"
        self._send_json(
            {"success": True, "commitOid": sha, "commitUrl": commit_url, "hookOutput": "", "pullRequestUrl": None}
        )

    def _lfs_batch(self, repo_type: str, repo_id: str) -> None:
        self._require_token()
        body = self._json_body()
        self.store.load(repo_type, repo_id)  # 404 RepoNotFound for unknown repos
        if body.get("operation") != "upload":
            raise HubError(400, "Only the 'upload' LFS operation is supported")
        objects = []
        for obj in body.get("objects", []):
            oid, size = obj["oid"], obj["size"]
            item = {"oid": oid, "size": size, "authenticated": True}
            if not (isinstance(oid, str) and len(oid) == 64 and isinstance(size, int) and size >= 0):
                item["error"] = {"code": 422, "message": f"Invalid oid/size: {oid!r}/{size!r}"}
            elif not self.store.has_blob(oid, size):  # stored objects get no actions: the client skips them
                item["actions"] = {
                    "upload": {"href": f"{self.base}/_lfs/upload/{oid}/{size}", "header": {}},
                    "verify": {"href": f"{self.base}/_lfs/verify", "header": {}},
                }
            objects.append(item)
        body = json.dumps({"transfer": "basic", "objects": objects}).encode()
        self._send(200, body, ctype="application/vnd.git-lfs+json")

    def _lfs_upload(self, oid: str, size: int) -> None:
        fault = self.hub._take_fault("lfs_upload")
        if fault == "disconnect":
            raise _Disconnect()
        if fault == "error":
            self._drain()
            raise HubError(500, "Simulated failure while uploading an LFS object (test hook)")
        self.store.put_stream(self._iter_body(), oid, size)
        self._send(200, b"")

    def _lfs_verify(self) -> None:
        body = self._json_body()
        if not self.store.has_blob(body.get("oid", ""), body.get("size")):
            raise HubError(404, f"LFS object {body.get('oid')} not found")
        self._send_json({})

    # --------------------------------------------------------------- download
    def _resolve(self, repo_type: str, repo_id: str, rev: str, path: str) -> None:
        _, sha, files = self._load_at(repo_type, repo_id, rev)
        entry = files.get(path)
        if entry is None:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": sha})
        size = entry["size"]
        headers = {"X-Repo-Commit": sha, "ETag": f'"{entry["oid"]}"', "Accept-Ranges": "bytes"}
        if entry["lfs"]:
            headers.update({"X-Linked-Etag": f'"{entry["sha256"]}"', "X-Linked-Size": str(size)})
        start, end, status = 0, size - 1, 200
        if "Range" in self.headers:
            parsed = _parse_range(self.headers["Range"], size)
            if parsed is None:
                raise HubError(416, "Requested range not satisfiable", headers={"Content-Range": f"bytes */{size}"})
            start, end = parsed
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        length = max(end - start + 1, 0)
        self._drain()
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command == "HEAD" or length == 0:
            return
        with open(self.store.blob_path(entry["sha256"]), "rb") as f:
            f.seek(start)
            while length > 0:
                chunk = f.read(min(length, _CHUNK))
                self.wfile.write(chunk)
                length -= len(chunk)


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """`bytes=a-b`, `bytes=a-` or `bytes=-n` -> inclusive (start, end); None if unsatisfiable."""
    try:
        unit, spec = header.split("=", 1)
        first, last = spec.split(",")[0].strip().split("-", 1)
        if unit.strip() != "bytes":
            return None
        if first == "":
            start, end = max(size - int(last), 0), size - 1
        else:
            start, end = int(first), min(int(last), size - 1) if last else size - 1
    except ValueError:
        return None
    return (start, end) if start < size and start <= end else None


def _whoami() -> dict:
    return {
        "type": "user",
        "id": "0" * 24,
        "name": USER,
        "fullname": "Local Test User",
        "email": "user@localhost",
        "emailVerified": True,
        "isPro": False,
        "orgs": [],
        "auth": {"type": "access_token", "accessToken": {"displayName": "local", "role": "write"}},
    }
