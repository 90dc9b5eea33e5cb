"""One recording from raw file to clean, normalised segments (reference stages 1-2 on mne).

Source-space projection (reference 1.5.2) is not implemented: it needs the fsaverage anatomy,
which mne downloads and which is not available offline. Segments stay in sensor space.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .channels import ChannelMetadata, channel_metadata
from .cleaning import CleaningSummary, clean_recording
from .config import BuildConfig
from .normalization import NormalizationStats, normalize_recording
from .readers import RecordingSource, read_recording


@dataclass
class ProcessedRecording:
    source: RecordingSource
    sfreq: float
    channels: ChannelMetadata
    segments: list[np.ndarray]  # each (C, T_i) float32
    normalization: NormalizationStats
    cleaning: CleaningSummary
    bad_channels: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tokens: list[np.ndarray] | None = None  # mu-law codes per segment when enabled
    mulaw_scale: float | None = None

    @property
    def seconds(self) -> float:
        return sum(s.shape[1] for s in self.segments) / self.sfreq


def process_recording(source: RecordingSource, config: BuildConfig, raw=None) -> ProcessedRecording:
    """Read (unless `raw` is given), preprocess, normalise, clean and optionally quantise.

    Raises ValueError / OSError with the file name when the recording cannot be used.
    """
    name = str(source.path)
    if raw is None:
        raw = read_recording(source.path)
    raw, notes = _preprocess(raw, config, name)
    channels = channel_metadata(raw.info, missing_positions=config.preprocessing.missing_positions, source=name)
    sfreq = float(raw.info["sfreq"])
    normalized, stats = normalize_recording(raw.get_data(), config.normalization, source=name)
    bad_channels = list(raw.info["bads"])
    if bad_channels and config.preprocessing.bad_channel_action == "zero":
        normalized[[raw.ch_names.index(b) for b in bad_channels]] = 0.0
    result = clean_recording(normalized, sfreq, config.cleaning)
    if result.summary.discarded:
        raise ValueError(f"{name}: session cleaning rejected the recording ({result.summary.discard_reason}): "
                         f"{result.summary.message}")
    if config.example_seconds is not None:
        longest = max(s.shape[1] for s in result.segments) / sfreq
        if longest < config.example_seconds:
            raise ValueError(f"{name}: longest clean segment is {longest:.2f} s, shorter than one training "
                             f"window of example_seconds={config.example_seconds:g} s")
    processed = ProcessedRecording(source, sfreq, channels, result.segments, stats, result.summary,
                                   bad_channels, notes)
    if config.mulaw.enabled:
        from ..tokenizers.mulaw import mulaw_encode as encode

        scale = max(float(np.abs(s).max()) for s in result.segments) or 1.0
        processed.mulaw_scale = scale
        processed.tokens = [np.asarray(encode(s / scale, mu=config.mulaw.mu)) for s in result.segments]
    return processed


def _preprocess(raw, config: BuildConfig, name: str):
    from .preprocessing import preprocess_raw

    return preprocess_raw(raw, config.preprocessing, source=name)
