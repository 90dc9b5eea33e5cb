"""Channel metadata of a recording: names, types, units, 3-D positions/orientations, 2-D layout.

Everything here is derived from `mne.Info` so that any reader mne supports gives the same fields.
Positions are in metres in the recording's own frame (device frame for MEG, head frame for EEG),
exactly as mne stores them in `info["chs"][i]["loc"]`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# FIFF unit codes -> readable SI units (mne keeps data in SI).
_UNIT_NAMES = {112: "T", 201: "T/m", 107: "V", 0: "", -1: ""}

# Channel types that carry brain signal and can be modelled. `ref_meg`, stim, misc... are not.
DATA_CHANNEL_TYPES = ("mag", "grad", "eeg", "seeg", "ecog", "dbs")


@dataclass
class ChannelMetadata:
    """Per-channel description kept with every segment (all arrays are row-aligned with names)."""

    names: list[str]
    types: list[str]
    units: list[str]
    pos_3d: np.ndarray  # (C, 3) float32, metres; zeros where the recording has no position
    ori_3d: np.ndarray  # (C, 3) float32, unit coil normals (zeros for EEG / unknown)
    pos_2d: np.ndarray  # (C, 2) float32, azimuthal projection of pos_3d (see `project_to_2d`)
    has_positions: np.ndarray = field(default=None)  # (C,) bool

    def __post_init__(self):
        n = len(self.names)
        if not (len(self.types) == len(self.units) == n):
            raise ValueError(
                f"channel metadata lengths differ: {n} names, {len(self.types)} types, {len(self.units)} units"
            )
        for key, width in (("pos_3d", 3), ("ori_3d", 3), ("pos_2d", 2)):
            value = np.asarray(getattr(self, key), dtype=np.float32)
            if value.shape != (n, width):
                raise ValueError(f"{key} must have shape ({n}, {width}), got {value.shape}")
            if not np.isfinite(value).all():
                raise ValueError(f"{key} contains NaN/inf; positions must be finite")
            setattr(self, key, value)
        if self.has_positions is None:
            self.has_positions = np.abs(self.pos_3d).sum(axis=1) > 0

    def __len__(self) -> int:
        return len(self.names)


def _fit_sphere_center(points: np.ndarray) -> np.ndarray:
    """Least-squares sphere centre: |p|^2 = 2 c.p + k is linear in (c, k)."""
    if len(points) < 4:
        return points.mean(axis=0)
    design = np.column_stack([2 * points, np.ones(len(points))])
    target = (points**2).sum(axis=1)
    solution, *_ = np.linalg.lstsq(design, target, rcond=None)
    return solution[:3]


def project_to_2d(pos_3d: np.ndarray) -> np.ndarray:
    """Azimuthal equidistant projection around the best-fitting sphere (as topomaps do).

    Depends only on the sensor geometry, so the same system always gives the same 2-D layout.
    Rows without a position (all zeros) stay at (0, 0).
    """
    pos_3d = np.asarray(pos_3d, dtype=np.float64)
    out = np.zeros((len(pos_3d), 2), dtype=np.float32)
    valid = np.abs(pos_3d).sum(axis=1) > 0
    if valid.sum() == 0:
        return out
    points = pos_3d[valid]
    unique = np.unique(points.round(6), axis=0)
    center = _fit_sphere_center(unique)
    direction = points - center
    radius = np.linalg.norm(direction, axis=1)
    radius[radius == 0] = 1.0
    polar = np.arccos(np.clip(direction[:, 2] / radius, -1.0, 1.0))
    azimuth = np.arctan2(direction[:, 1], direction[:, 0])
    out[valid] = np.column_stack([polar * np.cos(azimuth), polar * np.sin(azimuth)])
    return out


def _clean_name(name: str) -> str:
    """`MEG 0113` == `MEG0113`; CTF `MLC11-2805` == `MLC11` (the layout files' spelling)."""
    return name.split("-")[0].replace(" ", "").upper()


def layout_positions_2d(info, pos_3d: np.ndarray) -> np.ndarray:
    """2-D positions like the reference: mne's system layout (`find_layout`) for MEG when every
    channel is in it (it separates the sensors of one Neuromag site), else `project_to_2d`."""
    import mne

    types = set(info.get_channel_types())
    if types and types <= {"mag", "grad"}:
        try:
            layout = mne.channels.find_layout(info)
        except Exception:  # no matching system layout: use the projection
            layout = None
        if layout is not None:
            lookup = {_clean_name(n): i for i, n in enumerate(layout.names)}
            rows = [lookup.get(_clean_name(n)) for n in info["ch_names"]]
            if all(r is not None for r in rows):
                centres = layout.pos[rows, :2] + layout.pos[rows, 2:4] / 2
                return centres.astype(np.float32)
    return project_to_2d(pos_3d)


def _channel_unit(ch: dict) -> str:
    unit = int(ch["unit"])
    return _UNIT_NAMES.get(unit, str(unit))


def channel_metadata(info, *, missing_positions: str = "error", source: str = "recording") -> ChannelMetadata:
    """Read names, types, units, positions and orientations from an `mne.Info`.

    `missing_positions`: "error" raises a ValueError naming the channels without a 3-D position;
    "zeros" keeps them at the origin (the canonical layout then matches them by name).
    """
    if missing_positions not in ("error", "zeros"):
        raise ValueError(f"missing_positions must be 'error' or 'zeros', got {missing_positions!r}")
    types = info.get_channel_types()
    loc = np.array([ch["loc"] for ch in info["chs"]], dtype=np.float64).reshape(len(types), -1)
    pos = loc[:, :3]
    missing = ~np.isfinite(pos).all(axis=1) | (np.abs(np.nan_to_num(pos)).sum(axis=1) == 0)
    if missing.any():
        names = [info["ch_names"][i] for i in np.flatnonzero(missing)]
        if missing_positions == "error":
            shown = ", ".join(names[:8]) + (" ..." if len(names) > 8 else "")
            raise ValueError(
                f"{source}: {len(names)} of {len(types)} channels have no 3-D position ({shown}). "
                "Set a montage on the raw (e.g. mne.channels.make_standard_montage), or set "
                "preprocessing.montage / preprocessing.missing_positions='zeros' to keep them."
            )
    pos = np.where(missing[:, None], 0.0, np.nan_to_num(pos))
    ori = np.nan_to_num(loc[:, 9:12]) if loc.shape[1] >= 12 else np.zeros_like(pos)
    is_meg = np.array([t in ("mag", "grad", "ref_meg") for t in types])
    ori = np.where(is_meg[:, None], ori, 0.0)
    norm = np.linalg.norm(ori, axis=1, keepdims=True)
    ori = np.divide(ori, norm, out=np.zeros_like(ori), where=norm > 0)
    return ChannelMetadata(
        names=list(info["ch_names"]),
        types=list(types),
        units=[_channel_unit(ch) for ch in info["chs"]],
        pos_3d=pos.astype(np.float32),
        ori_3d=ori.astype(np.float32),
        pos_2d=layout_positions_2d(info, pos),
        has_positions=~missing,
    )
