"""One recording from raw file to clean, normalised segments (reference stages 1-2 on mne).

Sensor space by default; with `source_space.enabled` the preprocessed sensors are projected to
template parcels (reference 1.5.2, `source_space.py`) and the parcels are the channels. With
`events.mode` a per-sample event code is kept beside each segment (reference 1.5.4, `events.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .channels import ChannelMetadata, channel_metadata
from .cleaning import REJECTION_FIXES, CleaningSummary, clean_recording
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
    events: list[np.ndarray] | None = None  # int16 event codes per segment (events.mode)

    @property
    def seconds(self) -> float:
        return sum(s.shape[1] for s in self.segments) / self.sfreq


def process_recording(source: RecordingSource, config: BuildConfig, raw=None) -> ProcessedRecording:
    """Read (unless `raw` is given), preprocess, normalise, clean and optionally quantise.

    Raises ValueError / OSError with the file name when the recording cannot be used.
    """
    read_notes: list[str] = []  # mne's warnings, e.g. a truncated file read up to where it ends
    if raw is None:
        raw = read_recording(source.path, warnings_to=read_notes)
    try:
        return _process_raw(source, config, raw, read_notes)
    except ValueError as err:
        if not read_notes:
            raise
        raise ValueError(f"{err} (reading it, {'; '.join(read_notes)})") from err


def _process_raw(source: RecordingSource, config: BuildConfig, raw, read_notes: list[str]) -> ProcessedRecording:
    from .events import event_array, read_raw_events

    name = str(source.path)
    raw_events = read_raw_events(raw, config.events, source.path, source=name)  # before stim channels are dropped
    raw, notes = _preprocess(raw, config, name)
    notes = read_notes + notes
    if config.source_space.enabled:
        from .source_space import project_to_parcels

        parcels = project_to_parcels(raw, config.source_space, source=name)
        data, channels, sfreq, bad_channels = parcels.data, parcels.channels, parcels.sfreq, []
        notes += parcels.notes
    else:
        channels = channel_metadata(raw.info, missing_positions=config.preprocessing.missing_positions, source=name)
        data, sfreq, bad_channels = raw.get_data(), float(raw.info["sfreq"]), list(raw.info["bads"])
    normalized, stats = normalize_recording(data, config.normalization, source=name)
    if bad_channels and config.preprocessing.bad_channel_action == "zero":
        normalized[[raw.ch_names.index(b) for b in bad_channels]] = 0.0
    result = clean_recording(normalized, sfreq, config.cleaning)
    if result.summary.discarded:
        reason = result.summary.discard_reason
        raise ValueError(
            f"{name}: session cleaning rejected the recording ({reason}): {result.summary.message}; "
            f"to keep it, {REJECTION_FIXES.get(reason, 'adjust the cleaning section of the config')}"
        )
    if config.example_seconds is not None:
        longest = max(s.shape[1] for s in result.segments) / sfreq
        if longest < config.example_seconds:
            raise ValueError(
                f"{name}: longest clean segment is {longest:.2f} s, shorter than one training "
                f"window of example_seconds={config.example_seconds:g} s; lower example_seconds in the "
                "build config (or set it to null) to keep it"
            )
    processed = ProcessedRecording(source, sfreq, channels, result.segments, stats, result.summary, bad_channels, notes)
    if config.events.mode != "none":
        codes = event_array(raw_events, config.events, source.path, normalized.shape[1], sfreq)
        processed.events = [codes[start:stop] for start, stop in result.spans]
    if config.mulaw.enabled:
        from ..tokenizers.mulaw import mulaw_encode as encode

        scale = max(float(np.abs(s).max()) for s in result.segments) or 1.0
        processed.mulaw_scale = scale
        processed.tokens = [np.asarray(encode(s / scale, mu=config.mulaw.mu)) for s in result.segments]
    return processed


def _preprocess(raw, config: BuildConfig, name: str):
    from .preprocessing import preprocess_raw

    return preprocess_raw(raw, config.preprocessing, source=name)
