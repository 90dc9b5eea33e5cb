"""SIMULATED MEG for demos and long tests: not brain data.

A Neuromag/MEGIN VectorView-like helmet (102 sites x (1 magnetometer + 2 planar gradiometers),
names and site layout from mne's bundled `Vectorview-all` layout, placed on a sphere in the
device frame) observes a few smooth spatial source patterns driven by 1/f (pink) noise, plus a
posterior alpha rhythm with waxing and waning amplitude, optional line noise and white sensor
noise. Units are SI (T for magnetometers, T/m for gradiometers), like real mne recordings.
Everything is deterministic given `seed`; nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

SIMULATED_DESCRIPTION = "SIMULATED MEG (brain_gen_hf.data.simulate): synthetic signal, not a brain recording"


@dataclass
class SimulationConfig:
    duration_seconds: float = 60.0
    sfreq: float = 200.0
    n_sources: int = 16
    pink_exponent: float = 1.0  # power ~ 1/f^exponent
    alpha_frequency: float = 10.0
    alpha_relative_amplitude: float = 0.8
    line_frequency: float | None = 50.0
    line_relative_amplitude: float = 0.2
    sensor_noise_relative: float = 0.1
    magnetometer_rms: float = 2e-13  # T (~200 fT)
    gradiometer_rms: float = 3e-12  # T/m (~30 fT/cm)
    helmet_radius: float = 0.11  # m
    seed: int = 0

    def __post_init__(self):
        if self.duration_seconds <= 0 or self.sfreq <= 0:
            raise ValueError("duration_seconds and sfreq must be positive")
        if self.n_sources < 1:
            raise ValueError("n_sources must be >= 1")


def vectorview_info(sfreq: float, helmet_radius: float = 0.11):
    """`mne.Info` with 306 VectorView-like channels, geometry from mne's bundled layout."""
    import mne
    from mne.io.constants import FIFF

    layout = mne.channels.read_layout("Vectorview-all")
    centres = layout.pos[:, :2] + layout.pos[:, 2:] / 2
    sites: dict[str, list[int]] = {}
    for i, name in enumerate(layout.names):
        sites.setdefault(name.replace(" ", "")[:-1], []).append(i)
    site_xy = np.array([centres[idx].mean(axis=0) for idx in sites.values()])
    site_xy = (site_xy - site_xy.mean(axis=0)) / np.abs(site_xy - site_xy.mean(axis=0)).max()
    # Layout radius -> polar angle on the helmet sphere (up to ~100 degrees from the vertex).
    radius = np.linalg.norm(site_xy, axis=1)
    polar = radius * np.deg2rad(100)
    azimuth = np.arctan2(site_xy[:, 1], site_xy[:, 0])
    normal = np.column_stack([np.sin(polar) * np.cos(azimuth), np.sin(polar) * np.sin(azimuth), np.cos(polar)])
    names, types, locs = [], [], []
    for (_site, members), ez in zip(sites.items(), normal):
        ex = np.cross([0.0, 0.0, 1.0], ez)
        ex = ex / np.linalg.norm(ex) if np.linalg.norm(ex) > 1e-9 else np.array([1.0, 0.0, 0.0])
        ey = np.cross(ez, ex)
        position = helmet_radius * ez
        for i in sorted(members, key=lambda k: layout.names[k]):
            name = layout.names[i].replace(" ", "")
            is_mag = name.endswith("1")
            # Gradiometer ...2 measures along ex, ...3 along ey (planar pair at one site).
            axes = (ex, ey, ez) if is_mag or name.endswith("2") else (ey, -ex, ez)
            names.append(name)
            types.append("mag" if is_mag else "grad")
            locs.append(np.concatenate([position, *axes]))
    info = mne.create_info(names, sfreq, types)
    for ch, loc, ch_type in zip(info["chs"], locs, types):
        ch["loc"][:] = loc
        ch["coil_type"] = FIFF.FIFFV_COIL_VV_MAG_T3 if ch_type == "mag" else FIFF.FIFFV_COIL_VV_PLANAR_T1
    info["description"] = SIMULATED_DESCRIPTION  # a field mne lets users set directly
    return info


def _pink_noise(rng, n_series: int, n_samples: int, sfreq: float, exponent: float) -> np.ndarray:
    spectrum = rng.standard_normal((n_series, n_samples // 2 + 1)) + 1j * rng.standard_normal(
        (n_series, n_samples // 2 + 1)
    )
    freqs = np.fft.rfftfreq(n_samples, 1 / sfreq)
    freqs[0] = freqs[1]
    series = np.fft.irfft(spectrum / freqs ** (exponent / 2), n=n_samples, axis=1)
    return series / series.std(axis=1, keepdims=True)


def simulate_meg_raw(config: SimulationConfig | None = None, **overrides):
    """A SIMULATED 306-channel MEG `mne.io.RawArray` (see module docstring)."""
    import mne

    config = config or SimulationConfig(**overrides)
    if config and overrides:
        config = SimulationConfig(**{**config.__dict__, **overrides})
    rng = np.random.default_rng(config.seed)
    info = vectorview_info(config.sfreq, config.helmet_radius)
    n_samples = int(round(config.duration_seconds * config.sfreq))
    times = np.arange(n_samples) / config.sfreq
    loc = np.array([ch["loc"] for ch in info["chs"]])
    positions, normals = loc[:, :3], loc[:, 9:12]

    # Smooth spatial patterns: each source drives nearby sensors (Gaussian falloff over ~4 cm).
    source_dirs = rng.standard_normal((config.n_sources, 3))
    source_dirs[:, 2] = np.abs(source_dirs[:, 2])
    source_pos = 0.07 * source_dirs / np.linalg.norm(source_dirs, axis=1, keepdims=True)
    distance = np.linalg.norm(positions[:, None, :] - source_pos[None], axis=2)
    gain = np.exp(-(distance**2) / (2 * 0.04**2)) * rng.choice([-1.0, 1.0], size=(1, config.n_sources))
    sources = _pink_noise(rng, config.n_sources, n_samples, config.sfreq, config.pink_exponent)

    # Alpha: posterior sources (negative y in the device frame), amplitude waxing and waning.
    posterior = np.exp(-(np.linalg.norm(positions - np.array([0.0, -0.09, 0.03]), axis=1) ** 2) / (2 * 0.07**2))
    envelope = 1 + 0.8 * _pink_noise(rng, 1, n_samples, config.sfreq, 3.0)[0].clip(-1.2, 1.2)
    phase_jitter = np.cumsum(rng.normal(0, 0.02, n_samples))
    alpha = envelope * np.sin(2 * np.pi * config.alpha_frequency * times + phase_jitter)
    signal = gain @ sources + config.alpha_relative_amplitude * posterior[:, None] * alpha[None]
    if config.line_frequency and config.line_frequency < config.sfreq / 2:
        line_gain = 1 + 0.3 * normals[:, 2:3]
        signal += config.line_relative_amplitude * line_gain * np.sin(2 * np.pi * config.line_frequency * times)
    signal += config.sensor_noise_relative * rng.standard_normal(signal.shape)

    types = np.array(info.get_channel_types())
    for ch_type, rms in (("mag", config.magnetometer_rms), ("grad", config.gradiometer_rms)):
        rows = types == ch_type
        signal[rows] *= rms / signal[rows].std()
    raw = mne.io.RawArray(signal, info, verbose="error")
    return raw


def write_simulated_recordings(
    folder, n_subjects: int = 2, n_sessions: int = 1, *, seed: int = 0, **config_overrides
) -> list[Path]:
    """Write SIMULATED recordings as `sub-simXX/ses-YY/meg/sub-simXX_ses-YY_task-rest_meg.fif`."""
    folder = Path(folder)
    paths = []
    for subject in range(1, n_subjects + 1):
        for session in range(1, n_sessions + 1):
            sub, ses = f"sub-sim{subject:02d}", f"ses-{session:02d}"
            path = folder / sub / ses / "meg" / f"{sub}_{ses}_task-rest_meg.fif"
            path.parent.mkdir(parents=True, exist_ok=True)
            raw = simulate_meg_raw(seed=seed + 1000 * subject + session, **config_overrides)
            raw.save(path, overwrite=True, verbose="error")
            paths.append(path)
    return paths
