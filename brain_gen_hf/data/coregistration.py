"""Head-to-template coregistration for MRI-less source reconstruction (spec 1.5.2 steps 1-5).

The recording's digitisation (fiducials + head-shape points) is fitted to a template head
(fsaverage by default) with `mne.coreg.Coregistration`; a quality check on the trimmed distances
between the head-shape points and the template scalp decides whether the fit is usable. When it
is not, a uniformly scaled copy of the template (`mne.scale_mri`) is fitted instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

MIN_HEAD_SHAPE_POINTS = 8  # fewer: fiducials only, no ICP and no scaled fallback
HAIR_MM = 5.0  # `set_grow_hair` takes millimetres
OMIT_COARSE_M = 0.03
OMIT_FINE_M = 0.02
QC_MEDIAN_MAX_M = 0.012
QC_P95_MAX_M = 0.025
QC_TRIM_M = 0.02
QC_MAX_TRIM_FRACTION = 0.5


@dataclass
class CoregQuality:
    ok: bool
    reason: str = ""
    median_m: float = float("nan")
    p95_m: float = float("nan")
    trim_fraction: float = float("nan")

    def describe(self) -> str:
        if self.reason:
            return self.reason
        return (
            f"median {self.median_m * 1e3:.1f} mm (max {QC_MEDIAN_MAX_M * 1e3:g}), "
            f"p95 {self.p95_m * 1e3:.1f} mm (max {QC_P95_MAX_M * 1e3:g}), "
            f"{self.trim_fraction:.0%} of points beyond {QC_TRIM_M * 1e3:g} mm (max {QC_MAX_TRIM_FRACTION:.0%})"
        )


@dataclass
class Coregistration:
    subject: str  # the template actually used (fsaverage or a scaled copy)
    trans: object  # mne.transforms.Transform head -> MRI
    quality: CoregQuality
    notes: list[str]


def head_digitisation(info, *, source: str = "recording"):
    """(nasion, lpa, rpa, head-shape points or None) in head coordinates from `info["dig"]`.

    Head-shape points are the EXTRA points, or the EEG electrode positions when there are none.
    Raises ValueError when the recording has no digitisation or lacks a fiducial."""
    from mne.io.constants import FIFF

    fix = (
        "source-space projection needs a head digitisation (Polhemus fiducials and head-shape points) "
        "to place the template anatomy; use recordings that have one, or set source_space.enabled: false"
    )
    points = [d for d in (info["dig"] or []) if d["coord_frame"] == FIFF.FIFFV_COORD_HEAD]
    if not points:
        raise ValueError(f"{source}: the recording has no digitisation points in head coordinates; {fix}")
    cardinal = {d["ident"]: np.asarray(d["r"]) for d in points if d["kind"] == FIFF.FIFFV_POINT_CARDINAL}
    names = {FIFF.FIFFV_POINT_NASION: "nasion", FIFF.FIFFV_POINT_LPA: "LPA", FIFF.FIFFV_POINT_RPA: "RPA"}
    missing = [name for ident, name in names.items() if ident not in cardinal]
    if missing:
        raise ValueError(f"{source}: the digitisation lacks the fiducial(s) {', '.join(missing)}; {fix}")
    extra = [d["r"] for d in points if d["kind"] == FIFF.FIFFV_POINT_EXTRA]
    eeg = [d["r"] for d in points if d["kind"] == FIFF.FIFFV_POINT_EEG]
    shape = np.array(extra or eeg) if (extra or eeg) else None
    return (
        cardinal[FIFF.FIFFV_POINT_NASION],
        cardinal[FIFF.FIFFV_POINT_LPA],
        cardinal[FIFF.FIFFV_POINT_RPA],
        shape,
    )


def set_head_montage(raw, *, source: str = "recording") -> int:
    """Keep only the fiducials and head-shape points in the digitisation; returns the number of points."""
    import mne

    nasion, lpa, rpa, shape = head_digitisation(raw.info, source=source)
    montage = mne.channels.make_dig_montage(nasion=nasion, lpa=lpa, rpa=rpa, hsp=shape, coord_frame="head")
    raw.set_montage(montage, on_missing="ignore", verbose="error")
    return 0 if shape is None else len(shape)


def _fit_rigid(info, subject: str, subjects_dir, n_points: int):
    import mne

    coreg = mne.coreg.Coregistration(info, subject, subjects_dir=subjects_dir)
    coreg.fit_fiducials(verbose="error")
    if n_points >= MIN_HEAD_SHAPE_POINTS:
        # coarse then fine: a few far points must not dominate, the nasion of a template is approximate
        coreg.omit_head_shape_points(distance=OMIT_COARSE_M)
        coreg.fit_icp(n_iterations=10, nasion_weight=2.0, verbose="error")
        coreg.omit_head_shape_points(distance=OMIT_FINE_M)
        coreg.fit_icp(n_iterations=15, nasion_weight=10.0, verbose="error")
    return coreg.trans


def coregistration_quality(info, trans, subject: str, subjects_dir) -> CoregQuality:
    """Trimmed head-shape-to-scalp distances (frontal points excluded) against the thresholds."""
    import mne

    try:
        distances = np.asarray(
            mne.dig_mri_distances(
                info, trans, subject, subjects_dir=subjects_dir, exclude_frontal=True, verbose="error"
            )
        )
    except ValueError:  # mne found no usable points: nothing to judge the fit by (the reference accepts it)
        return CoregQuality(ok=True, reason="no head-shape points to check the fit against")
    if distances.size == 0:
        return CoregQuality(ok=False, reason="no digitisation points to check the fit against")
    keep = distances < QC_TRIM_M
    if not keep.any():
        return CoregQuality(ok=False, reason=f"every head-shape point is more than {QC_TRIM_M * 1e3:g} mm off")
    kept = distances[keep]
    median, p95, trimmed = float(np.median(kept)), float(np.percentile(kept, 95)), 1.0 - float(keep.mean())
    ok = median <= QC_MEDIAN_MAX_M and p95 <= QC_P95_MAX_M and trimmed <= QC_MAX_TRIM_FRACTION
    return CoregQuality(ok=ok, median_m=median, p95_m=p95, trim_fraction=trimmed)


def estimate_template_scale(info, subject: str, subjects_dir) -> float:
    """One uniform scale factor of the template head that best fits the head shape, to 2 decimals."""
    import mne

    coreg = mne.coreg.Coregistration(info, subject, subjects_dir=subjects_dir)
    coreg.set_grow_hair(HAIR_MM)
    coreg.set_scale_mode("uniform")
    coreg.fit_fiducials(verbose="error")
    coreg.omit_head_shape_points(distance=OMIT_COARSE_M)
    coreg.fit_icp(n_iterations=20, nasion_weight=2.0, verbose="error")
    coreg.omit_head_shape_points(distance=OMIT_FINE_M)
    coreg.fit_icp(n_iterations=20, nasion_weight=10.0, verbose="error")
    return round(float(np.mean(coreg.scale)), 2)


def scaled_template(subject: str, scale: float, subjects_dir) -> str:
    """Name of the template scaled by `scale`, created with `mne.scale_mri` the first time."""
    import mne

    name = f"{subject}_scale_{scale:.2f}"
    target = Path(subjects_dir) / name
    if target.is_dir():
        return name
    try:
        mne.scale_mri(subject, name, scale, subjects_dir=subjects_dir, annot=True, overwrite=False, verbose="error")
    except ImportError as err:
        raise ImportError(
            f"creating the scaled template {target} with mne.scale_mri needs nibabel for the template's "
            f"FreeSurfer files ({err}); pip install nibabel"
        ) from err
    except OSError:
        if not target.is_dir():  # another worker creating it at the same time is fine
            raise
    return name


def coregister_to_template(
    raw, subject: str, subjects_dir, *, allow_scaling: bool = True, source: str = "recording"
) -> Coregistration:
    """Rigid fit to `subject`; if its QC fails and there is head shape to go on, a scaled template
    (`allow_scaling`).

    Raises ValueError naming the QC numbers when no fit passes."""
    n_points = set_head_montage(raw, source=source)
    notes = []
    trans = _fit_rigid(raw.info, subject, subjects_dir, n_points)
    quality = coregistration_quality(raw.info, trans, subject, subjects_dir)
    used = subject
    if not quality.ok and allow_scaling and n_points >= MIN_HEAD_SHAPE_POINTS:
        scale = estimate_template_scale(raw.info, subject, subjects_dir)
        notes.append(f"coregistration to {subject} failed QC ({quality.describe()}); template scale {scale:.2f}")
        if abs(scale - 1.0) > 1e-3:
            used = scaled_template(subject, scale, subjects_dir)
            trans = _fit_rigid(raw.info, used, subjects_dir, n_points)
            quality = coregistration_quality(raw.info, trans, used, subjects_dir)
    if not quality.ok:
        raise ValueError(
            f"{source}: coregistration to the template {used} is poor ({quality.describe()}); the head "
            f"digitisation ({n_points} head-shape points) does not fit the template head: check the "
            "digitisation, or leave this recording out"
        )
    notes.append(f"coregistered to {used}: {quality.describe()}")
    return Coregistration(used, trans, quality, notes)
