"""Signal-level preprocessing of one `mne.io.Raw` (reference stage 1 + channel picking).

Order and defaults follow the reference OSL pipelines (spec 1.4): optional Maxwell filter
(Neuromag FIF), CTF gradient compensation (grade 3), band-pass 1-50 Hz and a 50 Hz notch with
minimum-phase FIR filters, polyphase resampling to 100 Hz, GESD bad-channel detection per sensor
type, then interpolation of the bad channels. Every step is an mne call; what is ours is the
order, the defaults and clear errors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .channels import DATA_CHANNEL_TYPES


@dataclass
class PreprocessingConfig:
    """Parameters of the signal preprocessing. Defaults reproduce the reference (spec 1.4-1.5)."""

    picks: str | list[str] = "auto"  # "auto": MEG without reference sensors, else EEG
    maxwell: bool = False  # tSSS (st_duration 10 s) for Neuromag FIF only
    maxwell_st_duration: float = 10.0
    maxwell_calibration: str | None = None  # fine-calibration file (sss_cal.dat); null: mne's defaults
    maxwell_cross_talk: str | None = None  # cross-talk compensation file (ct_sparse.fif); null: none
    gradient_compensation: int | None = 3  # CTF only
    l_freq: float | None = 1.0
    h_freq: float | None = 50.0
    filter_phase: str = "minimum"
    notch_freqs: list[float] = field(default_factory=lambda: [50.0])
    notch_before_bandpass: bool = False  # MOUS order; Omega/CamCAN filter first
    sfreq: float | None = 100.0  # None keeps the recording's rate
    resample_method: str = "polyphase"
    detect_bad_channels: bool = True
    bad_channel_alpha: float = 0.05
    bad_channel_max_outlier_fraction: float = 0.1  # GESD looks for up to ceil(0.1 C) outliers
    bad_channel_action: str = "interpolate"  # "interpolate" | "drop" | "zero"
    interpolation_mode: str = "accurate"  # mne MEG field-mapping mode; "fast" is ~5x quicker
    max_bad_channel_fraction: float = 0.1  # more bad channels than this rejects the recording
    montage: str | None = None  # standard montage for EEG files without positions
    missing_positions: str = "error"  # "error" | "zeros"
    crop_seconds: float | None = None  # keep only the first N seconds (demos, tests)

    def __post_init__(self):
        if self.bad_channel_action not in ("interpolate", "drop", "zero"):
            raise ValueError(f"bad_channel_action must be interpolate/drop/zero, got {self.bad_channel_action!r}")
        if self.missing_positions not in ("error", "zeros"):
            raise ValueError(f"missing_positions must be 'error' or 'zeros', got {self.missing_positions!r}")
        if self.interpolation_mode not in ("accurate", "fast"):
            raise ValueError(f"interpolation_mode must be 'accurate' or 'fast', got {self.interpolation_mode!r}")
        if self.filter_phase not in ("minimum", "zero", "zero-double", "minimum-half"):
            raise ValueError(f"filter_phase {self.filter_phase!r} is not an mne FIR phase")
        if self.l_freq is not None and self.h_freq is not None and self.l_freq >= self.h_freq:
            raise ValueError(f"l_freq ({self.l_freq}) must be below h_freq ({self.h_freq})")
        if self.sfreq is not None and self.sfreq <= 0:
            raise ValueError(f"sfreq must be positive, got {self.sfreq}")
        if not 0 <= self.max_bad_channel_fraction <= 1:
            raise ValueError("max_bad_channel_fraction must lie in [0, 1]")
        if isinstance(self.notch_freqs, (int, float)):
            self.notch_freqs = [float(self.notch_freqs)]
        self.notch_freqs = [float(f) for f in (self.notch_freqs or [])]
        for name in ("l_freq", "h_freq", "crop_seconds", "maxwell_st_duration"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be positive (or null to skip it), got {value}")
        if any(not (math.isfinite(f) and f > 0) for f in self.notch_freqs):
            raise ValueError(f"notch_freqs must be positive frequencies in Hz, got {self.notch_freqs}")
        if self.sfreq is not None and self.h_freq is not None and self.h_freq > self.sfreq / 2:
            raise ValueError(
                f"h_freq ({self.h_freq} Hz) is above the Nyquist frequency of sfreq={self.sfreq} Hz "
                f"({self.sfreq / 2:g} Hz): lower h_freq or raise sfreq"
            )
        for name in ("maxwell_calibration", "maxwell_cross_talk"):
            value = getattr(self, name)
            if value is not None and not Path(value).is_file():
                raise FileNotFoundError(
                    f"preprocessing.{name} {value} does not exist; give the site's Maxwell file (e.g. sss_cal.dat / "
                    "ct_sparse.fif from the MEG system), or null to filter without it"
                )
        if self.resample_method not in ("polyphase", "fft"):
            raise ValueError(f"resample_method must be 'polyphase' or 'fft', got {self.resample_method!r}")
        if self.gradient_compensation not in (None, 0, 1, 2, 3):
            raise ValueError(f"gradient_compensation must be a CTF grade 0-3 or null, got {self.gradient_compensation}")
        if not 0 < self.bad_channel_alpha < 1:
            raise ValueError(f"bad_channel_alpha must lie in (0, 1), got {self.bad_channel_alpha}")
        if not 0 < self.bad_channel_max_outlier_fraction <= 1:
            raise ValueError(
                f"bad_channel_max_outlier_fraction must lie in (0, 1], got {self.bad_channel_max_outlier_fraction}"
            )


def gesd_outliers(values: np.ndarray, alpha: float = 0.05, max_outliers: int | None = None) -> np.ndarray:
    """Indices flagged by the generalized ESD test (Rosner 1983), two-sided.

    Used on the per-channel standard deviations, like osl-ephys `bad_channels`.
    """
    from scipy import stats

    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    if max_outliers is None:
        max_outliers = int(math.ceil(0.1 * n))
    remaining, index = values.copy(), np.arange(n)
    candidates, exceeded = [], []
    for i in range(1, min(max_outliers, n - 2) + 1):
        std = remaining.std(ddof=1)
        if std == 0:
            break
        deviation = np.abs(remaining - remaining.mean())
        j = int(np.argmax(deviation))
        n_left = n - i + 1
        t = stats.t.ppf(1 - alpha / (2 * n_left), n_left - 2)
        critical = (n_left - 1) * t / np.sqrt((n_left - 2 + t**2) * n_left)
        candidates.append(index[j])
        exceeded.append(deviation[j] / std > critical)
        remaining, index = np.delete(remaining, j), np.delete(index, j)
    n_outliers = max((k + 1 for k, flag in enumerate(exceeded) if flag), default=0)
    return np.array(sorted(candidates[:n_outliers]), dtype=np.int64)


def resolve_picks(raw, picks) -> list[str]:
    """Channel types to keep. "auto": MEG sensors (no reference coils) if any, else EEG."""
    present = set(raw.get_channel_types())
    if picks == "auto":
        meg = [t for t in ("mag", "grad") if t in present]
        if meg:
            return meg
        return [t for t in DATA_CHANNEL_TYPES if t in present]
    if isinstance(picks, str):
        picks = [picks]
    expanded = []
    for p in picks:
        expanded.extend(["mag", "grad"] if p == "meg" else [p])
    unknown = [p for p in expanded if p not in DATA_CHANNEL_TYPES]
    if unknown:
        raise ValueError(f"picks {unknown} are not data channel types {DATA_CHANNEL_TYPES}")
    return [p for p in expanded if p in present]


def apply_maxwell_filter(raw, st_duration: float = 10.0, *, calibration=None, cross_talk=None):
    """tSSS with bad-channel detection and cHPI movement compensation when available (spec 1.4).

    `calibration` / `cross_talk`: the site's fine-calibration and cross-talk files, used for both
    the bad-channel search and the filter (mne's defaults without them)."""
    import mne

    raw.del_proj()
    files = {"calibration": calibration, "cross_talk": cross_talk}
    # without a device-to-head transform (empty-room style files) the expansion is done in the device frame
    frame = {"coord_frame": "head" if raw.info["dev_head_t"] is not None else "meg"}
    noisy, flat = mne.preprocessing.find_bad_channels_maxwell(raw.copy().pick("meg"), **files, **frame, verbose="error")
    raw.info["bads"] = sorted(set(raw.info["bads"]) | set(noisy) | set(flat))
    head_pos = None
    try:
        amplitudes = mne.chpi.compute_chpi_amplitudes(raw, verbose="error")
        locs = mne.chpi.compute_chpi_locs(raw.info, amplitudes, verbose="error")
        head_pos = mne.chpi.compute_head_pos(raw.info, locs, verbose="error")
    except Exception:  # no or unusable cHPI: filter without movement compensation
        head_pos = None
    st = st_duration if raw.times[-1] >= st_duration else None
    return mne.preprocessing.maxwell_filter(
        raw,
        head_pos=head_pos,
        destination=raw.info["dev_head_t"],
        st_duration=st,
        mag_scale="auto",
        **files,
        **frame,
        verbose="error",
    )


def _interpolate_bads(raw, mode: str) -> None:
    """mne interpolation; without head digitisation the sphere origin cannot be fitted, so use
    mne's usual default head centre instead."""
    try:
        raw.interpolate_bads(reset_bads=False, origin="auto", mode=mode, verbose="error")
    except RuntimeError as err:
        if "digitization" not in str(err):
            raise
        raw.interpolate_bads(reset_bads=False, origin=(0.0, 0.0, 0.04), mode=mode, verbose="error")


def _is_neuromag(raw) -> bool:
    from mne.io.constants import FIFF

    coil_types = {ch["coil_type"] for ch in raw.info["chs"]}
    return bool(
        coil_types
        & {
            FIFF.FIFFV_COIL_VV_PLANAR_T1,
            FIFF.FIFFV_COIL_VV_PLANAR_T2,
            FIFF.FIFFV_COIL_VV_PLANAR_T3,
            FIFF.FIFFV_COIL_VV_MAG_T3,
        }
    )


def preprocess_raw(raw, config: PreprocessingConfig, *, source: str = "recording"):
    """Filter, resample, pick channels and repair bad ones. Returns `(raw, notes)`.

    `notes` are human-readable remarks (skipped steps, detected bad channels) for the build
    summary. Problems that make the recording unusable raise ValueError naming `source`.
    """
    notes: list[str] = []
    if config.crop_seconds is not None and raw.times[-1] > config.crop_seconds:
        raw.crop(tmax=config.crop_seconds, include_tmax=False)
    raw.load_data(verbose="error")

    data_types = resolve_picks(raw, config.picks)
    if not data_types:
        raise ValueError(
            f"{source}: no channels of the picked types {config.picks!r} "
            f"(recording has {sorted(set(raw.get_channel_types()))})"
        )
    if config.montage and "eeg" in data_types:
        raw.set_montage(config.montage, on_missing="ignore", match_case=False, verbose="error")

    raw_data = raw.get_data(picks=data_types)
    if not np.isfinite(raw_data).all():
        bad = int((~np.isfinite(raw_data)).sum())
        raise ValueError(
            f"{source}: {bad} NaN/inf samples in the data channels; mne filters would "
            "spread them over the whole recording. Crop or repair the file first."
        )

    if config.maxwell:
        if _is_neuromag(raw):
            raw = apply_maxwell_filter(
                raw,
                config.maxwell_st_duration,
                calibration=config.maxwell_calibration,
                cross_talk=config.maxwell_cross_talk,
            )
        else:
            notes.append("maxwell skipped: not a Neuromag/MEGIN recording")
    if config.gradient_compensation is not None and raw.info["comps"]:
        raw.apply_gradient_compensation(config.gradient_compensation, verbose="error")

    nyquist = raw.info["sfreq"] / 2
    notch = [f for f in config.notch_freqs if f < nyquist]
    if len(notch) < len(config.notch_freqs):
        notes.append(
            f"notch at {sorted(set(config.notch_freqs) - set(notch))} Hz skipped: above Nyquist ({nyquist:g} Hz)"
        )
    h_freq = config.h_freq
    if h_freq is not None and h_freq >= nyquist:
        notes.append(f"low-pass at {h_freq:g} Hz skipped: at or above Nyquist ({nyquist:g} Hz)")
        h_freq = None

    def bandpass():
        if config.l_freq is not None or h_freq is not None:
            raw.filter(config.l_freq, h_freq, picks=data_types, phase=config.filter_phase, verbose="error")

    def notch_filter():
        if notch:
            raw.notch_filter(notch, picks=data_types, phase=config.filter_phase, verbose="error")

    for step in (notch_filter, bandpass) if config.notch_before_bandpass else (bandpass, notch_filter):
        step()
    if config.sfreq is not None and not np.isclose(raw.info["sfreq"], config.sfreq):
        raw.resample(config.sfreq, method=config.resample_method, verbose="error")

    raw.pick(data_types, exclude=[], verbose="error")
    bads = set(raw.info["bads"])
    data = raw.get_data()
    flat = [raw.ch_names[i] for i in np.flatnonzero(data.std(axis=1) <= 1e-30)]
    if flat:
        notes.append(f"{len(flat)} flat (zero-variance) channel(s) marked bad: {', '.join(flat[:8])}")
        bads |= set(flat)
    if config.detect_bad_channels:
        types = np.array(raw.get_channel_types())
        for ch_type in data_types:
            idx = np.flatnonzero((types == ch_type) & ~np.isin(raw.ch_names, list(bads)))
            if len(idx) < 3:
                continue
            max_outliers = int(math.ceil(config.bad_channel_max_outlier_fraction * len(idx)))
            outliers = gesd_outliers(data[idx].std(axis=1), config.bad_channel_alpha, max_outliers)
            found = [raw.ch_names[idx[i]] for i in outliers]
            if found:
                notes.append(f"GESD bad {ch_type} channel(s): {', '.join(found)}")
                bads |= set(found)
    raw.info["bads"] = sorted(bads)

    if len(bads) > config.max_bad_channel_fraction * len(raw.ch_names):
        raise ValueError(
            f"{source}: {len(bads)} of {len(raw.ch_names)} channels are bad "
            f"(> {config.max_bad_channel_fraction:.0%}; reference rule): {', '.join(sorted(bads)[:10])}"
        )
    if bads:
        action = config.bad_channel_action
        positions = np.array([raw.info["chs"][raw.ch_names.index(b)]["loc"][:3] for b in bads])
        unpositioned = ~np.isfinite(positions).all(axis=1) | (np.abs(np.nan_to_num(positions)).sum(axis=1) == 0)
        if action == "interpolate" and unpositioned.any():
            notes.append("bad channels dropped instead of interpolated: they have no positions")
            action = "drop"
        if action == "interpolate":
            _interpolate_bads(raw, config.interpolation_mode)
        elif action == "drop":
            raw.drop_channels(sorted(bads))
        # "interpolate"/"zero" keep info["bads"] as the record of what was repaired; the
        # pipeline zeroes the rows for "zero" after normalisation.
    return raw, notes
