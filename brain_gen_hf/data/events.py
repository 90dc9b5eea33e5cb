"""Conditioned variants: a dense per-sample event code next to the data (spec 1.5.4).

`mode: mous` follows MOUSConditioned (stim-channel events, task-specific code rules, rest
recordings have none); `mode: camcan` follows CamCANConditioned (the BIDS `_events.tsv` next to
the recording, else stim-channel events, else annotations). The codes are stored per segment in
an `events` column (int16, one value per sample), not as an extra data row, so normalisation,
cleaning and clipping never touch them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

EVENT_MODES = ("none", "mous", "camcan")
MOUS_AUDITORY_STARTS = frozenset({1, 3, 5, 7})
MOUS_VISUAL_STARTS = frozenset(range(1, 9))
MOUS_STOP = 15
MOUS_CATEGORIES = {10: 2, 20: 3, 40: 4}
MOUS_MIN_FILL = 5  # fills of this many samples or fewer are ignored
CAMCAN_STIM_CHANNELS = ("STI101", "STI 014", "UPPT001")


@dataclass
class EventsConfig:
    """The `events` section of a build config."""

    mode: str = "none"
    stim_channel: str | None = None  # overrides the preferred stim channel of the mode

    def __post_init__(self):
        if self.mode not in EVENT_MODES:
            raise ValueError(f"events.mode must be one of {EVENT_MODES}, got {self.mode!r}")


def find_stim_events(raw, preferred, min_duration: float):
    """(n, 3) mne events from the first preferred stim channel present, else all stim channels; None without any."""
    import mne

    names = [raw.ch_names[i] for i in mne.pick_types(raw.info, meg=False, stim=True)]
    if not names:
        return None
    chosen = next(([name] for name in preferred if name in names), names)
    return mne.find_events(
        raw, stim_channel=chosen, min_duration=min_duration, output="onset", shortest_event=1, verbose="error"
    )


def to_output_samples(samples, first_samp: int, ratio: float) -> np.ndarray:
    """Sample indices of the recording -> indices of the processed data (`ratio` = output / input rate)."""
    return np.floor((np.asarray(samples, dtype=np.int64) - first_samp) * ratio).astype(np.int64)


def mous_event_array(events: np.ndarray, n_samples: int, *, visual: bool) -> np.ndarray:
    """MOUS rules: a trial start fills 1 (auditory) or 5 (visual) up to the next stop code 15 (or the end);
    category codes 10/20/40 fill 2/3/4 up to the next event. `events[:, 0]` are output sample indices."""
    codes = np.zeros(n_samples, dtype=np.int16)
    starts, fill = (MOUS_VISUAL_STARTS, 5) if visual else (MOUS_AUDITORY_STARTS, 1)

    def fill_range(begin: int, end: int, value: int) -> None:
        begin, end = (int(np.clip(x, 0, n_samples)) for x in (begin, end))
        if end - begin > MOUS_MIN_FILL:
            codes[begin:end] = value

    for i, (sample, _, code) in enumerate(events):
        if code in starts:
            stops = [e[0] for e in events[i + 1 :] if e[2] == MOUS_STOP]
            fill_range(sample, stops[0] if stops else n_samples, fill)
        elif code in MOUS_CATEGORIES:
            fill_range(sample, events[i + 1, 0] if i + 1 < len(events) else n_samples, MOUS_CATEGORIES[code])
    return codes


def fill_until_next(onsets: np.ndarray, values, n_samples: int, ends=None) -> np.ndarray:
    """Each event fills from its onset to its end (given) or the next onset; the last fills one sample."""
    codes = np.zeros(n_samples, dtype=np.int16)
    for i, onset in enumerate(onsets):
        begin = int(np.clip(onset, 0, n_samples))
        end = ends[i] if ends is not None and ends[i] is not None else None
        if end is None:
            end = onsets[i + 1] if i + 1 < len(onsets) else begin + 1
        end = int(np.clip(end, 0, n_samples))
        if end <= begin:
            end = min(begin + 1, n_samples)
        codes[begin:end] = int(values[i])
    return codes


def events_tsv_for(path: Path) -> Path | None:
    """The BIDS events file of a recording: `*_meg.fif` -> `*_events.tsv`, else `<stem>_events.tsv`."""
    path = Path(path)
    name = path.name
    stem = name[: -len("_meg.fif")] if name.endswith("_meg.fif") else name.split(".")[0]
    candidate = path.with_name(f"{stem}_events.tsv")
    return candidate if candidate.is_file() else None


def tsv_event_codes(table) -> list[int]:
    """Numeric `value` codes (gaps filled from neighbours), else `trial_type` labels numbered 1..K by name,
    else 1..N."""
    import pandas as pd

    if "value" in table.columns:
        values = pd.to_numeric(table["value"], errors="coerce")
        if values.notnull().any():
            return [int(v) for v in values.ffill().bfill()]
    if "trial_type" in table.columns:
        labels = table["trial_type"].fillna("n/a").astype(str)
        numbers = {name: i + 1 for i, name in enumerate(sorted(set(labels)))}
        return [numbers[label] for label in labels]
    return list(range(1, len(table) + 1))


def camcan_tsv_event_array(tsv: Path, sfreq: float, n_samples: int) -> np.ndarray | None:
    """Dense codes from a BIDS events file (onset/duration in seconds), None when it has no usable rows."""
    import pandas as pd

    try:
        table = pd.read_csv(tsv, sep="\t")
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise ValueError(f"{tsv}: not a readable BIDS events file ({err})") from err
    if table.empty or "onset" not in table.columns:
        return None
    onsets = pd.to_numeric(table["onset"], errors="coerce").to_numpy()
    durations = pd.to_numeric(table["duration"], errors="coerce").to_numpy() if "duration" in table else None
    codes = tsv_event_codes(table)
    keep = np.flatnonzero(np.isfinite(onsets))
    starts = np.round(onsets[keep] * sfreq).astype(np.int64)
    ends = []
    for k in keep:
        has_duration = durations is not None and np.isfinite(durations[k]) and durations[k] > 0
        ends.append(int(round(onsets[k] * sfreq)) + int(round(durations[k] * sfreq)) if has_duration else None)
    array = fill_until_next(starts, [codes[k] for k in keep], n_samples, ends)
    return array if array.any() else None


@dataclass
class RawEvents:
    """What is read from the recording before preprocessing changes its rate and drops its stim channels."""

    events: np.ndarray | None  # (n, 3) in recording samples
    first_samp: int
    sfreq: float


def read_raw_events(raw, config: EventsConfig, path: Path, *, source: str = "recording") -> RawEvents | None:
    """Stim / annotation events of the raw recording (None when the mode needs none for this file)."""
    import mne

    if config.mode == "none" or (config.mode == "mous" and "rest" in str(path)):
        return None
    if config.mode == "mous":
        preferred = [config.stim_channel or "UPPT001"]
        events = find_stim_events(raw, preferred, min_duration=0.005)
        if events is None:
            raise ValueError(
                f"{source}: events.mode mous needs a stim channel (UPPT001), and the recording has none; "
                "set events.mode: none for it"
            )
    else:
        if events_tsv_for(path) is not None:
            return RawEvents(None, raw.first_samp, float(raw.info["sfreq"]))
        preferred = [config.stim_channel] if config.stim_channel else list(CAMCAN_STIM_CHANNELS)
        events = find_stim_events(raw, preferred, min_duration=0.002)
        if events is None or len(events) == 0:
            events, _ = mne.events_from_annotations(raw, verbose="error")
    return RawEvents(np.asarray(events), raw.first_samp, float(raw.info["sfreq"]))


def event_array(
    raw_events: RawEvents | None, config: EventsConfig, path: Path, n_samples: int, sfreq: float
) -> np.ndarray:
    """(n_samples,) int16 codes at the processed rate `sfreq` (zeros where there are none)."""
    if raw_events is None:
        return np.zeros(n_samples, dtype=np.int16)
    if config.mode == "camcan" and raw_events.events is None:
        codes = camcan_tsv_event_array(events_tsv_for(path), sfreq, n_samples)
        return np.zeros(n_samples, dtype=np.int16) if codes is None else codes
    events = raw_events.events.copy()
    events[:, 0] = to_output_samples(events[:, 0], raw_events.first_samp, sfreq / raw_events.sfreq)
    if config.mode == "mous":
        return mous_event_array(events, n_samples, visual="visual" in str(path))
    if len(events) == 0:
        return np.zeros(n_samples, dtype=np.int16)
    return fill_until_next(events[:, 0], events[:, 2], n_samples)
