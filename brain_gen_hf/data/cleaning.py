"""Session cleaning: drop noisy windows and cut the rest into clean segments (spec 1.6).

A recording is cut into non-overlapping windows of `window_seconds`; a window whose standard
deviation (over channels and time jointly) exceeds `std_threshold` is bad. Too many bad windows
reject the recording; contiguous good windows form segments of `min..max_segment_seconds`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass
class CleaningConfig:
    """Defaults are the reference's paper values (5 s / 1.5 / 20 % / +-10 / 60-600 s)."""

    enabled: bool = True
    window_seconds: float = 5.0
    std_threshold: float = 1.5
    max_bad_pct: float = 20.0
    clip_range: tuple[float, float] = (-10.0, 10.0)
    max_segment_seconds: float = 600.0  # <= 0: unlimited
    min_segment_seconds: float = 60.0
    min_first_segment_seconds: float = 0.0

    def __post_init__(self):
        if self.window_seconds <= 0:
            raise ValueError(f"window_seconds must be positive, got {self.window_seconds}")
        if not 0 <= self.max_bad_pct <= 100:
            raise ValueError(f"max_bad_pct must lie in [0, 100], got {self.max_bad_pct}")
        low, high = self.clip_range
        if low >= high:
            raise ValueError(f"clip_range must be (low, high) with low < high, got {self.clip_range}")
        self.clip_range = (float(low), float(high))
        if self.min_segment_seconds < 0:
            raise ValueError("min_segment_seconds must be >= 0")
        if self.std_threshold <= 0:
            raise ValueError(f"std_threshold must be positive, got {self.std_threshold}")
        if 0 < self.max_segment_seconds < self.min_segment_seconds:
            raise ValueError(
                f"max_segment_seconds ({self.max_segment_seconds}) is below min_segment_seconds "
                f"({self.min_segment_seconds}): no segment could be kept; raise it (<= 0: unlimited)"
            )
        if self.min_first_segment_seconds < 0:
            raise ValueError("min_first_segment_seconds must be >= 0")


# How to accept a recording that cleaning rejected, per discard reason (the pipeline adds it to its error).
SHORT_RECORDINGS_CONFIG = "training_scripts/configs/preprocess_short_recordings.yaml"
REJECTION_FIXES = {
    "too_short": f"lower cleaning.window_seconds, or use --config {SHORT_RECORDINGS_CONFIG} for recordings of seconds",
    "too_many_bad_windows": "raise cleaning.std_threshold or cleaning.max_bad_pct (or set cleaning.enabled: false), "
    f"or for recordings of seconds use --config {SHORT_RECORDINGS_CONFIG} (0.5 s windows)",
    "no_good_windows": "raise cleaning.std_threshold (or set cleaning.enabled: false)",
    "no_segments": f"lower cleaning.min_segment_seconds, or use --config {SHORT_RECORDINGS_CONFIG} for short "
    "recordings",
    "first_segment_too_short": "lower cleaning.min_first_segment_seconds",
}


@dataclass
class CleaningSummary:
    total_windows: int = 0
    bad_windows: int = 0
    bad_window_pct: float = 0.0
    kept_windows: int = 0
    clipped_pct: float = 0.0
    segments_kept: int = 0
    discarded: bool = False
    discard_reason: str | None = None
    message: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class CleaningResult:
    segments: list[np.ndarray] = field(default_factory=list)
    summary: CleaningSummary = field(default_factory=CleaningSummary)
    spans: list[tuple[int, int]] = field(default_factory=list)  # (start, stop) sample of each segment


def clean_recording(data: np.ndarray, sfreq: float, config: CleaningConfig) -> CleaningResult:
    """Return the clean segments of a `(C, T)` recording and a summary.

    A discarded recording has no segments and `summary.discard_reason` + `summary.message`
    say why (too_short, too_many_bad_windows, no_segments, first_segment_too_short).
    """
    summary = CleaningSummary()
    if not config.enabled:
        summary.segments_kept = 1
        return CleaningResult([np.asarray(data, dtype=np.float32)], summary, [(0, data.shape[1])])

    width = int(round(config.window_seconds * sfreq))
    n_windows = data.shape[1] // width if width > 0 else 0
    summary.total_windows = n_windows
    duration = data.shape[1] / sfreq

    def discard(reason: str, message: str) -> CleaningResult:
        summary.discarded, summary.discard_reason, summary.message = True, reason, message
        return CleaningResult([], summary)

    if n_windows == 0:
        return discard(
            "too_short",
            f"recording is {duration:.2f} s long, shorter than one cleaning "
            f"window of {config.window_seconds:g} s (cleaning.window_seconds)",
        )
    windows = data[:, : n_windows * width].reshape(data.shape[0], n_windows, width)
    window_std = windows.std(axis=(0, 2))
    good = window_std <= config.std_threshold
    summary.bad_windows = int((~good).sum())
    summary.bad_window_pct = 100.0 * summary.bad_windows / n_windows
    summary.kept_windows = int(good.sum())
    if summary.bad_window_pct > config.max_bad_pct:
        return discard(
            "too_many_bad_windows",
            f"{summary.bad_window_pct:.1f}% of {n_windows} windows have std > "
            f"{config.std_threshold:g} (cleaning.std_threshold; limit cleaning.max_bad_pct="
            f"{config.max_bad_pct:g}%)",
        )
    if not good.any():
        return discard("no_good_windows", f"no window passes cleaning.std_threshold={config.std_threshold:g}")

    low, high = config.clip_range
    kept = windows[:, good]
    summary.clipped_pct = 100.0 * float(((kept < low) | (kept > high)).mean())

    window_seconds = width / sfreq
    max_windows = max(1, int(config.max_segment_seconds / window_seconds)) if config.max_segment_seconds > 0 else None
    min_samples = int(config.min_segment_seconds * sfreq)
    good_idx = np.flatnonzero(good)
    runs = np.split(good_idx, np.flatnonzero(np.diff(good_idx) != 1) + 1)
    segments, spans = [], []
    longest = 0
    for run in runs:
        step = max_windows or len(run)
        for start in range(0, len(run), step):
            part = run[start : start + step]
            longest = max(longest, len(part) * width)
            if len(part) * width >= min_samples:
                segment = windows[:, part].reshape(data.shape[0], -1)
                segments.append(np.clip(segment, low, high).astype(np.float32))
                spans.append((int(part[0]) * width, (int(part[-1]) + 1) * width))
    if (
        segments
        and config.min_first_segment_seconds > 0
        and segments[0].shape[1] < config.min_first_segment_seconds * sfreq
    ):
        return discard(
            "first_segment_too_short",
            f"first clean segment is {segments[0].shape[1] / sfreq:.1f} s "
            f"< cleaning.min_first_segment_seconds={config.min_first_segment_seconds:g}",
        )
    if not segments:
        return discard(
            "no_segments",
            f"no clean segment reaches cleaning.min_segment_seconds={config.min_segment_seconds:g} s "
            f"(longest clean run {longest / sfreq:.1f} s of a {duration:.1f} s recording)",
        )
    summary.segments_kept = len(segments)
    return CleaningResult(segments, summary, spans)
