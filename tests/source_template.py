"""A tiny offline template anatomy for source-space tests, in the files `data/source_space.py` reads.

fsaverage's head, fiducials and inner skull ship with mne (mne/data/fsaverage); the cortex is two
small ellipsoids ("hemispheres") inside the inner skull, each cut into 4 parcels by quadrant, plus an
`unknown` parcel the projection must drop. Everything is written as mne FIF / label files, so no
FreeSurfer reader (nibabel) is needed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

PARCELS = ("occipital", "parietal", "temporal", "frontal")  # by (anterior, superior) quadrant


def _outward(points: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """Triangles of a star-shaped closed surface, wound so that their normals point outwards."""
    a, b, c = (points[tris[:, i]] for i in range(3))
    normal = np.cross(b - a, c - a)
    inward = (normal * ((a + b + c) / 3 - points.mean(axis=0))).sum(axis=1) < 0
    tris = tris.copy()
    tris[inward] = tris[inward][:, [0, 2, 1]]
    return tris


def _sphere_points(n: int) -> np.ndarray:
    """n nearly uniform unit vectors (Fibonacci sphere)."""
    i = np.arange(n) + 0.5
    polar, azimuth = np.arccos(1 - 2 * i / n), np.pi * (1 + 5**0.5) * i
    return np.c_[np.cos(azimuth) * np.sin(polar), np.sin(azimuth) * np.sin(polar), np.cos(polar)]


def hemisphere_spaces(center: np.ndarray, subject: str, n_sources: int):
    """Two surface source-space dicts (lh, rh) with outward normals, in the MRI frame."""
    from mne.io.constants import FIFF
    from scipy.spatial import ConvexHull

    unit = _sphere_points(n_sources)
    tris = _outward(unit, ConvexHull(unit).simplices)
    radii = np.array([0.025, 0.05, 0.035])
    spaces = []
    for sign, space_id in ((-1, FIFF.FIFFV_MNE_SURF_LEFT_HEMI), (1, FIFF.FIFFV_MNE_SURF_RIGHT_HEMI)):
        rr = center + np.array([sign * 0.03, -0.01, 0.01]) + unit * radii
        nn = unit / radii
        nn /= np.linalg.norm(nn, axis=1, keepdims=True)
        spaces.append(
            dict(
                type="surf",
                id=space_id,
                np=n_sources,
                ntri=len(tris),
                coord_frame=FIFF.FIFFV_COORD_MRI,
                rr=rr,
                nn=nn,
                tris=tris,
                nuse=n_sources,
                inuse=np.ones(n_sources, dtype=np.int64),
                vertno=np.arange(n_sources),
                nuse_tri=len(tris),
                use_tris=tris,
                nearest=None,
                nearest_dist=None,
                pinfo=None,
                patch_inds=None,
                dist=None,
                dist_limit=None,
                subject_his_id=subject,
            )
        )
    return spaces, unit


def build_template(subjects_dir: Path, subject: str = "fsaverage", *, n_sources: int = 150, n_bem: int = 162) -> Path:
    """Write the template into `subjects_dir/subject`; returns its folder."""
    import mne
    from mne.io.constants import FIFF
    from scipy.spatial import ConvexHull

    shipped = Path(mne.__file__).parent / "data" / "fsaverage"
    root = Path(subjects_dir) / subject
    for folder in ("bem", "label", "surf", "mri"):  # surf/ and mri/ stay empty (mne.scale_mri lists them)
        (root / folder).mkdir(parents=True, exist_ok=True)
    shutil.copy(shipped / "fsaverage-head.fif", root / "bem" / f"{subject}-head.fif")
    shutil.copy(shipped / "fsaverage-fiducials.fif", root / "bem" / f"{subject}-fiducials.fif")
    inner = mne.read_bem_surfaces(shipped / "fsaverage-inner_skull-bem.fif", verbose="error")[0]
    center = inner["rr"].mean(axis=0)
    points = inner["rr"][:n_bem]  # a coarse subset, re-triangulated through the centre
    tris = _outward(points, ConvexHull((points - center) / np.linalg.norm(points - center, axis=1)[:, None]).simplices)
    coarse = dict(
        id=FIFF.FIFFV_BEM_SURF_ID_BRAIN,
        sigma=0.3,
        rr=points,
        tris=tris,
        np=len(points),
        ntri=len(tris),
        coord_frame=FIFF.FIFFV_COORD_MRI,
    )
    mne.write_bem_surfaces(root / "bem" / f"{subject}-inner_skull-bem.fif", [coarse], overwrite=True, verbose="error")
    spaces, unit = hemisphere_spaces(center, subject, n_sources)
    mne.write_source_spaces(root / "bem" / f"{subject}-ico-5-src.fif", mne.SourceSpaces(spaces), verbose="error")
    quadrant = (unit[:, 1] > 0).astype(int) * 2 + (unit[:, 2] > 0).astype(int)
    for hemi, space in zip(("lh", "rh"), spaces):
        for k, name in enumerate(PARCELS):
            vertices = np.flatnonzero(quadrant == k)
            label = mne.Label(vertices, pos=space["rr"][vertices], hemi=hemi, name=name, subject=subject)
            label.save(root / "label" / f"{hemi}.aparc.{name}.label")
        unknown = mne.Label(np.arange(3), pos=space["rr"][:3], hemi=hemi, name="unknown", subject=subject)
        unknown.save(root / "label" / f"{hemi}.aparc.unknown.label")
    return root


def parcel_names() -> list[str]:
    return sorted(f"{name}-{hemi}" for name in PARCELS for hemi in ("lh", "rh"))
