"""On-disk repository store behind the local Hub test server.

Layout under `root`:
    blobs/<sha256>                        file contents, content-addressed (regular and LFS files alike)
    tmp/                                  partial uploads; renamed into blobs/ only once their hash checks out
    repos/<type>/<namespace>/<name>.json  refs + commits of one repo, replaced atomically on every write

A commit stores the full file table of the repo (path -> entry), so any commit can be served without
walking history. A ref only moves after the new commit is fully written: a failed or interrupted commit
leaves the repo exactly as it was (blobs written before the failure are unreferenced and harmless).
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import os
import re
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

REPO_TYPES = ("model", "dataset", "space")
LFS_THRESHOLD = 10 * 1024 * 1024  # the Hub refuses regular (non-LFS) files above 10 MB
_SHA_RE = re.compile(r"^[0-9a-f]{7,40}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")  # one part of a repo id (no "/", no "..")

# Initial .gitattributes of a new repo: binary formats that always go through LFS, as on the Hub.
DEFAULT_GITATTRIBUTES = "".join(
    f"*.{ext} filter=lfs diff=lfs merge=lfs -text\n"
    for ext in (
        "7z arrow bin bz2 ckpt ftz gz h5 joblib lz4 mlmodel model msgpack npy npz onnx ot parquet pb pickle pkl "
        "pt pth rar safetensors tar tflite tgz wasm xz zip zst"
    ).split()
)


class HubError(Exception):
    """An error the HTTP layer turns into a Hub-style error response."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def file_entry(sha256: str, size: int, lfs: bool, content: bytes | None = None) -> dict:
    """Tree entry of a file; `oid` is the git blob id (of the pointer file for LFS files)."""
    if lfs:
        pointer = lfs_pointer(sha256, size)
        oid = git_blob_sha1(pointer)
        return {"sha256": sha256, "size": size, "lfs": True, "oid": oid, "pointer_size": len(pointer)}
    assert content is not None
    return {"sha256": sha256, "size": size, "lfs": False, "oid": git_blob_sha1(content)}


def _gitattributes_lfs_patterns(text: str) -> list[str]:
    return [line.split()[0] for line in text.splitlines() if "filter=lfs" in line and line.split()]


def _gitignore_patterns(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _matches(path: str, patterns: list[str]) -> bool:
    name = path.rsplit("/", 1)[-1]
    for pattern in patterns:
        pattern = pattern.lstrip("/").rstrip("/")
        if fnmatch.fnmatch(path, pattern) or ("/" not in pattern and fnmatch.fnmatch(name, pattern)):
            return True
        if path.startswith(pattern + "/"):  # a directory pattern covers everything below it
            return True
    return False


class HubStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        for sub in ("blobs", "tmp", "repos"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        # One lock for all repo metadata: commits are rare in tests and this keeps every ref update atomic.
        self.lock = threading.RLock()
        self._counter = 0

    # ------------------------------------------------------------------ blobs
    def blob_path(self, sha256: str) -> Path:
        if not _SHA256_RE.match(sha256):  # also keeps client-chosen names out of the filesystem
            raise HubError(400, f"Invalid sha256 oid: {sha256!r}")
        return self.root / "blobs" / sha256

    def has_blob(self, sha256: str, size: int | None = None) -> bool:
        if not _SHA256_RE.match(sha256):
            return False
        path = self.blob_path(sha256)
        return path.is_file() and (size is None or path.stat().st_size == size)

    def put_bytes(self, data: bytes) -> str:
        sha256 = hashlib.sha256(data).hexdigest()
        if not self.has_blob(sha256, len(data)):
            self._write_atomic(self.blob_path(sha256), data)
        return sha256

    def put_stream(self, chunks, expected_sha256: str, expected_size: int) -> None:
        """Store an LFS upload; rejects it (nothing stored) if its size or sha256 differ from what was announced."""
        target = self.blob_path(expected_sha256)
        digest, size = hashlib.sha256(), 0
        fd, tmp = tempfile.mkstemp(dir=self.root / "tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    digest.update(chunk)
                    size += len(chunk)
                    f.write(chunk)
            if size != expected_size or digest.hexdigest() != expected_sha256:
                raise HubError(
                    400, f"Uploaded content does not match its oid/size (got sha256={digest.hexdigest()}, size={size})"
                )
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def _write_atomic(self, path: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.root / "tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)

    # ------------------------------------------------------------------ repos
    @staticmethod
    def valid_repo_id(repo_id: str) -> bool:
        parts = repo_id.split("/")
        return len(parts) == 2 and all(_NAME_RE.match(p) and ".." not in p and "--" not in p for p in parts)

    def _repo_file(self, repo_type: str, repo_id: str) -> Path:
        namespace, name = repo_id.split("/")
        return self.root / "repos" / repo_type / namespace / f"{name}.json"

    def load(self, repo_type: str, repo_id: str) -> dict:
        path = self._repo_file(repo_type, repo_id) if self.valid_repo_id(repo_id) else None
        if path is None or not path.is_file():
            raise HubError(404, f"Repository {repo_id} ({repo_type}) not found", "RepoNotFound")
        return json.loads(path.read_text())

    def _save(self, repo: dict) -> None:
        path = self._repo_file(repo["type"], repo["id"])
        path.parent.mkdir(parents=True, exist_ok=True)
        self._write_atomic(path, json.dumps(repo).encode())

    def create_repo(self, repo_type: str, repo_id: str, private: bool = False, sdk: str | None = None) -> dict:
        if not self.valid_repo_id(repo_id):
            raise HubError(400, f"Invalid repo id: {repo_id!r}")
        with self.lock:
            if self._repo_file(repo_type, repo_id).is_file():
                raise HubError(409, f"You already created this {repo_type} repo")
            repo = {
                "type": repo_type,
                "id": repo_id,
                "private": private,
                "sdk": sdk,
                "created_at": now_iso(),
                "refs": {"branches": {}, "tags": {}},
                "commits": {},
            }
            content = DEFAULT_GITATTRIBUTES.encode()
            files = {".gitattributes": file_entry(self.put_bytes(content), len(content), False, content)}
            sha = self._new_commit(repo, None, files, "initial commit", "")
            repo["refs"]["branches"]["main"] = sha
            self._save(repo)
            return repo

    def delete_repo(self, repo_type: str, repo_id: str) -> None:
        with self.lock:
            self.load(repo_type, repo_id)  # 404 if missing
            self._repo_file(repo_type, repo_id).unlink()

    def update_settings(self, repo_type: str, repo_id: str, private: bool | None) -> None:
        with self.lock:
            repo = self.load(repo_type, repo_id)
            if private is not None:
                repo["private"] = private
            self._save(repo)

    # -------------------------------------------------------------- revisions
    def resolve(self, repo: dict, revision: str) -> str:
        """Branch, tag, full or abbreviated commit sha -> commit sha."""
        refs = repo["refs"]
        for kind in ("branches", "tags"):
            if revision in refs[kind]:
                return refs[kind][revision]
        for prefix, kind in (("refs/heads/", "branches"), ("refs/tags/", "tags")):
            if revision.startswith(prefix) and revision[len(prefix) :] in refs[kind]:
                return refs[kind][revision[len(prefix) :]]
        if _SHA_RE.match(revision):
            matches = [sha for sha in repo["commits"] if sha.startswith(revision)]
            if len(matches) == 1:
                return matches[0]
        raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    def commit(self, repo: dict, sha: str) -> dict:
        return repo["commits"][sha]

    def _new_commit(self, repo: dict, parent: str | None, files: dict, title: str, message: str) -> str:
        self._counter += 1
        seed = json.dumps([parent, sorted(files.items()), title, message, time.time_ns(), self._counter])
        sha = hashlib.sha1(seed.encode()).hexdigest()
        repo["commits"][sha] = {
            "id": sha,
            "parents": [parent] if parent else [],
            "title": title,
            "message": message,
            "date": now_iso(),
            "authors": ["user"],
            "files": files,
        }
        return sha

    def history(self, repo: dict, sha: str) -> list[dict]:
        out = []
        while sha:
            commit = repo["commits"][sha]
            out.append(commit)
            sha = commit["parents"][0] if commit["parents"] else None
        return out

    def last_commit_of(self, repo: dict, head: str, path: str, is_dir: bool) -> dict:
        """Most recent commit (from `head`) that changed `path` (or anything below it for a folder)."""

        def snapshot(commit: dict) -> list:
            files = commit["files"]
            if is_dir:
                return sorted((p, e["oid"]) for p, e in files.items() if p.startswith(path + "/"))
            return [files[path]["oid"]] if path in files else []

        commits = self.history(repo, head)
        for commit, parent in zip(commits, commits[1:] + [None]):
            if parent is None or snapshot(commit) != snapshot(parent):
                return commit
        return commits[-1]

    # ----------------------------------------------------------- upload modes
    def upload_mode(self, files: dict, path: str, size: int, sample: bytes) -> str:
        existing = files.get(path)
        if existing is not None and existing["lfs"]:
            return "lfs"
        gitattributes = files.get(".gitattributes")
        patterns = []
        if gitattributes is not None:
            patterns = _gitattributes_lfs_patterns(self.blob_path(gitattributes["sha256"]).read_text())
        if size >= LFS_THRESHOLD or _matches(path, patterns) or b"\0" in sample:
            return "lfs"
        return "regular"

    def should_ignore(self, files: dict, path: str, gitignore: str | None) -> bool:
        if gitignore is None and ".gitignore" in files:
            gitignore = self.blob_path(files[".gitignore"]["sha256"]).read_text()
        return bool(gitignore) and _matches(path, _gitignore_patterns(gitignore))

    # ----------------------------------------------------------------- commit
    def apply_commit(self, repo_type: str, repo_id: str, branch: str, ops: list[dict], before_ref_update=None) -> str:
        """Apply parsed NDJSON commit operations to `branch`; all-or-nothing."""
        header = next((op["value"] for op in ops if op.get("key") == "header"), None)
        if header is None:
            raise HubError(400, "Missing commit header")
        with self.lock:
            repo = self.load(repo_type, repo_id)
            if branch not in repo["refs"]["branches"]:
                if branch in repo["refs"]["tags"] or _SHA_RE.match(branch):
                    raise HubError(400, f"Can only commit to a branch, not to '{branch}'")
                raise HubError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
            head = repo["refs"]["branches"][branch]
            parent = header.get("parentCommit")
            if parent and not head.startswith(parent):
                raise HubError(412, f"Parent commit {parent} is not the head of {branch} ({head})")

            files = dict(self.commit(repo, head)["files"])
            for op in ops:
                key, value = op.get("key"), op.get("value", {})
                if key == "header":
                    continue
                path = value.get("path", "").strip("/")
                if key == "file":
                    content = _decode_content(value)
                    if len(content) > LFS_THRESHOLD:
                        raise HubError(400, f"{path} is larger than 10 MB: it must be uploaded through LFS")
                    files[path] = file_entry(self.put_bytes(content), len(content), False, content)
                elif key == "lfsFile":
                    sha256 = value.get("oid", "")
                    if not self.has_blob(sha256):
                        raise HubError(400, f"LFS object {sha256} for {path} was never uploaded")
                    size = self.blob_path(sha256).stat().st_size
                    if value.get("size") not in (None, size):
                        raise HubError(400, f"LFS object {sha256} has size {size}, not {value['size']}")
                    files[path] = file_entry(sha256, size, True)
                elif key == "deletedFile":
                    if path not in files:
                        raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                    del files[path]
                elif key == "deletedFolder":
                    below = [p for p in files if p.startswith(path + "/")]
                    if not below:
                        raise HubError(404, f"A folder with this name doesn't exist: {path}", "EntryNotFound")
                    for p in below:
                        del files[p]
                else:
                    raise HubError(400, f"Unknown commit operation: {key}")

            title, message = header.get("summary") or "update", header.get("description") or ""
            sha = self._new_commit(repo, head, files, title, message)
            if before_ref_update is not None:
                before_ref_update()  # test hook: may raise to simulate a crash mid-commit
            repo["refs"]["branches"][branch] = sha
            self._save(repo)
            return sha

    # ------------------------------------------------------------------- refs
    def create_branch(self, repo_type: str, repo_id: str, branch: str, starting_point: str | None) -> None:
        with self.lock:
            repo = self.load(repo_type, repo_id)
            if branch in repo["refs"]["branches"]:
                raise HubError(409, f"Branch {branch} already exists")
            repo["refs"]["branches"][branch] = self.resolve(repo, starting_point or "main")
            self._save(repo)

    def delete_branch(self, repo_type: str, repo_id: str, branch: str) -> None:
        with self.lock:
            repo = self.load(repo_type, repo_id)
            if branch == "main" or branch not in repo["refs"]["branches"]:
                raise HubError(400 if branch == "main" else 404, f"Cannot delete branch {branch}", "RevisionNotFound")
            del repo["refs"]["branches"][branch]
            self._save(repo)

    def create_tag(self, repo_type: str, repo_id: str, revision: str, tag: str) -> None:
        with self.lock:
            repo = self.load(repo_type, repo_id)
            if tag in repo["refs"]["tags"]:
                raise HubError(409, f"Tag {tag} already exists")
            repo["refs"]["tags"][tag] = self.resolve(repo, revision)
            self._save(repo)

    def delete_tag(self, repo_type: str, repo_id: str, tag: str) -> None:
        with self.lock:
            repo = self.load(repo_type, repo_id)
            if repo["refs"]["tags"].pop(tag, None) is None:
                raise HubError(404, f"Tag {tag} not found", "RevisionNotFound")
            self._save(repo)


def _decode_content(value: dict) -> bytes:
    content = value.get("content", "")
    if value.get("encoding") == "base64":
        return base64.b64decode(content)
    return content.encode()
