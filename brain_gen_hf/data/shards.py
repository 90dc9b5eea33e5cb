"""Build a Hugging Face dataset (Parquet shards + card) from raw recordings, resumably.

Layout of an output folder:
    README.md                         dataset card (YAML front matter maps splits to shards)
    data/{split}-{i:05d}-of-{n:05d}.parquet
    build_report.json                 finished / failed recordings of the last run
    .build/manifest.json              finished recordings (the resume state)
    .build/recordings/<dataset>/<session>.parquet   one file per finished recording

Each recording is processed and written on its own, to a temporary file renamed into place,
then recorded in the manifest (also replaced atomically). A crash, Ctrl-C or a bad file
therefore never corrupts or loses finished recordings, and a rerun skips them. The split shards
and the card are re-assembled from all finished recordings at the end of every run.

A recording is identified by its resolved source path; the manifest also stores a content
fingerprint of the source, so a source replaced under the same name is processed again, and
a lost or damaged `.build/recordings` file is rebuilt from its source. The pipeline only ever
deletes the files it writes, and only writes inside the output folder.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

from ..hub.upload import check_repo_id, upload_errors
from .config import BuildConfig
from .readers import (
    RecordingSource,
    check_dataset_name,
    discover_recordings,
    source_digest,
    source_fingerprint,
    source_stat,
)
from .splits import SPLIT_NAMES, assign_splits

logger = logging.getLogger(__name__)

BUILD_DIR = ".build"
DATA_DIR = "data"
RECORDINGS_DIR = "recordings"
MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 2  # 2: entries carry `source` (resolved path) and `source_fingerprint`
SHARD_NAME = re.compile(r"[a-z]+-\d{5}-of-\d{5}\.parquet")
CARD_FILES = ("README.md", "build_report.json")
# Manifest entry fields the build reads back, with their JSON types.
ENTRY_FIELDS = {
    "file": str,
    "path": str,
    "dataset": str,
    "session": str,
    "subject": str,
    "sfreq": (int, float),
    "n_segments": int,
    "seconds": (int, float),
    "n_channels": int,
    "ch_types": list,
}


def segment_features(with_tokens: bool = False, mu: int = 255, with_events: bool = False):
    """`datasets.Features` of one row (= one clean segment); `events`: int16 code per sample (events.mode)."""
    from datasets import Features, List, Value

    features = {
        "dataset": Value("string"),
        "subject": Value("string"),
        "session": Value("string"),
        "task": Value("string"),
        "segment_index": Value("int32"),
        "sfreq": Value("float64"),
        "n_channels": Value("int32"),
        "n_samples": Value("int32"),
        "ch_names": List(Value("string")),
        "ch_types": List(Value("string")),
        "ch_units": List(Value("string")),
        "pos_3d": List(List(Value("float32"), length=3)),
        "ori_3d": List(List(Value("float32"), length=3)),
        "pos_2d": List(List(Value("float32"), length=2)),
        "bad_channels": List(Value("string")),
        "norm_center": List(Value("float64")),
        "norm_scale": List(Value("float64")),
        "data": List(List(Value("float32"))),
    }
    if with_tokens:
        features["tokens"] = List(List(Value("uint8" if mu <= 255 else "uint16")))
        features["mulaw_scale"] = Value("float32")
    if with_events:
        features["events"] = List(Value("int16"))
    return Features(features)


def _nested_array(arrays: list[np.ndarray], dtype) -> pa.Array:
    """list<list<dtype>> Arrow array from 2-D numpy blocks without a Python loop over samples."""
    import pyarrow as pa

    rows_per_block = np.array([a.shape[0] for a in arrays], dtype=np.int64)
    widths = (
        np.concatenate([np.full(a.shape[0], a.shape[1], dtype=np.int64) for a in arrays])
        if arrays
        else np.zeros(0, dtype=np.int64)
    )
    values = (
        np.concatenate([np.ascontiguousarray(a, dtype=dtype).ravel() for a in arrays])
        if arrays
        else np.zeros(0, dtype=dtype)
    )
    inner = pa.ListArray.from_arrays(
        pa.array(np.concatenate([[0], np.cumsum(widths)]).astype(np.int32)), pa.array(values)
    )
    return pa.ListArray.from_arrays(pa.array(np.concatenate([[0], np.cumsum(rows_per_block)]).astype(np.int32)), inner)


def recording_table(processed, features) -> pa.Table:
    """Arrow table with one row per segment of a processed recording."""
    import pyarrow as pa

    source: RecordingSource = processed.source
    ch = processed.channels
    n = len(processed.segments)

    def repeat(value):  # per-recording metadata is the same on every row
        return [value] * n

    columns = {
        "dataset": repeat(source.dataset),
        "subject": repeat(source.subject),
        "session": repeat(source.session),
        "task": repeat(source.task),
        "segment_index": list(range(n)),
        "sfreq": repeat(processed.sfreq),
        "n_channels": repeat(len(ch)),
        "n_samples": [int(s.shape[1]) for s in processed.segments],
        "ch_names": repeat(ch.names),
        "ch_types": repeat(ch.types),
        "ch_units": repeat(ch.units),
        "pos_3d": repeat(ch.pos_3d.tolist()),
        "ori_3d": repeat(ch.ori_3d.tolist()),
        "pos_2d": repeat(ch.pos_2d.tolist()),
        "bad_channels": repeat(processed.bad_channels),
        "norm_center": repeat(processed.normalization.center.tolist()),
        "norm_scale": repeat(processed.normalization.scale.tolist()),
    }
    schema = features.arrow_schema
    arrays = {k: pa.array(v, type=schema.field(k).type) for k, v in columns.items()}
    arrays["data"] = _nested_array(processed.segments, np.float32)
    if "tokens" in features:
        token_dtype = np.uint8 if features["tokens"].feature.feature.dtype == "uint8" else np.uint16
        arrays["tokens"] = _nested_array(processed.tokens, token_dtype)
        arrays["mulaw_scale"] = pa.array(repeat(processed.mulaw_scale), type=pa.float32())
    if "events" in features:
        arrays["events"] = pa.array(
            [np.asarray(e, dtype=np.int16) for e in processed.events], type=pa.list_(pa.int16())
        )
    return pa.Table.from_arrays([arrays[name] for name in features], schema=schema)


def _atomic_write_bytes(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False) as tmp:
        tmp.write(payload)
        tmp.flush()
        os.fsync(tmp.fileno())
    os.chmod(tmp.name, 0o644)  # NamedTemporaryFile creates 0600 files
    os.replace(tmp.name, path)


def _write_parquet_atomic(table, path: Path, shards) -> None:
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        row_bytes = max(1, table.nbytes // max(1, table.num_rows))
        rows_per_group = max(1, int(shards.row_group_size_mb * 2**20 // row_bytes))
        pq.write_table(table, tmp, row_group_size=rows_per_group, compression=shards.compression)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@dataclass
class BuildReport:
    output_dir: str
    processed: list[str] = field(default_factory=list)
    skipped_done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    splits: dict[str, dict] = field(default_factory=dict)
    repaired: dict[str, str] = field(default_factory=dict)  # source -> why its old rows were replaced

    def summary(self) -> str:
        lines = [
            (
                f"built {self.output_dir}: {len(self.processed)} processed, {len(self.skipped_done)} already "
                f"done, {len(self.failed)} failed"
            )
        ]
        for split, info in self.splits.items():
            lines.append(
                f"  {split}: {info['recordings']} recordings, {info['segments']} segments, {info['hours']:.3f} h"
            )
        for path, notes in self.notes.items():  # what mne warned about (e.g. a truncated file), skipped steps
            lines.extend(f"  NOTE {path}: {note}" for note in notes if note.startswith("mne: ") or "skipped" in note)
        for message in self.repaired.values():
            lines.append(f"  REPROCESSED {message}")
        for message in self.failed.values():
            lines.append(f"  FAILED {message}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def is_dataset_folder(folder: Path) -> bool:
    """A folder this pipeline built (or started to build): it holds the build manifest."""
    return (Path(folder) / BUILD_DIR / MANIFEST_NAME).is_file()


def check_output_folder(folder: Path) -> None:
    """Refuse an output that is a file, or a non-empty folder that is not a brain_gen_hf dataset."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(
            f"output {folder} is an existing file, not a folder; pass a new or existing dataset folder to --output"
        )
    blocking = next((parent for parent in folder.parents if parent.exists() and not parent.is_dir()), None)
    if blocking is not None:
        raise NotADirectoryError(
            f"output {folder} lies under {blocking}, which is a file, not a folder; pass a "
            "new or existing dataset folder to --output"
        )
    if folder.is_dir() and any(folder.iterdir()) and not is_dataset_folder(folder):
        raise ValueError(
            f"output folder {folder} is not empty and is not a brain_gen_hf dataset (no "
            f"{BUILD_DIR}/{MANIFEST_NAME}); nothing was written or deleted: choose a new or empty "
            "folder for --output"
        )


def _manifest_error(path: Path, problem: str) -> ValueError:
    return ValueError(
        f"{path}: invalid build manifest ({problem}); it is the resume state of "
        f"{path.parent.parent}: rebuild with --overwrite (finished recordings are processed again)"
    )


def _read_manifest(path: Path, fingerprint: str) -> dict[str, dict]:
    """The recordings of a manifest file, checked so that every later read of it is safe."""
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _manifest_error(path, f"not JSON: {err}") from err
    if not isinstance(state, dict) or not isinstance(state.get("recordings"), dict):
        raise _manifest_error(path, "expected an object with a 'recordings' mapping")
    if state.get("version") not in (1, MANIFEST_VERSION):
        raise _manifest_error(path, f"unknown version {state.get('version')!r}")
    if state.get("fingerprint") != fingerprint:
        raise ValueError(
            f"{path.parent.parent} was built with different preprocessing settings "
            f"(fingerprint {state.get('fingerprint')} != {fingerprint}); use a new output folder "
            "or overwrite=True / --overwrite to rebuild from scratch"
        )
    recordings_dir = (path.parent / RECORDINGS_DIR).resolve()
    for recording_id, entry in state["recordings"].items():
        if not isinstance(entry, dict):
            raise _manifest_error(path, f"entry {recording_id!r} is not an object")
        for key, kind in ENTRY_FIELDS.items():
            if not isinstance(entry.get(key), kind):
                raise _manifest_error(path, f"entry {recording_id!r} lacks a valid {key!r}")
        if recording_id != f"{entry['dataset']}/{entry['session']}":
            raise _manifest_error(
                path,
                f"entry {recording_id!r} is filed under another name than its "
                f"dataset/session {entry['dataset']}/{entry['session']}",
            )
        if not (path.parent.parent / entry["file"]).resolve().is_relative_to(recordings_dir):
            raise _manifest_error(path, f"entry {recording_id!r} points outside {recordings_dir}: {entry['file']!r}")
    return state["recordings"]


class Manifest:
    """Finished recordings of an output folder; every update replaces the file atomically.

    `fresh=True` starts empty without reading the file (--overwrite); nothing is written before
    the first `save`."""

    def __init__(self, path: Path, fingerprint: str, *, fresh: bool = False):
        self.path = path
        self.fingerprint = fingerprint
        self.recordings: dict[str, dict] = {}
        if path.exists() and not fresh:
            self.recordings = _read_manifest(path, fingerprint)

    def save(self) -> None:
        state = {"version": MANIFEST_VERSION, "fingerprint": self.fingerprint, "recordings": self.recordings}
        _atomic_write_bytes(self.path, json.dumps(state, indent=1).encode())

    def mark_done(self, recording_id: str, entry: dict) -> None:
        self.recordings[recording_id] = entry
        self.save()

    def remove(self, recording_id: str) -> dict | None:
        entry = self.recordings.pop(recording_id, None)
        self.save()
        return entry

    def ids_by_source(self) -> dict[str, str]:
        """Resolved source path -> recording id (version-1 entries: their `path` as written)."""
        return {
            entry.get("source") or str(Path(entry["path"]).resolve()): recording_id
            for recording_id, entry in self.recordings.items()
        }


class DatasetBuilder:
    """Raw recordings -> cleaned segments -> Parquet shards + dataset card in `output_dir`.

    Nothing is written before the first recording is finished. With `overwrite=True` the files
    of an earlier build (and only those: `.build/`, `data/*.parquet` shards, the card and the
    report) are removed at that moment, so an overwrite whose inputs all fail keeps the old build.
    """

    def __init__(self, output_dir, config: BuildConfig | None = None, *, overwrite: bool = False):
        self.output_dir = Path(output_dir)
        self.config = config or BuildConfig()
        check_output_folder(self.output_dir)
        self.build_dir = self.output_dir / BUILD_DIR
        self.recordings_dir = self.build_dir / RECORDINGS_DIR
        manifest_path = self.build_dir / MANIFEST_NAME
        self._overwrite_pending = overwrite and manifest_path.exists()
        self.manifest = Manifest(manifest_path, self.config.content_fingerprint(), fresh=overwrite)
        self.features = segment_features(
            self.config.mulaw.enabled, self.config.mulaw.mu, with_events=self.config.events.mode != "none"
        )

    # -- files of the build ----------------------------------------------------------------------
    def _recording_file(self, source: RecordingSource) -> Path:
        """`.build/recordings/<dataset>/<session>.parquet`, refused if it would leave that folder."""
        check_dataset_name(source.dataset)
        path = self.recordings_dir / source.dataset / f"{source.session}.parquet"
        if (
            "/" in source.session
            or "\\" in source.session
            or not path.resolve().is_relative_to(self.recordings_dir.resolve())
        ):
            raise ValueError(
                f"{source.path}: session name {source.session!r} would write outside "
                f"{self.recordings_dir}; use a plain name"
            )
        return path

    def _start_writing(self) -> None:
        """Before the first write: the manifest marks the folder as a dataset; --overwrite clears the old build."""
        if self.manifest.path.exists() and not self._overwrite_pending:
            return
        self.manifest.save()  # first, so that the folder stays recognisable as a dataset throughout
        if self._overwrite_pending:
            self._remove_previous_build()
            self._overwrite_pending = False

    def _remove_previous_build(self) -> None:
        """--overwrite: delete the files an earlier build wrote (never anything else in the folder)."""
        for child in self.build_dir.iterdir():
            if child.name == MANIFEST_NAME:
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        data = self.output_dir / DATA_DIR
        if data.is_dir():
            for shard in data.iterdir():
                if SHARD_NAME.fullmatch(shard.name):
                    shard.unlink()
            if not any(data.iterdir()):
                data.rmdir()
        for name in CARD_FILES:
            (self.output_dir / name).unlink(missing_ok=True)

    def _drop(self, recording_id: str) -> dict | None:
        """Forget a finished recording and delete its file (the manifest first: a crash keeps it consistent)."""
        entry = self.manifest.remove(recording_id)
        if entry is not None:
            (self.output_dir / entry["file"]).unlink(missing_ok=True)
        return entry

    def _file_problem(self, entry: dict) -> str | None:
        """Why the recording file of a manifest entry cannot be used (None: it can)."""
        import pyarrow.parquet as pq

        path = self.output_dir / entry["file"]
        if not path.is_file():
            return "the file is missing"
        try:
            rows = pq.read_metadata(path).num_rows
        except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError
            return f"the file is damaged ({type(err).__name__}: {err})"
        if rows != entry["n_segments"]:
            return f"the file holds {rows} rows, the manifest {entry['n_segments']}"
        return None

    # -- which recordings are already done ---------------------------------------------------------
    def _repair_damaged(self, sources: list[RecordingSource], report: BuildReport) -> list[RecordingSource]:
        """Drop entries whose recording file is lost or damaged; returns their sources to process again."""
        in_run = {s.resolved_path for s in sources}
        extra = []
        for recording_id, entry in list(self.manifest.recordings.items()):
            problem = self._file_problem(entry)
            if problem is None:
                continue
            self._drop(recording_id)
            source = Path(entry.get("source") or entry["path"])
            message = f"{self.output_dir / entry['file']} ({recording_id}): {problem}"
            if str(source) in in_run or source.exists():
                report.repaired[entry["path"]] = f"{message}; processing {entry['path']} again"
                if str(source) not in in_run:
                    extra.append(
                        RecordingSource(
                            source, entry["dataset"], entry["session"], entry["subject"], entry.get("task", "")
                        )
                    )
            else:
                report.failed[entry["path"]] = f"{message}, and its source {source} no longer exists: rows dropped"
        return extra

    def _is_done(
        self, source: RecordingSource, known: dict[str, str], orphans: dict[str, str], report: BuildReport
    ) -> bool:
        """True when `source` is in the dataset with its current content; drops stale rows otherwise.

        `known`: resolved source path -> recording id; `orphans`: content digest -> recording id of
        finished recordings whose source is gone."""
        recording_id = known.get(source.resolved_path)
        if recording_id is None:
            return self._relink_moved(source, orphans, report)
        entry = self.manifest.recordings[recording_id]
        if recording_id != source.recording_id:
            self._drop(recording_id)
            report.repaired[str(source.path)] = (
                f"{source.path}: was {recording_id}, is now {source.recording_id}; processed again under the new name"
            )
            return False
        fingerprint = entry.get("source_fingerprint")
        stat = source_stat(source.path)
        if fingerprint is None:  # a version-1 manifest or an in-memory raw: adopt the current content
            fingerprint = entry["source_fingerprint"] = source_fingerprint(source.path)
            self.manifest.save()
        if stat == fingerprint["stat"]:
            return True
        if source_digest(source.path) == fingerprint["sha256"]:  # touched or copied, same bytes
            fingerprint["stat"] = stat
            self.manifest.save()
            return True
        self._drop(recording_id)
        report.repaired[str(source.path)] = (
            f"{source.path} changed since it was processed (different content): "
            "its old rows were removed and it is processed again"
        )
        return False

    def _orphans(self) -> dict[str, str]:
        """Content digest -> recording id of finished recordings whose source no longer exists."""
        return {
            entry["source_fingerprint"]["sha256"]: recording_id
            for recording_id, entry in self.manifest.recordings.items()
            if entry.get("source_fingerprint") and not Path(entry.get("source") or entry["path"]).exists()
        }

    def _relink_moved(self, source: RecordingSource, orphans: dict[str, str], report: BuildReport) -> bool:
        """A new path with the content of a finished recording whose source is gone: the file moved."""
        if not orphans:
            return False
        recording_id = orphans.pop(source_digest(source.path), None)
        if recording_id is None:
            return False
        entry = self.manifest.recordings[recording_id]
        report.notes.setdefault(str(source.path), []).append(f"moved from {entry['path']}; kept as {recording_id}")
        entry.update(path=str(source.path), source=source.resolved_path)
        entry["source_fingerprint"]["stat"] = source_stat(source.path)
        self.manifest.save()
        return True

    # -- per recording -------------------------------------------------------------------------
    def _reference_sfreq(self) -> float | None:
        for entry in self.manifest.recordings.values():
            return float(entry["sfreq"])
        return None

    def add_recording(self, source: RecordingSource, raw=None) -> dict:
        """Process one recording and persist it; raises ValueError/OSError naming the file."""
        from .pipeline import process_recording

        target = self._recording_file(source)
        # Fingerprint before reading: a source that changes while it is processed differs next time.
        fingerprint = source_fingerprint(source.path) if source.path.exists() else None
        processed = process_recording(source, self.config, raw=raw)
        reference = self._reference_sfreq()
        if reference is not None and not np.isclose(processed.sfreq, reference, atol=1e-6):
            raise ValueError(
                f"{source.path}: sampling rate {processed.sfreq:g} Hz differs from the {reference:g} Hz of the "
                "recordings already in this dataset; set preprocessing.sfreq to resample every file to one rate"
            )
        self._start_writing()
        _write_parquet_atomic(recording_table(processed, self.features), target, self.config.shards)
        entry = {
            "path": str(source.path),
            "source": source.resolved_path,
            "source_fingerprint": fingerprint,
            "file": target.relative_to(self.output_dir).as_posix(),
            "dataset": source.dataset,
            "session": source.session,
            "subject": source.subject,
            "task": source.task,
            "sfreq": processed.sfreq,
            "n_segments": len(processed.segments),
            "seconds": processed.seconds,
            "n_channels": len(processed.channels),
            "ch_types": sorted(set(processed.channels.types)),
            "notes": processed.notes,
            "cleaning": processed.cleaning.to_dict(),
        }
        self.manifest.mark_done(source.recording_id, entry)
        return entry

    def build(self, inputs, *, progress: bool = True, finalize: bool = True) -> BuildReport:
        """Process every recording under `inputs` (files, folders, globs, `NAME=PATH`)."""
        from tqdm.auto import tqdm

        sources = discover_recordings(
            inputs, self.config.dataset_name, existing=self.manifest.ids_by_source(), layout=self.config.layout
        )
        if self.config.source_space.enabled:  # an incomplete template fails the build once, not every recording
            from .source_space import check_template

            check_template(self.config.source_space)
        report = BuildReport(str(self.output_dir))
        sources += self._repair_damaged(sources, report)
        known, orphans = self.manifest.ids_by_source(), self._orphans()
        bar = tqdm(sources, desc="recordings", unit="rec", disable=not progress)
        for source in bar:
            bar.set_postfix_str(source.session[-40:])
            try:
                if self._is_done(source, known, orphans, report):
                    report.skipped_done.append(str(source.path))
                    continue
                entry = self.add_recording(source)
            except Exception as err:  # noqa: BLE001 (one bad file must not stop the run; Ctrl-C still does)
                message = str(err) if str(source.path) in str(err) else f"{source.path}: {type(err).__name__}: {err}"
                report.failed[str(source.path)] = message
                logger.warning("skipping %s", message)
                continue
            report.processed.append(str(source.path))
            if entry["notes"]:
                report.notes[str(source.path)] = entry["notes"]
        if finalize:
            self.finalize(report)
        return report

    # -- assembling shards and card ------------------------------------------------------------
    def finalize(self, report: BuildReport | None = None) -> BuildReport:
        """Assign splits and (re)write `data/*.parquet`, `README.md` and `build_report.json`."""
        import pyarrow as pa

        report = report or BuildReport(str(self.output_dir))
        entries = self.manifest.recordings
        if not entries:
            raise ValueError(
                f"no recording could be processed into {self.output_dir}; "
                + ("failures: " + "; ".join(report.failed.values()) if report.failed else "no inputs")
            )
        assignment = assign_splits(
            ((e["dataset"], e["session"], e["subject"]) for e in entries.values()), self.config.splits
        )
        staging = self.build_dir / f"staging-{uuid.uuid4().hex}"
        staging.mkdir()
        max_bytes = self.config.shards.max_shard_size_mb * 2**20
        split_info = {}
        try:
            for split in SPLIT_NAMES:
                members = [e for e in entries.values() if assignment[(e["dataset"], e["session"])] == split]
                if not members:
                    continue
                shards, buffer, buffered = [], [], 0
                for entry in members:
                    table = self._read_recording(entry)
                    if buffer and buffered + table.nbytes > max_bytes:
                        shards.append(buffer)
                        buffer, buffered = [], 0
                    buffer.append(table)
                    buffered += table.nbytes
                shards.append(buffer)
                for i, tables in enumerate(shards):
                    name = f"{split}-{i:05d}-of-{len(shards):05d}.parquet"
                    _write_parquet_atomic(pa.concat_tables(tables), staging / name, self.config.shards)
                split_info[split] = {
                    "recordings": len(members),
                    "segments": int(sum(e["n_segments"] for e in members)),
                    "hours": float(sum(e["seconds"] for e in members) / 3600.0),
                    "shards": len(shards),
                    "datasets": sorted({e["dataset"] for e in members}),
                }
            self._swap_data_dir(staging)
        finally:
            if staging.exists():
                shutil.rmtree(staging)
        report.splits = split_info
        from ..hub.dataset_card import render_dataset_card

        card = render_dataset_card(self.config, entries, split_info, assignment)
        _atomic_write_bytes(self.output_dir / "README.md", str(card).encode())
        _atomic_write_bytes(self.output_dir / "build_report.json", json.dumps(report.to_dict(), indent=1).encode())
        return report

    def _read_recording(self, entry: dict) -> pa.Table:
        import pyarrow.parquet as pq

        path = self.output_dir / entry["file"]
        try:
            return pq.read_table(path, schema=self.features.arrow_schema)
        except (OSError, ValueError, TypeError) as err:  # ArrowInvalid / ArrowTypeError: damaged or foreign file
            self._drop(f"{entry['dataset']}/{entry['session']}")
            raise ValueError(
                f"{path}: damaged recording file ({type(err).__name__}: {err}); it was removed from "
                f"the manifest: rerun the same command to process {entry['path']} again"
            ) from err

    def _swap_data_dir(self, staging: Path) -> None:
        """Replace data/ by the staged shards with two renames (old shards survive a crash).

        Files in data/ that are not shards were not written here: copies of them go along first."""
        data = self.output_dir / DATA_DIR
        old = self.build_dir / f"old-data-{int(time.time() * 1e6)}"
        if data.exists():
            _copy_foreign_files(data, staging)
            os.replace(data, old)
        os.replace(staging, data)
        if old.exists():
            shutil.rmtree(old)


def _copy_foreign_files(data: Path, staging: Path) -> None:
    """Copy what is not a shard from data/ into the staged data/ (copies: a crash loses no original)."""
    for child in data.iterdir():
        if SHARD_NAME.fullmatch(child.name):
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.copytree(child, staging / child.name, symlinks=True)
        else:
            shutil.copy2(child, staging / child.name, follow_symlinks=False)


def build_dataset(
    inputs, output_dir, config: BuildConfig | None = None, *, overwrite: bool = False, progress: bool = True
) -> BuildReport:
    """Functional entry point: `DatasetBuilder(output_dir, config).build(inputs)`."""
    config = config or BuildConfig()
    discover_recordings(
        inputs, config.dataset_name, layout=config.layout
    )  # a typo in the inputs fails before the output is looked at
    return DatasetBuilder(output_dir, config, overwrite=overwrite).build(inputs, progress=progress)


def push_dataset_to_hub(
    output_dir,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool | None = None,
    revision: str | None = None,
    commit_message: str = "Upload brain_gen_hf dataset",
    endpoint: str | None = None,
) -> str:
    """Upload the card and shards of a built folder to a Hub dataset repo; returns the commit url."""
    from huggingface_hub import HfApi

    output_dir = Path(output_dir)
    if not (output_dir / "README.md").exists() or not (output_dir / DATA_DIR).exists():
        raise FileNotFoundError(f"{output_dir} is not a built dataset (README.md and data/ expected)")
    check_repo_id(repo_id, "repo_id")
    api = HfApi(endpoint=endpoint, token=token)
    with upload_errors(f"{output_dir} to the Hub dataset repo {repo_id}", f"the built dataset {output_dir}"):
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        commit = api.upload_folder(
            folder_path=str(output_dir),
            repo_id=repo_id,
            repo_type="dataset",
            revision=revision,
            commit_message=commit_message,
            allow_patterns=["README.md", "build_report.json", f"{DATA_DIR}/*.parquet"],
            delete_patterns=[f"{DATA_DIR}/*.parquet"],
        )
    return str(commit)


def preprocess_and_publish(
    inputs,
    output_dir,
    config: BuildConfig | None = None,
    *,
    push_to_hub: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
    private: bool | None = None,
    token: str | None = None,
) -> BuildReport:
    """What `brain-gen-hf preprocess` does: build (resumable), print the summary, optionally push."""
    if push_to_hub:
        check_repo_id(push_to_hub, "--push-to-hub")  # before the build, not after it
    report = build_dataset(inputs, output_dir, config, overwrite=overwrite, progress=progress)
    print(report.summary())
    if push_to_hub:
        url = push_dataset_to_hub(output_dir, push_to_hub, private=private, token=token)
        print(f"pushed {output_dir} to {push_to_hub}: {url}")
    return report
