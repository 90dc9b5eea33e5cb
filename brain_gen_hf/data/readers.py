"""Find recordings (files, folders, globs) and open them with mne, one place for every format.

Formats: anything `mne.io.read_raw` opens (FIF/Neuromag, CTF `.ds`, KIT `.sqd/.con`, EDF/BDF,
EEGLAB `.set`, BrainVision `.vhdr`, ...) plus 4D/BTi folders (`c,rfDC` files), which
`read_raw` does not detect by name.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# Suffixes that name a recording. Sidecars (.fdt, .vmrk, .eeg, .meg4, ...) are opened by mne
# through the header file and must not be listed as recordings of their own.
RECORDING_SUFFIXES = (
    ".fif",
    ".fif.gz",
    ".ds",
    ".sqd",
    ".con",
    ".edf",
    ".bdf",
    ".gdf",
    ".set",
    ".vhdr",
    ".cnt",
    ".mff",
    ".nxe",
    ".snirf",
    ".cdt",
    ".nedf",
    ".xdf",
)
BTI_DATA_PREFIX = "c,rf"
# Files read together with a header file (same stem), part of its content fingerprint.
SIDECAR_SUFFIXES = (".fdt", ".eeg", ".vmrk", ".dat")
BTI_SIDECARS = ("config", "hs_file")

_BIDS_ENTITY = re.compile(r"(sub|ses|task|run|acq)-([a-zA-Z0-9]+)")


@dataclass(frozen=True)
class RecordingSource:
    """One raw recording and the names it will carry in the dataset."""

    path: Path
    dataset: str
    session: str  # unique within the dataset; one recording = one session (reference meaning)
    subject: str
    task: str

    @property
    def recording_id(self) -> str:
        return f"{self.dataset}/{self.session}"

    @property
    def resolved_path(self) -> str:
        """The identity of the source on disk (with `source_fingerprint`, its content)."""
        return str(self.path.resolve())


def check_dataset_name(name: str, where: str = "") -> str:
    """A user-supplied dataset name becomes a folder name: refuse anything that is not one plain name."""
    if not name or name.startswith(".") or "/" in name or "\\" in name or ".." in name or "\0" in name:
        raise ValueError(
            f"dataset name {name!r}{where} is not a plain name: dataset names become folder names and "
            "must not be empty, start with '.', or contain '/', '\\' or '..' (use e.g. 'my_meg')"
        )
    return name


def safe_name(name: str, fallback: str = "recording") -> str:
    """A name derived from a file or folder name, made safe to use as one path component."""
    name = re.sub(r"[\\/\0]", "_", name).replace("..", "_").lstrip(".")
    return name or fallback


def _recording_suffix(path: Path) -> str | None:
    name = path.name.lower()
    for suffix in RECORDING_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    if name.startswith(BTI_DATA_PREFIX):
        return "bti"
    return None


def is_recording(path: Path) -> bool:
    path = Path(path)
    suffix = _recording_suffix(path)
    if suffix is None:
        return False
    if suffix == ".ds" or suffix == ".mff":
        return path.is_dir()
    return path.is_file()


def _walk_folder(folder: Path) -> list[Path]:
    found = []
    for root, dirs, files in os.walk(folder):
        root_path = Path(root)
        # A CTF .ds / EGI .mff folder is one recording: list it and do not descend into it.
        for d in sorted(dirs):
            if _recording_suffix(root_path / d) in (".ds", ".mff"):
                found.append(root_path / d)
        dirs[:] = sorted(
            d for d in dirs if _recording_suffix(root_path / d) not in (".ds", ".mff") and not d.startswith(".")
        )
        found.extend(root_path / f for f in sorted(files) if is_recording(root_path / f))
    return sorted(found)


def _session_name(path: Path, root: Path) -> tuple[str, str, str]:
    """(session, subject, task) from BIDS entities when present, else from the relative path."""
    entities: dict[str, str] = {}
    for part in path.parts:
        for key, value in _BIDS_ENTITY.findall(part):
            entities[key] = value
    stem = path.name
    suffix = _recording_suffix(path)
    if suffix and suffix != "bti":
        stem = stem[: -len(suffix)]
    if "sub" in entities:
        parts = [f"{k}-{entities[k]}" for k in ("sub", "ses", "task", "acq", "run") if k in entities]
        session = "_".join(parts)
    else:
        try:
            relative = path.relative_to(root)
        except ValueError:
            relative = Path(path.name)
        rel_parts = list(relative.parts[:-1]) + [stem]
        session = "_".join(p for p in rel_parts if p) or stem
    session = safe_name(session)
    subject = f"sub-{entities['sub']}" if "sub" in entities else session
    return session, subject, entities.get("task", "")


def recording_files(path: Path) -> list[Path]:
    """Every file whose content makes up the recording at `path` (folder formats: all files inside)."""
    path = Path(path)
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    files = [path]
    suffix = _recording_suffix(path)
    if suffix == "bti":
        files += [path.parent / name for name in BTI_SIDECARS]
    else:
        stem = path.name[: -len(suffix)] if suffix else path.stem
        files += [path.parent / f"{stem}{sidecar}" for sidecar in SIDECAR_SUFFIXES]
    return [f for f in dict.fromkeys(files) if f.is_file()]


def source_stat(path: Path) -> list[list[int]]:
    """Cheap change detector: (size, mtime_ns, ctime_ns) of every file of the recording.

    Like git's index, an unchanged stat means unchanged content; a changed one triggers a
    `source_digest` comparison (a copy that keeps mtimes still gets a new ctime)."""
    return [[st.st_size, st.st_mtime_ns, st.st_ctime_ns] for st in (f.stat() for f in recording_files(path))]


def source_digest(path: Path) -> str:
    """sha256 over the names (relative to the recording) and bytes of every file of the recording."""
    path = Path(path)
    base = path if path.is_dir() else path.parent
    digest = hashlib.sha256()
    for file in recording_files(path):
        digest.update(file.relative_to(base).as_posix().encode() + b"\0")
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def source_fingerprint(path: Path) -> dict:
    """What the manifest stores to tell whether a source changed since it was processed."""
    return {"stat": source_stat(path), "sha256": source_digest(path)}


def discover_recordings(
    inputs, default_dataset: str | None = None, *, existing: Mapping[str, str] | None = None, layout: str = "auto"
) -> list[RecordingSource]:
    """Expand files, folders and globs into recordings. `NAME=PATH` names the dataset of PATH.

    `layout` names the rules for input folders: "auto" (every recording file, BIDS entities or the
    relative path as session name), or a dataset's own rules, "bids" (mne-bids), "omega", "mous",
    "camcan" (see `discovery.py`).

    The dataset name defaults to `default_dataset`, else to the input folder's name (or the
    file's parent folder). A file listed twice (e.g. by a folder and a glob) is one recording.
    Session names that clash within a dataset get `-01`, `-02`, ... in the order of the files'
    resolved paths, so the names do not depend on the order of `inputs`. `existing` maps resolved
    source paths to the recording ids they already have (a resumed build): those keep their ids,
    and no other file is given one of them.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    if default_dataset is not None:
        check_dataset_name(default_dataset, " (--dataset-name / config dataset_name)")
    found: dict[str, tuple[Path, str, str, str, str]] = {}  # resolved path -> (path, dataset, session, ...)
    for item in inputs:
        item = str(item)
        name = None
        if "=" in item and not os.path.exists(item):
            name, item = item.split("=", 1)
            check_dataset_name(name, f" (input {name}={item})")
        matches = sorted(glob.glob(item, recursive=True)) if glob.has_magic(item) else [item]
        if not matches:
            raise FileNotFoundError(f"no file matches the input {item!r}")
        for match in matches:
            path = Path(match)
            if not path.exists():
                raise FileNotFoundError(f"input does not exist: {path}")
            named = {}
            if path.is_dir() and not is_recording(path) and layout != "auto":
                from .discovery import layout_recordings

                root = path
                named = {file: names for file, *names in layout_recordings(path, layout)}
                files = list(named)
            elif path.is_dir() and not is_recording(path):
                root, files = path, _walk_folder(path)
                if not files:
                    raise FileNotFoundError(
                        f"no recording found under {path} (looked for {', '.join(RECORDING_SUFFIXES)})"
                    )
            else:
                root, files = path.parent, [path]
            dataset = name or default_dataset or safe_name(root.resolve().name, "dataset")
            for file in files:
                key = str(file.resolve())
                if key in found:
                    if found[key][1] != dataset:
                        raise ValueError(
                            f"{file} is listed under two dataset names ({found[key][1]!r} and "
                            f"{dataset!r}); list each recording once"
                        )
                    continue
                session, subject, task = named.get(file) or _session_name(file, root)
                found[key] = (file, dataset, safe_name(session), subject, task)
    return _unique_sessions(found, dict(existing or {}))


def _unique_sessions(found: dict, existing: dict[str, str]) -> list[RecordingSource]:
    """Sources with dataset-unique sessions; clashes resolve by resolved path, `existing` ids are kept."""
    taken = set(existing.values())
    groups: dict[tuple[str, str], list[str]] = {}
    for key, (_, dataset, session, _, _) in found.items():
        groups.setdefault((dataset, session), []).append(key)
    names: dict[str, str] = {}
    for (dataset, session), keys in groups.items():
        pending = []
        for key in sorted(keys):
            kept_dataset, _, kept = existing.get(key, "").partition("/")
            if kept_dataset == dataset and re.fullmatch(rf"{re.escape(session)}(-\d{{2,}})?", kept):
                names[key] = kept
            else:
                pending.append(key)
        suffixes = (session if i == 0 else f"{session}-{i:02d}" for i in range(len(taken) + len(keys) + 1))
        free = (name for name in suffixes if f"{dataset}/{name}" not in taken)
        for key in pending:
            names[key] = next(free)
            taken.add(f"{dataset}/{names[key]}")
    return [
        RecordingSource(path, dataset, names[key], subject, task)
        for key, (path, dataset, _, subject, task) in found.items()
    ]


def read_recording(path, *, preload: bool = True, warnings_to: list[str] | None = None):
    """Open one recording with mne. Raises ValueError (unsupported) or OSError (unreadable).

    mne's warnings (e.g. an EDF shorter than its header says) are dropped, or appended to
    `warnings_to` as "mne: ..." notes when it is given."""
    import mne

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: file or folder does not exist")
    if path.is_file() and path.stat().st_size == 0:
        raise OSError(f"{path}: the file is empty (0 bytes), not a recording")
    suffix = _recording_suffix(path)
    if suffix is None:
        raise ValueError(
            f"{path}: unsupported format (expected one of {', '.join(RECORDING_SUFFIXES)} or a BTi 'c,rf*' file)"
        )
    verbose = "error" if warnings_to is None else "warning"
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if suffix == "bti":
                config = path.parent / "config"
                head_shape = path.parent / "hs_file"
                raw = mne.io.read_raw_bti(
                    path,
                    config_fname=config,
                    head_shape_fname=head_shape if head_shape.exists() else None,
                    preload=preload,
                    verbose=verbose,
                )
            else:
                raw = mne.io.read_raw(path, preload=preload, verbose=verbose)
    except Exception as err:  # mne raises many types on damaged files; name the file whatever it was
        problem = " ".join(str(err).split())
        raise OSError(
            f"{path}: mne could not read the recording, the file is damaged or not a {suffix} "
            f"recording ({type(err).__name__}: {problem})"
        ) from err
    if warnings_to is not None:
        warnings_to.extend(f"mne: {' '.join(str(w.message).split())}" for w in caught)
    return raw
