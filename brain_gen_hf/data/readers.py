"""Find recordings (files, folders, globs) and open them with mne, one place for every format.

Formats: anything `mne.io.read_raw` opens (FIF/Neuromag, CTF `.ds`, KIT `.sqd/.con`, EDF/BDF,
EEGLAB `.set`, BrainVision `.vhdr`, ...) plus 4D/BTi folders (`c,rfDC` files), which
`read_raw` does not detect by name.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path

# Suffixes that name a recording. Sidecars (.fdt, .vmrk, .eeg, .meg4, ...) are opened by mne
# through the header file and must not be listed as recordings of their own.
RECORDING_SUFFIXES = (
    ".fif", ".fif.gz", ".ds", ".sqd", ".con", ".edf", ".bdf", ".gdf", ".set", ".vhdr", ".cnt",
    ".mff", ".nxe", ".snirf", ".cdt", ".nedf", ".xdf",
)
BTI_DATA_PREFIX = "c,rf"

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
        dirs[:] = sorted(d for d in dirs if _recording_suffix(root_path / d) not in (".ds", ".mff")
                         and not d.startswith("."))
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
    subject = f"sub-{entities['sub']}" if "sub" in entities else session
    return session, subject, entities.get("task", "")


def discover_recordings(inputs, default_dataset: str | None = None) -> list[RecordingSource]:
    """Expand files, folders and globs into recordings. `NAME=PATH` names the dataset of PATH.

    The dataset name defaults to `default_dataset`, else to the input folder's name (or the
    file's parent folder). Session names are made unique within a dataset with `-01`, `-02`.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    sources: list[RecordingSource] = []
    seen: dict[str, int] = {}
    for item in inputs:
        item = str(item)
        name = None
        if "=" in item and not os.path.exists(item):
            name, item = item.split("=", 1)
        matches = sorted(glob.glob(item, recursive=True)) if glob.has_magic(item) else [item]
        if not matches:
            raise FileNotFoundError(f"no file matches the input {item!r}")
        for match in matches:
            path = Path(match)
            if not path.exists():
                raise FileNotFoundError(f"input does not exist: {path}")
            if path.is_dir() and not is_recording(path):
                root, files = path, _walk_folder(path)
                if not files:
                    raise FileNotFoundError(
                        f"no recording found under {path} (looked for {', '.join(RECORDING_SUFFIXES)})")
            else:
                root, files = path.parent, [path]
            dataset = name or default_dataset or (root.resolve().name or "dataset")
            for file in files:
                session, subject, task = _session_name(file, root)
                key = f"{dataset}/{session}"
                if key in seen:
                    seen[key] += 1
                    session = f"{session}-{seen[key]:02d}"
                else:
                    seen[key] = 0
                sources.append(RecordingSource(file, dataset, session, subject, task))
    return sources


def read_recording(path, *, preload: bool = True):
    """Open one recording with mne. Raises ValueError (unsupported) or OSError (unreadable)."""
    import mne

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: file or folder does not exist")
    suffix = _recording_suffix(path)
    if suffix is None:
        raise ValueError(
            f"{path}: unsupported format (expected one of {', '.join(RECORDING_SUFFIXES)} or a "
            "BTi 'c,rf*' file)")
    try:
        if suffix == "bti":
            config = path.parent / "config"
            head_shape = path.parent / "hs_file"
            return mne.io.read_raw_bti(
                path, config_fname=config, head_shape_fname=head_shape if head_shape.exists() else None,
                preload=preload, verbose="error")
        return mne.io.read_raw(path, preload=preload, verbose="error")
    except (ValueError, OSError, RuntimeError, KeyError, IndexError, EOFError, TypeError) as err:
        raise OSError(f"{path}: mne could not read the recording ({type(err).__name__}: {err})") from err
