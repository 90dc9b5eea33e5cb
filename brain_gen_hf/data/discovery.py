"""Dataset-specific discovery rules (spec 1.3) and BIDS input through mne-bids.

Each layout maps a dataset root to `(path, session, subject, task)` entries; `readers.discover_recordings`
turns them into `RecordingSource`s (clashing session names get `-01`, `-02`, ...).
- `bids`: every MEG/EEG recording mne-bids finds under a BIDS root; subject/session/task/run from its entities.
- `omega`: `sub-*/ses-*/meg/*.ds`; rest (`rest`) and after-task rest (`restaftertask`) only, noise skipped.
- `mous`: `sub-*/meg/<entry>`, task from the entry name (`sub-A2002_task-auditory_meg.ds` -> `auditory_meg`).
- `camcan`: subject roots found breadth-first (depth <= 7), cohort cc700/cc280 from the path,
  `sub-*/[ses-*/]meg/*_meg.fif` without cross-talk files.
"""

from __future__ import annotations

import re
from pathlib import Path

LAYOUTS = ("auto", "bids", "omega", "mous", "camcan")
BIDS_EXTENSIONS = (".fif", ".ds", ".con", ".sqd", ".edf", ".bdf", ".set", ".vhdr", ".mff", ".snirf")
CAMCAN_MAX_DEPTH = 7
OMEGA_TASKS = (("noise", None), ("restafter", "restaftertask"), ("rest", "rest"))  # first match wins


def _tag(name: str, tag: str) -> str | None:
    match = re.search(rf"{tag}-([a-zA-Z0-9]+)", name)
    return match.group(1) if match else None


def _dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def omega_recordings(root: Path) -> list[tuple[Path, str, str, str]]:
    found = []
    for subject_dir in (d for d in _dirs(root) if "sub" in d.name):
        subject_id = subject_dir.name.split("-", 1)[-1]
        for session_dir in _dirs(subject_dir):
            session_id = session_dir.name.split("-", 1)[-1]
            for ds in sorted((session_dir / "meg").glob("*.ds")):
                task = next((task for key, task in OMEGA_TASKS if key in ds.name.lower()), None)
                if task is None:  # noise recordings and unknown tasks are not resting-state data
                    continue
                found.append((ds, f"sub-{subject_id}_ses-{session_id}_{task}", f"sub-{subject_id}", task))
    return found


def mous_recordings(root: Path) -> list[tuple[Path, str, str, str]]:
    found = []
    for subject_dir in (d for d in _dirs(root) if "sub" in d.name):
        subject_id = subject_dir.name.split("-", 1)[-1]
        for entry in _dirs(subject_dir / "meg"):
            task = "-".join(entry.name.split("-")[2:]).split(".")[0]
            if not task:
                continue
            found.append((entry, f"sub-{subject_id}_ses-{task}", f"sub-{subject_id}", _tag(entry.name, "task") or task))
    return found


def camcan_subject_roots(base: Path) -> list[Path]:
    """Folders holding `sub-*` folders, breadth-first, never descending into a subject."""
    queue, roots = [(base, 0)], []
    while queue:
        folder, depth = queue.pop(0)
        if depth > CAMCAN_MAX_DEPTH:
            continue
        children = _dirs(folder)
        if any(c.name.startswith("sub-") for c in children):
            roots.append(folder)
            continue
        queue.extend((c, depth + 1) for c in children)
    return sorted(roots)


def camcan_recordings(root: Path) -> list[tuple[Path, str, str, str]]:
    roots = camcan_subject_roots(root)
    if not roots:
        raise FileNotFoundError(f"no CamCAN subject folders (sub-*) under {root} (searched {CAMCAN_MAX_DEPTH} levels)")
    found = []
    for subject_root in roots:
        parts = [p.lower() for p in subject_root.parts]
        cohort = next((c for c in ("cc700", "cc280") if any(c in p for p in parts)), "camcan")
        for subject_dir in (d for d in _dirs(subject_root) if d.name.startswith("sub-")):
            sessions = [d for d in _dirs(subject_dir) if d.name.startswith("ses-")] or [subject_dir]
            for session_dir in sessions:
                for fif in sorted((session_dir / "meg").glob("*_meg.fif")):
                    if "crosstalk" in fif.name.lower():
                        continue
                    task, run = _tag(fif.name, "task"), _tag(fif.name, "run")
                    name = [cohort, subject_dir.name]
                    name += [session_dir.name] if session_dir != subject_dir else []
                    name += [f"task-{task}"] if task else []
                    name += [f"run-{run}"] if run else []
                    found.append((fif, "_".join(name), subject_dir.name, task or ""))
    return found


def bids_recordings(root: Path) -> list[tuple[Path, str, str, str]]:
    """MEG/EEG recordings of a BIDS root (mne-bids), named by their entities."""
    try:
        import mne_bids
    except ImportError as err:
        raise ImportError("BIDS input needs mne-bids: pip install mne-bids") from err
    if not (root / "dataset_description.json").is_file():
        raise FileNotFoundError(f"{root} is not a BIDS root (no dataset_description.json); use layout: auto for it")
    paths = mne_bids.find_matching_paths(
        root, datatypes=["meg", "eeg"], suffixes=["meg", "eeg"], extensions=list(BIDS_EXTENSIONS), ignore_nosub=True
    )
    found, seen = [], set()
    for bids_path in paths:
        if bids_path.split not in (None, "01"):  # later parts of a split FIF are read with the first
            continue
        file = Path(bids_path.fpath)
        if file in seen or not file.exists():
            continue
        seen.add(file)
        entities = [("sub", bids_path.subject), ("ses", bids_path.session), ("task", bids_path.task)]
        entities += [("acq", bids_path.acquisition), ("run", bids_path.run)]
        session = "_".join(f"{key}-{value}" for key, value in entities if value)
        found.append((file, session, f"sub-{bids_path.subject}", bids_path.task or ""))
    if not found:
        raise FileNotFoundError(f"mne-bids found no MEG/EEG recording under the BIDS root {root}")
    return sorted(found)


LAYOUT_FUNCTIONS = {
    "bids": bids_recordings,
    "omega": omega_recordings,
    "mous": mous_recordings,
    "camcan": camcan_recordings,
}


def layout_recordings(root: Path, layout: str) -> list[tuple[Path, str, str, str]]:
    if layout not in LAYOUT_FUNCTIONS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")
    found = LAYOUT_FUNCTIONS[layout](Path(root))
    if not found:
        raise FileNotFoundError(
            f"no recording found under {root} with the {layout} layout (spec rules in discovery.py)"
        )
    return found
