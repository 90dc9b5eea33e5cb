"""Session sampler: which recordings an evaluation rolls out from, and their context + continuation (spec 5.3).

The input is one split of a built dataset as `brain_gen_hf.data.windows.load_segments(path_or_repo, split)`
returns it (a `datasets.Dataset` whose rows are clean segments, see `brain_gen_hf.data.shards.segment_features`),
or a list of such row dicts. A *session* is one `(dataset, subject, session, task)` recording. For each session
the sampler takes its first segment (in `segment_index` order) that holds `total` samples and keeps the first
`total` of them: the model sees `context` samples and the rest is the true continuation.

Differences from the reference, on purpose: it reads the first *chunk file* of a session only, even when a
later one is long enough (its quirk); here a session counts when any of its clean segments is long enough. It
maps channels to a canonical layout; here each sample keeps its recording's own channels and sensor geometry,
which the rollout generator passes to the model.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np

from .config_keys import dataclass_values

# Row columns read before choosing the sessions (the `data` column is decoded for the chosen rows only).
_KEY_COLUMNS = ("dataset", "subject", "session", "task", "segment_index", "sfreq", "n_samples")


class SegmentsTooShortError(ValueError):
    """No session of the split has a clean segment as long as the evaluation's context + continuation."""


@dataclass
class SessionSamplerConfig:
    """Which sessions to sample and how long the context and the whole run are.

    seed: drives the shuffle before taking `num_sessions` (None: a fresh, unseeded shuffle).
    split: the split the runner loads (`train`, `val` or `test`); the sampler itself reads what it is given.
    task_type: keep sessions whose task contains one of these (case-insensitive); None keeps all.
    dataset_keys: keep these datasets (case-insensitive, must exist); None keeps all.
    num_sessions: how many sessions to sample; <= 0 takes every candidate, in sorted order, unshuffled.
    context_length_steps / context_length_s: the context (one of the two; seconds are rounded to samples).
    total_length_steps / total_length_s: context + continuation, in the same way.
    """

    seed: int | None = None
    split: str = "test"
    task_type: list[str] | None = None
    dataset_keys: list[str] | None = None
    num_sessions: int = 1
    context_length_steps: int | None = None
    context_length_s: float | None = None
    total_length_steps: int | None = None
    total_length_s: float | None = None

    # Reference spellings of the same keys.
    ALIASES = {"num_runs": "num_sessions", "dataset_key": "dataset_keys", "dataset": "dataset_keys"}

    @classmethod
    def from_dict(cls, values: dict | None) -> SessionSamplerConfig:
        values = dataclass_values(cls, "session sampler", values, cls.ALIASES)
        config = cls(**values)
        config.validate()
        return config

    def validate(self) -> None:
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral)):
            raise ValueError(f"session sampler: seed must be an int or None, got {self.seed!r}")
        if self.split not in ("train", "val", "validation", "test"):
            raise ValueError(f"session sampler: split must be 'train', 'val' or 'test', got {self.split!r}")
        if isinstance(self.num_sessions, bool) or not isinstance(self.num_sessions, numbers.Integral):
            raise ValueError(f"session sampler: num_sessions must be an int (<= 0: all), got {self.num_sessions!r}")
        self.task_type = _names(self.task_type, "task_type")
        self.dataset_keys = _names(self.dataset_keys, "dataset_keys")
        for kind in ("context", "total"):
            steps, seconds = getattr(self, f"{kind}_length_steps"), getattr(self, f"{kind}_length_s")
            if (steps is None) == (seconds is None):
                raise ValueError(
                    f"session sampler: give exactly one of {kind}_length_steps and {kind}_length_s, got "
                    f"{kind}_length_steps={steps!r}, {kind}_length_s={seconds!r}"
                )
            if steps is not None and (isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1):
                raise ValueError(f"session sampler: {kind}_length_steps must be a positive int, got {steps!r}")
            if seconds is not None and (
                isinstance(seconds, bool) or not isinstance(seconds, numbers.Real) or not seconds > 0
            ):
                raise ValueError(f"session sampler: {kind}_length_s must be a positive number, got {seconds!r}")
        if self.context_length_steps is not None and self.total_length_steps is not None:
            _check_lengths(self.context_length_steps, self.total_length_steps)

    def lengths(self, sfreq: float) -> tuple[int, int]:
        """(context, total) in samples at `sfreq`."""
        context = self.context_length_steps or round(self.context_length_s * sfreq)
        total = self.total_length_steps or round(self.total_length_s * sfreq)
        _check_lengths(context, total)
        return int(context), int(total)


def _names(value, key: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"session sampler: {key} must be a non-empty string or list of strings, got {value!r}")
    return list(value)


def _check_lengths(context: int, total: int) -> None:
    if not 0 < context < total:
        raise ValueError(
            f"session sampler: the context ({context} samples) must be positive and shorter than the total "
            f"length ({total} samples), so that something is left to forecast"
        )


@dataclass
class SessionSample:
    """One recording's evaluation run: `data (C, total_steps)` float32, of which the first `context_steps`
    samples are the model's context; sensor metadata as in the dataset row (`pos_2d (C, 2)`, `pos_3d` and
    `ori_3d (C, 3)`)."""

    dataset_key: str
    session: str
    task_type: str
    subject: str
    data: np.ndarray
    context_steps: int
    total_steps: int
    sfreq: float
    channel_names: list[str]
    ch_types: list[str]
    pos_2d: np.ndarray | None = None
    pos_3d: np.ndarray | None = None
    ori_3d: np.ndarray | None = None
    segment_index: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def context(self) -> np.ndarray:
        return self.data[:, : self.context_steps]

    @property
    def continuation(self) -> np.ndarray:
        return self.data[:, self.context_steps : self.total_steps]

    @property
    def sensor_type_ids(self) -> np.ndarray:
        """int64 `(C,)`: the dataset's fixed id of each channel type (`data.layouts.SENSOR_TYPE_IDS`)."""
        from ..data.layouts import SENSOR_TYPE_IDS

        unknown = sorted({t for t in self.ch_types if t not in SENSOR_TYPE_IDS})
        if unknown:
            raise ValueError(f"channel type(s) {unknown} of {self.name} have no sensor-type id")
        return np.array([SENSOR_TYPE_IDS[t] for t in self.ch_types], dtype=np.int64)

    @property
    def name(self) -> str:
        return f"{self.dataset_key}/{self.subject}/{self.session}/{self.task_type}"

    def metadata(self) -> dict:
        return {
            "dataset_key": self.dataset_key,
            "subject": self.subject,
            "session": self.session,
            "task_type": self.task_type,
            "segment_index": int(self.segment_index),
        }


def _key_columns(segments) -> dict[str, list]:
    """The metadata columns of every row, without decoding `data` where the rows are a `datasets.Dataset`."""
    if hasattr(segments, "column_names") and hasattr(segments, "select_columns"):
        missing = sorted(set(_KEY_COLUMNS) - set(segments.column_names))
        if missing:
            raise ValueError(f"the segments lack column(s) {missing}; pass rows built by brain_gen_hf's data pipeline")
        table = segments.select_columns(list(_KEY_COLUMNS)).to_dict()
        return {name: list(table[name]) for name in _KEY_COLUMNS}
    rows = list(segments)
    for i, row in enumerate(rows):
        missing = sorted(set(_KEY_COLUMNS) - set(row))
        if missing:
            raise ValueError(f"segment row {i} lacks key(s) {missing}; pass rows built by brain_gen_hf's data pipeline")
    return {name: [row[name] for row in rows] for name in _KEY_COLUMNS}


def sample_sessions(segments, config: SessionSamplerConfig | dict) -> list[SessionSample]:
    """The evaluation sessions of `segments` (see the module docstring), deterministic under `config.seed`.

    Candidates are sorted by (dataset, subject, session, task); with `num_sessions > 0` they are shuffled by
    `np.random.default_rng(seed)` and the first `num_sessions` kept. Raises ValueError for an unknown dataset
    key, and when no session passes the filters or none has a segment of `total` samples (naming the longest).
    """
    if isinstance(config, dict):
        config = SessionSamplerConfig.from_dict(config)
    config.validate()
    columns = _key_columns(segments)
    if not columns["dataset"]:
        raise ValueError("the segments are empty: the split holds no rows")
    datasets = sorted({str(d) for d in columns["dataset"]})
    if config.dataset_keys is not None:
        lowered = {d.lower(): d for d in datasets}
        missing = [k for k in config.dataset_keys if k.lower() not in lowered]
        if missing:
            raise ValueError(f"dataset key(s) {missing} are not in the segments; available: {datasets}")
    wanted_datasets = {k.lower() for k in config.dataset_keys or ()}
    rows_by_session: dict[tuple, list[int]] = {}
    for i in range(len(columns["dataset"])):
        key = tuple(str(columns[name][i]) for name in ("dataset", "subject", "session", "task"))
        if config.dataset_keys is not None and key[0].lower() not in wanted_datasets:
            continue
        if config.task_type is not None and not any(term.lower() in key[3].lower() for term in config.task_type):
            continue
        rows_by_session.setdefault(key, []).append(i)
    if not rows_by_session:
        raise ValueError(
            f"no session matches task_type={config.task_type} and dataset_keys={config.dataset_keys}; tasks "
            f"present: {sorted({str(t) for t in columns['task']})}"
        )
    candidates, longest = [], (0, None, None)
    for key in sorted(rows_by_session):
        rows = sorted(rows_by_session[key], key=lambda i: int(columns["segment_index"][i]))
        sfreq = float(columns["sfreq"][rows[0]])
        context, total = config.lengths(sfreq)
        chosen = next((i for i in rows if int(columns["n_samples"][i]) >= total), None)
        for i in rows:
            if int(columns["n_samples"][i]) > longest[0]:
                longest = (int(columns["n_samples"][i]), "/".join(key), sfreq)
        if chosen is not None:
            candidates.append((key, chosen, context, total))
    if not candidates:
        samples, name, sfreq = longest
        context, total = config.lengths(sfreq)
        raise SegmentsTooShortError(
            f"no session has a clean segment of {total} samples ({total / sfreq:g} s at {sfreq:g} Hz, context "
            f"{context} + continuation {total - context}); the longest is {samples} samples ({samples / sfreq:g} s, "
            f"{name}); shorten total_length_s / total_length_steps or rebuild with longer clean segments"
        )
    if config.num_sessions > 0:
        order = np.random.default_rng(config.seed).permutation(len(candidates))
        candidates = [candidates[i] for i in order[: config.num_sessions]]
    if hasattr(segments, "with_format"):
        segments = segments.with_format("numpy")  # `data` as arrays, not nested Python lists
    return [_sample(segments[int(row)], key, context, total) for key, row, context, total in candidates]


def _sample(row: dict, key: tuple, context: int, total: int) -> SessionSample:
    data = np.asarray(row["data"], dtype=np.float32)
    if data.ndim != 2 or data.shape[1] < total:
        raise ValueError(f"segment {'/'.join(key)} has data of shape {data.shape}; expected (C, >= {total})")
    data = np.ascontiguousarray(data[:, :total])
    if not np.isfinite(data).all():
        raise ValueError(f"segment {'/'.join(key)} holds NaN/inf samples in its first {total}; rebuild the dataset")

    def geometry(name, width):
        value = row.get(name)
        return None if value is None else np.asarray(value, dtype=np.float32).reshape(-1, width)

    return SessionSample(
        dataset_key=key[0],
        subject=key[1],
        session=key[2],
        task_type=key[3],
        data=data,
        context_steps=context,
        total_steps=total,
        sfreq=float(row["sfreq"]),
        channel_names=_strings(row.get("ch_names"), [f"ch{i}" for i in range(data.shape[0])]),
        ch_types=_strings(row.get("ch_types"), ["misc"] * data.shape[0]),
        pos_2d=geometry("pos_2d", 2),
        pos_3d=geometry("pos_3d", 3),
        ori_3d=geometry("ori_3d", 3),
        segment_index=int(row.get("segment_index", 0)),
    )


def _strings(values, default: list[str]) -> list[str]:
    return default if values is None or len(values) == 0 else [str(v) for v in values]
