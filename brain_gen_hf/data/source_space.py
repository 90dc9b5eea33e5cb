"""Sensor data -> parcel time courses on a template anatomy (spec 1.5.2, reference `source_space_proj`).

Coregistration to the template (see `coregistration.py`), a single-shell BEM forward model, an
ad-hoc noise covariance, a dSPM inverse with loose (0.2) normal orientation, label time courses
of the parcellation (aparc: 68 parcels, sorted by name, `unknown`/`corpuscallosum` dropped),
a linear detrend per parcel and a 2-D layout of the parcels (PCA of their centroids). Every step
is an mne call.

The template lives in `subjects_dir/<subject>` (FreeSurfer layout). Each asset is read from a
precomputed mne file when one is there, else built from the FreeSurfer surfaces:
- source space: `bem/<subject>-<spacing>-src.fif` (e.g. `fsaverage-ico-5-src.fif`, which
  `mne.datasets.fetch_fsaverage` downloads), else `mne.setup_source_space` on `surf/?h.white`;
- BEM: `mne.make_bem_model` on `bem/inner_skull.surf`, else the surface in
  `bem/<subject>-inner_skull-bem.fif` at its own resolution;
- parcels: `label/?h.<parc>.annot`, else one mne label file per parcel, `label/?h.<parc>.<name>.label`;
- head: `bem/<subject>-head.fif` and fiducials `bem/<subject>-fiducials.fif` (for coregistration).
FreeSurfer files (`.surf`, `.white`, `.annot`) are read by mne with nibabel.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .channels import ChannelMetadata

PARCEL_TYPE = "parcel"
DROPPED_LABELS = ("unknown", "corpuscallosum")
INVERSE_METHODS = ("dSPM", "MNE", "sLORETA", "eLORETA")
LABEL_MODES = ("mean_flip", "pca_flip", "mean", "max")


@dataclass
class SourceSpaceConfig:
    """The `source_space` section of a build config. Defaults reproduce the reference (spec 1.5.2)."""

    enabled: bool = False
    subjects_dir: str | None = None  # FreeSurfer subjects folder; null: $SUBJECTS_DIR / mne's SUBJECTS_DIR config
    subject: str = "fsaverage"
    fetch_template: bool = False  # download fsaverage with mne.datasets.fetch_fsaverage (needs the network)
    parcellation: str = "aparc"
    spacing: str = "ico5"
    bem_ico: int | None = 4  # downsampling of the inner-skull surface (make_bem_model); null keeps it
    conductivity: float = 0.3  # single-shell BEM (S/m)
    mindist_mm: float = 3.0
    snr: float = 3.0  # lambda2 = 1 / snr^2
    method: str = "dSPM"
    loose: float = 0.2
    depth: float | None = 0.8
    label_mode: str = "mean_flip"
    chunk_seconds: float | None = 60.0  # inverse applied per chunk (memory); the result does not depend on it
    detrend: bool = True
    sfreq: float | None = None  # resample the parcel time courses (resample_poly); null keeps the rate
    scaled_template_fallback: bool = True

    def __post_init__(self):
        if self.method not in INVERSE_METHODS:
            raise ValueError(f"source_space.method must be one of {INVERSE_METHODS}, got {self.method!r}")
        if self.label_mode not in LABEL_MODES:
            raise ValueError(f"source_space.label_mode must be one of {LABEL_MODES}, got {self.label_mode!r}")
        if not 0 <= self.loose <= 1:
            raise ValueError(f"source_space.loose must lie in [0, 1], got {self.loose}")
        for name in ("conductivity", "snr", "chunk_seconds", "sfreq"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"source_space.{name} must be positive, got {value}")
        if self.mindist_mm < 0:
            raise ValueError(f"source_space.mindist_mm must be >= 0, got {self.mindist_mm}")
        if self.bem_ico is not None and self.bem_ico not in (1, 2, 3, 4, 5, 6, 7):
            raise ValueError(f"source_space.bem_ico must be an icosahedron order 1-7 or null, got {self.bem_ico}")
        if not self.subject or "/" in self.subject:
            raise ValueError(f"source_space.subject must be a subject folder name, got {self.subject!r}")


@dataclass
class ParcelRecording:
    data: np.ndarray  # (n_parcels, T) float64
    sfreq: float
    channels: ChannelMetadata
    decimate: int  # sensor samples per parcel sample (events are mapped with it)
    notes: list[str] = field(default_factory=list)


def _spacing_name(spacing: str) -> str:
    """mne's file-name form of a spacing: ico5 -> ico-5, oct6 -> oct-6."""
    for prefix in ("ico", "oct"):
        if spacing.startswith(prefix) and spacing[len(prefix) :].isdigit():
            return f"{prefix}-{spacing[len(prefix) :]}"
    return spacing


def resolve_subjects_dir(config: SourceSpaceConfig) -> Path:
    """The subjects folder holding the template; fetches fsaverage first when the config asks to."""
    import mne

    subjects_dir = config.subjects_dir or os.environ.get("SUBJECTS_DIR") or mne.get_config("SUBJECTS_DIR")
    if config.fetch_template:
        if config.subject != "fsaverage":
            raise ValueError(f"source_space.fetch_template downloads fsaverage only, not {config.subject!r}")
        try:
            fetched = mne.datasets.fetch_fsaverage(subjects_dir, verbose="error")
        except Exception as err:  # network or disk: name what was attempted
            raise OSError(
                f"mne.datasets.fetch_fsaverage({subjects_dir!r}) failed ({type(err).__name__}: {err}); without "
                "network access, copy an fsaverage folder into source_space.subjects_dir and set fetch_template: false"
            ) from err
        return Path(fetched).parent
    if subjects_dir is None:
        raise OSError(
            "source_space.subjects_dir is not set (nor $SUBJECTS_DIR): set it to the FreeSurfer subjects folder "
            f"that holds {config.subject!r}, or set source_space.fetch_template: true to download fsaverage"
        )
    return Path(subjects_dir)


def template_problems(subjects_dir: Path, config: SourceSpaceConfig, subject: str | None = None) -> list[str]:
    """What the template `subject` lacks for the projection (empty: complete)."""
    subject = subject or config.subject
    root = Path(subjects_dir) / subject
    if not root.is_dir():
        return [f"the template folder {root}"]
    bem, surf, label = root / "bem", root / "surf", root / "label"
    parc, hemis = config.parcellation, ("lh", "rh")
    wanted = {
        "a head surface (bem/<subject>-head.fif)": [bem / f"{subject}-head.fif", bem / f"{subject}-head-dense.fif"],
        "fiducials (bem/<subject>-fiducials.fif)": [bem / f"{subject}-fiducials.fif"],
    }
    problems = [what for what, paths in wanted.items() if not any(p.is_file() for p in paths)]
    src_file = bem / f"{subject}-{_spacing_name(config.spacing)}-src.fif"
    if not src_file.is_file() and not all((surf / f"{h}.white").is_file() for h in hemis):
        problems.append(f"a source space ({src_file.name}, or surf/lh.white + surf/rh.white)")
    if not (bem / "inner_skull.surf").is_file() and not (bem / f"{subject}-inner_skull-bem.fif").is_file():
        problems.append(f"an inner-skull surface (bem/inner_skull.surf or bem/{subject}-inner_skull-bem.fif)")
    annots = all((label / f"{h}.{parc}.annot").is_file() for h in hemis)
    if not annots and not any(label.glob(f"?h.{parc}.*.label")):
        problems.append(f"the parcellation {parc!r} (label/lh.{parc}.annot + rh, or label/?h.{parc}.<name>.label)")
    return problems


def check_template(config: SourceSpaceConfig) -> Path:
    """The subjects folder, after checking the template is complete. Raises OSError naming what is missing."""
    subjects_dir = resolve_subjects_dir(config)
    problems = template_problems(subjects_dir, config)
    if problems:
        raise FileNotFoundError(
            f"source-space template {config.subject!r} in {subjects_dir} is incomplete: missing "
            f"{'; '.join(problems)}. Point source_space.subjects_dir at a folder holding a complete "
            f"{config.subject} (mne.datasets.fetch_fsaverage downloads one; fetch_template: true does it for you)"
        )
    return subjects_dir


def _needs_nibabel(what: str, path: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("nibabel") is None:
        raise ImportError(f"mne reads the FreeSurfer file {path} ({what}) with nibabel: pip install nibabel")


@functools.lru_cache(maxsize=8)
def template_assets(subjects_dir: str, subject: str, spacing: str, bem_ico, conductivity: float, parc: str):
    """(source space, BEM solution, parcels) of a template, computed once per process."""
    import mne

    root = Path(subjects_dir) / subject
    src_file = root / "bem" / f"{subject}-{_spacing_name(spacing)}-src.fif"
    if src_file.is_file():
        src = mne.read_source_spaces(src_file, verbose="error")
    else:
        _needs_nibabel("cortical surface", root / "surf" / "lh.white")
        src = mne.setup_source_space(
            subject, spacing=spacing, subjects_dir=subjects_dir, add_dist=False, verbose="error"
        )
    if (root / "bem" / "inner_skull.surf").is_file():
        _needs_nibabel("inner skull", root / "bem" / "inner_skull.surf")
        model = mne.make_bem_model(
            subject, ico=bem_ico, conductivity=[conductivity], subjects_dir=subjects_dir, verbose="error"
        )
    else:
        model = mne.read_bem_surfaces(root / "bem" / f"{subject}-inner_skull-bem.fif", verbose="error")[:1]
        model[0]["sigma"] = conductivity
    bem = mne.make_bem_solution(model, verbose="error")
    return src, bem, tuple(template_parcels(root, parc))


def template_parcels(root: Path, parc: str) -> list:
    """Parcels of a template, sorted by name, without `unknown` and `corpuscallosum`."""
    import mne

    label_dir = root / "label"
    if all((label_dir / f"{h}.{parc}.annot").is_file() for h in ("lh", "rh")):
        _needs_nibabel("parcellation", label_dir / f"lh.{parc}.annot")
        labels = mne.read_labels_from_annot(root.name, parc=parc, subjects_dir=root.parent, verbose="error")
    else:
        labels = []
        for path in sorted(label_dir.glob(f"?h.{parc}.*.label")):
            hemi = path.name[:2]
            label = mne.read_label(path, subject=root.name)
            label.name = f"{path.name[len(f'{hemi}.{parc}.') : -len('.label')]}-{hemi}"
            labels.append(label)
    labels = [lab for lab in labels if not any(word in lab.name.lower() for word in DROPPED_LABELS)]
    return sorted(labels, key=lambda lab: lab.name)


def parcel_centroids(labels, src) -> np.ndarray:
    """(n_labels, 3) mean position of each label's source-space vertices (its hemisphere's mean if none)."""
    centroids = []
    for label in labels:
        hemi = {"lh": 0, "rh": 1}.get(label.hemi)
        if hemi is None:
            raise ValueError(f"parcel {label.name} has hemisphere {label.hemi!r}; expected lh or rh")
        space = src[hemi]
        used = np.intersect1d(space["vertno"], label.vertices)
        points = space["rr"][used] if len(used) else space["rr"][space["vertno"]]
        centroids.append(points.mean(axis=0))
    return np.asarray(centroids, dtype=np.float64)


def parcel_layout_2d(centroids: np.ndarray) -> np.ndarray:
    """Project centroids on their two principal axes, each scaled to [0, 1] (reference ROI layout).

    Each axis is oriented so that its loading on the first (x: left-right) coordinate is positive."""
    centred = centroids - centroids.mean(axis=0, keepdims=True)
    _, _, axes = np.linalg.svd(centred, full_matrices=False)
    axes = axes[:2] * np.sign(axes[:2, :1] + (axes[:2, :1] == 0))  # fix the SVD's sign freedom: +x loading
    coords = centred @ axes.T
    low, span = coords.min(axis=0), np.ptp(coords, axis=0)
    return np.divide(coords - low, span, out=np.zeros_like(coords), where=span > 0)


def parcel_channels(labels, src) -> ChannelMetadata:
    """Channel metadata of the parcels: label names, type `parcel`, centroid (template MRI frame), 2-D layout."""
    centroids = parcel_centroids(labels, src)
    n = len(labels)
    return ChannelMetadata(
        names=[lab.name for lab in labels],
        types=[PARCEL_TYPE] * n,
        units=[""] * n,  # dSPM values are unitless (noise-normalised)
        pos_3d=centroids,
        ori_3d=np.zeros((n, 3)),
        pos_2d=parcel_layout_2d(centroids),
    )


def _label_time_courses(raw, inverse, labels, src, config: SourceSpaceConfig) -> np.ndarray:
    """Label time courses, the inverse applied chunk by chunk (label modes other than pca_flip are
    per-sample, so chunking does not change them)."""
    import mne
    from mne.minimum_norm import apply_inverse_raw, prepare_inverse_operator

    lambda2 = 1.0 / config.snr**2
    prepared = prepare_inverse_operator(inverse, nave=1, lambda2=lambda2, method=config.method, verbose="error")
    n_times = raw.n_times
    step = n_times
    if config.chunk_seconds is not None and config.label_mode != "pca_flip":
        step = max(1, int(round(config.chunk_seconds * raw.info["sfreq"])))
    parts = []
    for start in range(0, n_times, step):
        stc = apply_inverse_raw(
            raw,
            prepared,
            lambda2,
            method=config.method,
            pick_ori="normal",
            start=start,
            stop=min(start + step, n_times),
            prepared=True,
            verbose="error",
        )
        parts.append(mne.extract_label_time_course(stc, list(labels), src, mode=config.label_mode, verbose="error"))
    return np.concatenate(parts, axis=1)


def project_to_parcels(raw, config: SourceSpaceConfig, *, source: str = "recording") -> ParcelRecording:
    """Parcel time courses of a preprocessed MEG recording (its bad channels are left out of the inverse)."""
    import mne

    with mne.use_log_level("error"):  # Coregistration and friends log without a verbose argument
        return _project(raw, config, source)


def _project(raw, config: SourceSpaceConfig, source: str) -> ParcelRecording:
    import mne
    from scipy import signal

    from .coregistration import coregister_to_template

    if not {"mag", "grad"} & set(raw.get_channel_types()):
        raise ValueError(
            f"{source}: source-space projection needs MEG channels (single-shell BEM forward model); the "
            f"recording has {sorted(set(raw.get_channel_types()))}: set source_space.enabled: false for EEG"
        )
    subjects_dir = check_template(config)
    subject, notes = config.subject, []
    raw = raw.copy().pick(["mag", "grad"], exclude=[])
    coreg = coregister_to_template(
        raw, subject, subjects_dir, allow_scaling=config.scaled_template_fallback, source=source
    )
    notes += coreg.notes
    if coreg.subject != subject:
        problems = template_problems(subjects_dir, config, coreg.subject)
        if problems:
            raise FileNotFoundError(f"scaled template {subjects_dir / coreg.subject} lacks {'; '.join(problems)}")
    src, bem, labels = template_assets(
        str(subjects_dir), coreg.subject, config.spacing, config.bem_ico, config.conductivity, config.parcellation
    )
    forward = mne.make_forward_solution(
        raw.info, coreg.trans, src, bem, meg=True, eeg=False, mindist=config.mindist_mm, verbose="error"
    )
    noise_cov = mne.make_ad_hoc_cov(raw.info, verbose="error")
    inverse = mne.minimum_norm.make_inverse_operator(
        raw.info, forward, noise_cov, loose=config.loose, depth=config.depth, rank="info", verbose="error"
    )
    data = _label_time_courses(raw, inverse, labels, forward["src"], config)
    if config.detrend:
        data = signal.detrend(data, axis=1, type="linear")
    sfreq = float(raw.info["sfreq"])
    out_sfreq = sfreq
    if config.sfreq is not None and not np.isclose(config.sfreq, sfreq):
        rate_in, rate_out = int(round(sfreq)), int(round(config.sfreq))
        gcd = math.gcd(rate_in, rate_out)
        data = signal.resample_poly(data, rate_out // gcd, rate_in // gcd, axis=1, padtype="line")
        out_sfreq = float(config.sfreq)
    n_sources = sum(len(s["vertno"]) for s in forward["src"])
    notes.append(
        f"source space: {len(labels)} parcels of {config.parcellation} on {coreg.subject}, {n_sources} sources, "
        f"{config.method}"
    )
    return ParcelRecording(
        data=np.ascontiguousarray(data, dtype=np.float64),
        sfreq=out_sfreq,
        channels=parcel_channels(labels, src),
        decimate=max(1, int(sfreq / out_sfreq)),
        notes=notes,
    )
