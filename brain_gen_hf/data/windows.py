"""Training windows cut at load time from segment rows (spec 2.5).

`L = round(example_seconds * sfreq)`, `step = L - round(overlap_seconds * sfreq)`, starts
`range(0, n - L + 1, step)` per segment: windows never cross segments. Order is rows in dataset
order, then starts ascending, for map-style and streaming alike.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch.utils.data

from .layouts import METADATA_COLUMNS, ChannelLayout, build_canonical_layout


@dataclass(frozen=True)
class WindowConfig:
    example_seconds: float = 10.24
    overlap_seconds: float = 5.0

    def lengths(self, sfreq: float) -> tuple[int, int]:
        """(window length, step) in samples."""
        length = int(round(self.example_seconds * sfreq))
        overlap = int(round(self.overlap_seconds * sfreq))
        if length <= 0:
            kind = "a zero-length window" if length == 0 else f"a window of {length} samples"
            raise ValueError(
                f"example_seconds={self.example_seconds} gives {kind} at {sfreq:g} Hz; use a positive "
                f"example_seconds of at least {1 / sfreq:g} s"
            )
        if overlap < 0 or overlap >= length:
            raise ValueError(
                f"overlap_seconds={self.overlap_seconds} must be >= 0 and below example_seconds "
                f"({overlap} vs {length} samples): the overlap would leave no step"
            )
        return length, length - overlap


def window_starts(n_samples: int, length: int, step: int) -> np.ndarray:
    if n_samples < length:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, n_samples - length + 1, step, dtype=np.int64)


def build_window_index(n_samples: np.ndarray, length: int, step: int) -> np.ndarray:
    """(N, 2) int64 array of (row, start) for every window of every row, vectorised."""
    n_samples = np.asarray(n_samples, dtype=np.int64)
    counts = np.where(n_samples >= length, (n_samples - length) // step + 1, 0)
    rows = np.repeat(np.arange(len(n_samples), dtype=np.int64), counts)
    first = np.repeat(np.cumsum(counts) - counts, counts)
    starts = (np.arange(counts.sum(), dtype=np.int64) - first) * step
    return np.stack([rows, starts], axis=1)


def load_window_datasets(
    path_or_repo: str,
    example_seconds: float = 10.24,
    overlap_seconds: float = 5.0,
    *,
    streaming: bool = False,
    **load_kwargs,
) -> dict:
    """{split: WindowDataset | StreamingWindowDataset} sharing one canonical layout over all splits."""
    splits = load_segments(path_or_repo, streaming=streaming, **load_kwargs)
    for name, segments in splits.items():
        _check_segment_columns(path_or_repo, name, getattr(segments, "column_names", None))
    try:
        layout = build_canonical_layout(*splits.values())  # streaming: the first rows are decoded here
    except _decode_errors() as err:
        raise _damaged_shard_error(Path(str(path_or_repo)), err) from err
    cls = StreamingWindowDataset if streaming else WindowDataset
    return {name: cls(ds, example_seconds, overlap_seconds, layout=layout) for name, ds in splits.items()}


# What windowing reads of every segment row (the layout's metadata, the signal and its shape).
SEGMENT_COLUMNS = (*METADATA_COLUMNS, "n_channels", "n_samples", "data")


def _check_segment_columns(path_or_repo, split: str, columns: list[str] | None) -> None:
    """Other Parquet (token shards whose tokenization.json is gone, someone else's table) would fail deep inside
    the layout code with a bare column name; say what the folder is instead."""
    missing = [column for column in SEGMENT_COLUMNS if column not in columns] if columns else []
    if not missing:
        return  # (streamed datasets may not know their columns before the first row)
    if "codes" in columns:
        raise ValueError(
            f"{path_or_repo} holds token shards (a `codes` column) but no tokenization.json: rerun "
            f"training_scripts/pretokenize.py with --output {path_or_repo} to write them again"
        )
    raise ValueError(
        f"{path_or_repo}: the {split!r} rows have no {missing} columns, so this is not a dataset built "
        f"by `brain-gen-hf preprocess` (columns: {columns}); {_build_hint(str(path_or_repo))}"
    )


# What a Hub repo id looks like ("name" or "org/name"); anything else can only be a local path.
_REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?")
_SHARD_NAME = re.compile(r"[^-]+-(\d{5})-of-(\d{5})\.parquet")
_REBUILD_HINT = (
    "rerun `brain-gen-hf preprocess` with the same --output to rewrite data/ from .build/, or fetch the dataset again"
)


def _build_hint(output: str = "DIR") -> str:
    return f"build one with `brain-gen-hf preprocess RECORDINGS... --output {output}`"


def load_segments(path_or_repo: str, split: str | None = None, *, streaming: bool = False, **kwargs):
    """`datasets.load_dataset` of a built folder or Hub repo (rows = segments).

    Local folders are read through the "parquet" builder with explicit shard files: its cache
    key includes the files' modification times. (`load_dataset(folder)` on a folder whose card
    declares `configs` caches under the folder *name* only in datasets 5.2, so a rebuilt folder,
    or another folder with the same name, can silently return stale rows.)
    Raises FileNotFoundError when `path_or_repo` is neither a built folder nor a reachable Hub
    dataset, and ValueError naming the shard when one is damaged.
    """
    import datasets

    name = str(path_or_repo)
    folder = Path(name).expanduser()
    if folder.exists():
        return load_parquet_folder(folder, split=split, streaming=streaming, **kwargs)
    # A bare name is a local folder that is not there: the datasets built here live in folders or in the
    # user's own `org/name` repos, and asking the Hub costs ~25 s of datasets' retries without a network.
    if not _REPO_ID.fullmatch(name) or "/" not in name:
        raise FileNotFoundError(f"dataset folder {name} does not exist; {_build_hint(name)}")
    if not datasets.config.HF_HUB_OFFLINE:  # offline, datasets reads its cache and fails fast by itself
        _check_hub_dataset(name, revision=kwargs.get("revision"), token=kwargs.get("token"))
    try:
        return datasets.load_dataset(name, split=split, streaming=streaming, **kwargs)
    except (ConnectionError, datasets.exceptions.DatasetNotFoundError) as err:
        problem = " ".join(str(err).split())
        raise FileNotFoundError(
            f"{name!r} is neither a local dataset folder nor a reachable Hub dataset repo ({type(err).__name__}: "
            f"{problem}); {_build_hint(name)}, or check the repo id, network and token"
        ) from err


def _check_hub_dataset(repo_id: str, revision: str | None = None, token=None) -> None:
    """One request to the Hub for `repo_id` (no retry loop), or a FileNotFoundError saying what failed."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import (
        GatedRepoError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        HfApi().dataset_info(repo_id, revision=revision, token=token)
    except GatedRepoError:
        return  # it exists; `load_dataset` explains how to get access
    except (RepositoryNotFoundError, RevisionNotFoundError) as err:
        raise FileNotFoundError(
            f"{repo_id} is not a local dataset folder, and the Hub has no dataset repo "
            f"{repo_id}{f' at revision {revision}' if revision else ''} (or it is private: "
            f"log in with `hf auth login`); {_build_hint(repo_id)}"
        ) from err
    except Exception as err:  # connection errors are the HTTP client's own classes (not OSError)
        problem = " ".join(str(err).split()) or type(err).__name__
        raise FileNotFoundError(
            f"{repo_id} is not a local dataset folder, and the Hub could not be reached to "
            f"look for a dataset repo of that name ({type(err).__name__}: {problem}); check the "
            "network, or set HF_HUB_OFFLINE=1 to use a copy in the local cache"
        ) from err


def load_parquet_folder(
    folder: Path,
    *,
    split: str | None = None,
    streaming: bool = False,
    build_hint: str | None = None,
    rebuild_hint: str | None = None,
    **kwargs,
):
    """`load_dataset("parquet")` of the `data/{split}-*.parquet` shards of a local folder, a damaged shard named.

    `build_hint` / `rebuild_hint` say how to make the folder / repair its shards (default: `brain-gen-hf
    preprocess`); token folders of `training_scripts/pretokenize.py` pass their own.
    """
    import datasets

    folder = Path(folder)
    files = local_shards(folder, build_hint=build_hint, rebuild_hint=rebuild_hint)
    try:
        return datasets.load_dataset("parquet", data_files=files, split=split, streaming=streaming, **kwargs)
    except datasets.exceptions.DatasetGenerationError as err:
        raise _damaged_shard_error(folder, err, rebuild_hint) from err


def local_shards(
    folder: Path, *, build_hint: str | None = None, rebuild_hint: str | None = None
) -> dict[str, list[str]]:
    """{split: shard files} of a built folder, every shard checked to be readable Parquet."""
    import pyarrow.parquet as pq

    data = folder / "data"
    rebuild_hint = rebuild_hint or _REBUILD_HINT
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is a file, not a dataset folder; {build_hint or _build_hint()}")
    shards = sorted(data.glob("*.parquet")) if data.is_dir() else []
    if not shards:
        raise FileNotFoundError(
            f"{folder} is not a built dataset: {data} holds no Parquet shards; {build_hint or _build_hint(str(folder))}"
        )
    files: dict[str, list[str]] = {}
    for shard in shards:
        try:
            pq.read_metadata(shard)
        except (OSError, ValueError) as err:  # ArrowInvalid (a ValueError): truncated, zeroed, not Parquet
            raise ValueError(f"{shard}: damaged Parquet shard ({type(err).__name__}: {err}); {rebuild_hint}") from err
        files.setdefault(shard.name.split("-")[0], []).append(str(shard))
    for split, names in files.items():
        _check_complete(data, split, [Path(name).name for name in names], rebuild_hint)
    return files


def _check_complete(data: Path, split: str, names: list[str], rebuild_hint: str = _REBUILD_HINT) -> None:
    """`{split}-{i}-of-{n}` shards must be exactly i = 0..n-1: a lost or stale shard would change the rows silently."""
    numbered = [_SHARD_NAME.fullmatch(name) for name in names]
    if not all(numbered):
        return  # shards named some other way: nothing to check
    totals = {int(m.group(2)) for m in numbered}
    indices = sorted(int(m.group(1)) for m in numbered)
    if len(totals) != 1 or indices != list(range(totals.pop())):
        raise ValueError(
            f"{data}: the {split!r} shards are incomplete or mixed from two builds ({', '.join(names)}); {rebuild_hint}"
        )


def _decode_errors() -> tuple[type[Exception], ...]:
    """What pyarrow raises on undecodable Parquet (ArrowInvalid, ArrowIOError = OSError, ...)."""
    import pyarrow as pa

    return (OSError, pa.ArrowException)


def _damaged_shard_error(folder: Path, err: Exception, rebuild_hint: str | None = None) -> ValueError:
    """Name the local shard behind a decoding error (its footer was fine, its pages are not)."""
    import pyarrow.parquet as pq

    rebuild_hint = rebuild_hint or _REBUILD_HINT
    for shard in sorted((folder / "data").glob("*.parquet")):
        try:
            pq.read_table(shard)
        except _decode_errors() as cause:
            return ValueError(f"{shard}: damaged Parquet shard ({type(cause).__name__}: {cause}); {rebuild_hint}")
    cause = err.__cause__ or err
    return ValueError(
        f"{folder}: the Parquet shards of the dataset could not be loaded ({type(cause).__name__}: "
        f"{cause}); {rebuild_hint}"
    )


def _no_window_message(n_samples: np.ndarray, length: int, sfreq: float) -> str:
    longest = int(n_samples.max()) if len(n_samples) else 0
    return (
        f"no windows: the longest segment has {longest} samples ({longest / sfreq:.2f} s), shorter than one "
        f"window of {length} samples ({length / sfreq:.2f} s); lower example_seconds or rebuild with longer "
        "segments"
    )


class _SegmentReader:
    """Zero-copy `(C, T)` views of the `data` column of an Arrow-backed `datasets.Dataset`.

    Goes through the Arrow buffers (memory-mapped for `load_dataset` folders) instead of decoding
    rows to Python: one window costs a slice, like a numpy memmap."""

    def __init__(self, segments, cache_size: int = 8):
        self.table = segments.data.table  # pyarrow.Table behind the datasets.Table wrapper
        indices = getattr(segments, "_indices", None)  # select/shuffle/filter keep a row mapping
        self.table_rows = None if indices is None else np.asarray(indices.column(0).to_numpy(), dtype=np.int64)
        column = self.table.column("data")
        self.chunks = column.chunks
        self.chunk_ends = np.cumsum([len(c) for c in self.chunks])
        self.n_channels = np.asarray(self.table.column("n_channels").to_numpy(), dtype=np.int64)
        self.n_samples = np.asarray(self.table.column("n_samples").to_numpy(), dtype=np.int64)
        self.cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self.cache_size = cache_size
        names = self.table.column_names
        self.events = self.table.column("events") if "events" in names else None  # conditioned datasets

    def event_codes(self, row: int, start: int, length: int) -> np.ndarray:
        """(length,) int16 event codes of a window (conditioned datasets, `events` column)."""
        codes = self.events[self.table_row(row)].values.to_numpy(zero_copy_only=False)
        return np.asarray(codes[start : start + length], dtype=np.int16)

    def table_row(self, row: int) -> int:
        return int(row if self.table_rows is None else self.table_rows[row])

    def segment(self, row: int) -> np.ndarray:
        row = self.table_row(row)
        cached = self.cache.get(row)
        if cached is not None:
            self.cache.move_to_end(row)
            return cached
        chunk_id = int(np.searchsorted(self.chunk_ends, row, side="right"))
        local = row - (int(self.chunk_ends[chunk_id - 1]) if chunk_id else 0)
        chunk = self.chunks[chunk_id]
        outer = chunk.offsets
        first_channel, last_channel = outer[local].as_py(), outer[local + 1].as_py()
        inner = chunk.values
        inner_offsets = inner.offsets
        begin, end = inner_offsets[first_channel].as_py(), inner_offsets[last_channel].as_py()
        flat = inner.values.slice(begin, end - begin).to_numpy(zero_copy_only=True)
        array = flat.reshape(self.n_channels[row], self.n_samples[row])
        self.cache[row] = array
        if len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)
        return array


class WindowBatch(list):
    """The items of one batch (a list of item dicts) plus the stacked `signal (B, C, L)` and
    `channel_mask (B, C)` arrays, so collators skip a second copy of every window."""

    def __init__(self, items, signal: np.ndarray, channel_mask: np.ndarray):
        super().__init__(items)
        self.signal, self.channel_mask = signal, channel_mask


class WindowDataset(torch.utils.data.Dataset):
    """Map-style windows over a `datasets.Dataset` of segments (a torch-compatible Dataset).

    Item: {"signal": (C, L) float32 in the canonical layout, "channel_mask": (C,) bool,
    "row": segment row, "start": first sample}, plus "events": (L,) int16 codes when the segments
    have an `events` column (conditioned builds). Collators add positions and sensor types.
    `__getitems__` serves a whole batch (the DataLoader fast path).
    """

    def __init__(
        self,
        segments,
        example_seconds: float = 10.24,
        overlap_seconds: float = 5.0,
        *,
        layout: ChannelLayout | None = None,
        cache_segments: int = 8,
    ):
        self.segments = segments
        self.window = WindowConfig(example_seconds, overlap_seconds)
        self.layout = layout or build_canonical_layout(segments)
        self.length, self.step = self.window.lengths(self.layout.sfreq)
        self.reader = _SegmentReader(segments, cache_size=cache_segments)
        meta = segments.select_columns(["dataset", "session", "sfreq", "n_samples"]).with_format("arrow")[:]
        sfreqs = meta.column("sfreq").to_numpy()
        if len(sfreqs) and not np.allclose(sfreqs, self.layout.sfreq, atol=1e-6):
            raise ValueError(
                f"segments have sampling rates {sorted(set(sfreqs.tolist()))}, the layout "
                f"{self.layout.sfreq:g} Hz; all segments must share one rate"
            )
        n_samples = meta.column("n_samples").to_numpy()
        self.index = build_window_index(n_samples, self.length, self.step)
        if len(self.index) == 0:
            raise ValueError(_no_window_message(n_samples, self.length, self.layout.sfreq))
        keys = list(zip(meta.column("dataset").to_pylist(), meta.column("session").to_pylist()))
        self.row_channels = [self.layout.indices_for(*key) for key in keys]  # same for all rows of a recording
        n_canonical = len(self.layout)
        self.row_masks, self.row_is_identity = [], []
        for idx in self.row_channels:
            mask = np.zeros(n_canonical, dtype=bool)
            mask[idx] = True
            self.row_masks.append(mask)
            self.row_is_identity.append(len(idx) == n_canonical and bool(np.all(idx == np.arange(n_canonical))))

    def __len__(self) -> int:
        return len(self.index)

    def _window(self, row: int, start: int, out: np.ndarray) -> None:
        segment = self.reader.segment(row)
        window = segment[:, start : start + self.length]
        if self.row_is_identity[row]:
            out[:] = window  # the recording has exactly the canonical channels: one copy
        else:
            out.fill(0.0)
            out[self.row_channels[row]] = window

    def __getitem__(self, i: int) -> dict:
        row, start = (int(v) for v in self.index[i])
        signal = np.empty((len(self.layout), self.length), dtype=np.float32)
        self._window(row, start, signal)
        item = {"signal": signal, "channel_mask": self.row_masks[row], "row": row, "start": start}
        if self.reader.events is not None:
            item["events"] = self.reader.event_codes(row, start, self.length)
        return item

    def __getitems__(self, indices) -> WindowBatch:
        """A whole batch in one buffer (torch's DataLoader calls this with the batch indices)."""
        signal = self.window_array(indices)
        rows = self.index[np.asarray(indices, dtype=np.int64)]
        masks = np.stack([self.row_masks[int(r)] for r in rows[:, 0]])
        items = [
            {"signal": signal[b], "channel_mask": masks[b], "row": int(r), "start": int(st)}
            for b, (r, st) in enumerate(rows)
        ]
        if self.reader.events is not None:
            for item in items:
                item["events"] = self.reader.event_codes(item["row"], item["start"], self.length)
        return WindowBatch(items, signal, masks)

    def window_array(self, indices) -> np.ndarray:
        """(B, C, L) float32 for many windows at once, without per-item dicts."""
        out = np.empty((len(indices), len(self.layout), self.length), dtype=np.float32)
        for b, i in enumerate(indices):
            row, start = self.index[i]
            self._window(int(row), int(start), out[b])
        return out


def _as_2d_float32(value) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype == object:  # ragged decoding of list<list<float>>: stack the channel arrays
        array = np.stack([np.asarray(v, dtype=np.float32) for v in array])
    return np.ascontiguousarray(array, dtype=np.float32)


class StreamingWindowDataset(torch.utils.data.IterableDataset):
    """Windows from a streaming `datasets.IterableDataset` of segments; same windows and order as
    `WindowDataset`. Inside DataLoader workers, datasets hands each worker its own shards.

    Without `layout`, the first recording's channels are the layout and every recording must have
    the same channels; pass `build_canonical_layout(streamed_dataset)` to merge datasets.
    """

    def __init__(
        self,
        segments,
        example_seconds: float = 10.24,
        overlap_seconds: float = 5.0,
        *,
        layout: ChannelLayout | None = None,
    ):
        self.segments = segments.with_format("numpy") if hasattr(segments, "with_format") else segments
        self.window = WindowConfig(example_seconds, overlap_seconds)
        self.layout = layout

    def _rows(self):
        """The streamed rows; a shard that cannot be decoded is a ValueError that says so."""
        rows = iter(self.segments)
        while True:
            try:
                row = next(rows)
            except StopIteration:
                return
            except _decode_errors() as err:
                raise ValueError(
                    f"reading the streamed segments failed: a Parquet shard of the dataset is damaged "
                    f"({type(err).__name__}: {err}); {_REBUILD_HINT}"
                ) from err
            yield row

    def __iter__(self):
        layout = self.layout
        length = step = None
        for row_number, row in enumerate(self._rows()):
            key = (str(row["dataset"]), str(row["session"]))
            if layout is None:
                layout = build_canonical_layout([row])
            if length is None:
                length, step = self.window.lengths(layout.sfreq)
            if not np.isclose(float(row["sfreq"]), layout.sfreq, atol=1e-6):
                raise ValueError(f"segment {key} has sfreq {float(row['sfreq']):g} Hz, expected {layout.sfreq:g} Hz")
            channels = layout.match_row(row)
            mask = np.zeros(len(layout), dtype=bool)
            mask[channels] = True
            data = _as_2d_float32(row["data"])
            codes = np.asarray(row["events"], dtype=np.int16) if "events" in row else None  # conditioned builds
            for start in window_starts(data.shape[1], length, step):
                signal = np.zeros((len(layout), length), dtype=np.float32)
                signal[channels] = data[:, start : start + length]
                item = {"signal": signal, "channel_mask": mask, "row": row_number, "start": int(start)}
                if codes is not None:
                    item["events"] = codes[start : start + length]
                yield item
