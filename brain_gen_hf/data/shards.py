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
"""

from __future__ import annotations

import json
import logging
import os
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

from .config import BuildConfig
from .readers import RecordingSource, discover_recordings
from .splits import SPLIT_NAMES, assign_splits

logger = logging.getLogger(__name__)

BUILD_DIR = ".build"
DATA_DIR = "data"
MANIFEST_VERSION = 1


def segment_features(with_tokens: bool = False, mu: int = 255):
    """`datasets.Features` of one row (= one clean segment)."""
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
    return Features(features)


def _nested_array(arrays: list[np.ndarray], dtype) -> "pa.Array":
    """list<list<dtype>> Arrow array from 2-D numpy blocks without a Python loop over samples."""
    import pyarrow as pa

    rows_per_block = np.array([a.shape[0] for a in arrays], dtype=np.int64)
    widths = np.concatenate([np.full(a.shape[0], a.shape[1], dtype=np.int64) for a in arrays]) \
        if arrays else np.zeros(0, dtype=np.int64)
    values = np.concatenate([np.ascontiguousarray(a, dtype=dtype).ravel() for a in arrays]) \
        if arrays else np.zeros(0, dtype=dtype)
    inner = pa.ListArray.from_arrays(pa.array(np.concatenate([[0], np.cumsum(widths)]).astype(np.int32)),
                                     pa.array(values))
    return pa.ListArray.from_arrays(pa.array(np.concatenate([[0], np.cumsum(rows_per_block)]).astype(np.int32)),
                                    inner)


def recording_table(processed, features) -> "pa.Table":
    """Arrow table with one row per segment of a processed recording."""
    import pyarrow as pa

    source: RecordingSource = processed.source
    ch = processed.channels
    n = len(processed.segments)
    repeat = lambda value: [value] * n  # noqa: E731 (per-recording metadata is the same on every row)
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

    def summary(self) -> str:
        lines = [f"built {self.output_dir}: {len(self.processed)} processed, {len(self.skipped_done)} already done, "
                 f"{len(self.failed)} failed"]
        for split, info in self.splits.items():
            lines.append(f"  {split}: {info['recordings']} recordings, {info['segments']} segments, "
                         f"{info['hours']:.3f} h")
        for message in self.failed.values():
            lines.append(f"  FAILED {message}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class Manifest:
    """Finished recordings of an output folder; every update replaces the file atomically."""

    def __init__(self, path: Path, fingerprint: str):
        self.path = path
        self.fingerprint = fingerprint
        self.recordings: dict[str, dict] = {}
        if path.exists():
            state = json.loads(path.read_text(encoding="utf-8"))
            if state.get("fingerprint") != fingerprint:
                raise ValueError(
                    f"{path.parent.parent} was built with different preprocessing settings "
                    f"(fingerprint {state.get('fingerprint')} != {fingerprint}); use a new output folder "
                    "or overwrite=True / --overwrite to rebuild from scratch")
            self.recordings = state.get("recordings", {})

    def mark_done(self, recording_id: str, entry: dict) -> None:
        self.recordings[recording_id] = entry
        state = {"version": MANIFEST_VERSION, "fingerprint": self.fingerprint, "recordings": self.recordings}
        _atomic_write_bytes(self.path, json.dumps(state, indent=1).encode())


class DatasetBuilder:
    """Raw recordings -> cleaned segments -> Parquet shards + dataset card in `output_dir`."""

    def __init__(self, output_dir, config: BuildConfig | None = None, *, overwrite: bool = False):
        self.output_dir = Path(output_dir)
        self.config = config or BuildConfig()
        if overwrite and self.output_dir.exists():
            shutil.rmtree(self.output_dir)
        self.build_dir = self.output_dir / BUILD_DIR
        self.build_dir.mkdir(parents=True, exist_ok=True)
        self.manifest = Manifest(self.build_dir / "manifest.json", self.config.content_fingerprint())
        self.features = segment_features(self.config.mulaw.enabled, self.config.mulaw.mu)

    # -- per recording -------------------------------------------------------------------------
    def _reference_sfreq(self) -> float | None:
        for entry in self.manifest.recordings.values():
            return float(entry["sfreq"])
        return None

    def add_recording(self, source: RecordingSource, raw=None) -> dict:
        """Process one recording and persist it; raises ValueError/OSError naming the file."""
        from .pipeline import process_recording

        processed = process_recording(source, self.config, raw=raw)
        reference = self._reference_sfreq()
        if reference is not None and not np.isclose(processed.sfreq, reference, atol=1e-6):
            raise ValueError(
                f"{source.path}: sampling rate {processed.sfreq:g} Hz differs from the {reference:g} Hz of the "
                "recordings already in this dataset; set preprocessing.sfreq to resample every file to one rate")
        relative = Path(BUILD_DIR) / "recordings" / source.dataset / f"{source.session}.parquet"
        _write_parquet_atomic(recording_table(processed, self.features), self.output_dir / relative,
                              self.config.shards)
        entry = {
            "path": str(source.path), "file": relative.as_posix(), "dataset": source.dataset,
            "session": source.session, "subject": source.subject, "task": source.task,
            "sfreq": processed.sfreq, "n_segments": len(processed.segments), "seconds": processed.seconds,
            "n_channels": len(processed.channels), "ch_types": sorted(set(processed.channels.types)),
            "notes": processed.notes, "cleaning": processed.cleaning.to_dict(),
        }
        self.manifest.mark_done(source.recording_id, entry)
        return entry

    def build(self, inputs, *, progress: bool = True, finalize: bool = True) -> BuildReport:
        """Process every recording under `inputs` (files, folders, globs, `NAME=PATH`)."""
        from tqdm.auto import tqdm

        sources = discover_recordings(inputs, self.config.dataset_name)
        report = BuildReport(str(self.output_dir))
        bar = tqdm(sources, desc="recordings", unit="rec", disable=not progress)
        for source in bar:
            bar.set_postfix_str(source.session[-40:])
            if source.recording_id in self.manifest.recordings:
                report.skipped_done.append(str(source.path))
                continue
            try:
                entry = self.add_recording(source)
            except Exception as err:  # one bad file must not stop the run; Ctrl-C still does
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
        import pyarrow.parquet as pq

        report = report or BuildReport(str(self.output_dir))
        entries = self.manifest.recordings
        if not entries:
            raise ValueError(f"no recording could be processed into {self.output_dir}; "
                             + ("failures: " + "; ".join(report.failed.values()) if report.failed else "no inputs"))
        assignment = assign_splits(((e["dataset"], e["session"], e["subject"]) for e in entries.values()),
                                   self.config.splits)
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
                    table = pq.read_table(self.output_dir / entry["file"], schema=self.features.arrow_schema)
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

    def _swap_data_dir(self, staging: Path) -> None:
        """Replace data/ by the staged shards with two renames (old shards survive a crash)."""
        data = self.output_dir / DATA_DIR
        old = self.build_dir / f"old-data-{int(time.time() * 1e6)}"
        if data.exists():
            os.replace(data, old)
        os.replace(staging, data)
        if old.exists():
            shutil.rmtree(old)


def build_dataset(inputs, output_dir, config: BuildConfig | None = None, *, overwrite: bool = False,
                  progress: bool = True) -> BuildReport:
    """Functional entry point: `DatasetBuilder(output_dir, config).build(inputs)`."""
    return DatasetBuilder(output_dir, config, overwrite=overwrite).build(inputs, progress=progress)


def push_dataset_to_hub(output_dir, repo_id: str, *, token: str | None = None, private: bool | None = None,
                        revision: str | None = None, commit_message: str = "Upload brain_gen_hf dataset",
                        endpoint: str | None = None) -> str:
    """Upload the card and shards of a built folder to a Hub dataset repo; returns the commit url."""
    from huggingface_hub import HfApi

    output_dir = Path(output_dir)
    if not (output_dir / "README.md").exists() or not (output_dir / DATA_DIR).exists():
        raise FileNotFoundError(f"{output_dir} is not a built dataset (README.md and data/ expected)")
    api = HfApi(endpoint=endpoint, token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    commit = api.upload_folder(
        folder_path=str(output_dir), repo_id=repo_id, repo_type="dataset", revision=revision,
        commit_message=commit_message, allow_patterns=["README.md", "build_report.json", f"{DATA_DIR}/*.parquet"],
        delete_patterns=[f"{DATA_DIR}/*.parquet"])
    return str(commit)


def preprocess_and_publish(inputs, output_dir, config: BuildConfig | None = None, *, push_to_hub: str | None = None,
                           overwrite: bool = False, progress: bool = True, private: bool | None = None,
                           token: str | None = None) -> BuildReport:
    """What `brain-gen-hf preprocess` does: build (resumable), print the summary, optionally push."""
    report = build_dataset(inputs, output_dir, config, overwrite=overwrite, progress=progress)
    print(report.summary())
    if push_to_hub:
        url = push_dataset_to_hub(output_dir, push_to_hub, private=private, token=token)
        print(f"pushed {output_dir} to {push_to_hub}: {url}")
    return report
