"""Sensor-layout H/W positions for the 3-D RoPE (brain-gen's `layout_path`).

With a layout, the (h, w) RoPE ids of a grid cell are not its row and column in the reduced grid but the sensor's
2-D position: the positions are normalised per axis to [0, 1] (a constant axis maps to 0) and rounded onto a
`grid_size x grid_size` raster (brain-gen: 32); the h id is the rounded y, the w id the rounded x. Entry s of
the layout belongs to spatial cell s of the flattened (H', W') grid, so a layout has H' * W' entries. The time id
is unchanged (`index // (H' * W')`).

The positions are config data (`rope_layout_positions`); `load_sensor_positions` reads brain-gen's `.npy` file
without unpickling.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch

from ...configuration_utils import require


def load_sensor_positions(path: str | os.PathLike) -> list[list[float]]:
    """A `(n, 2)` float array from an `.npy` (read with `allow_pickle=False`) or a JSON list of [x, y] pairs."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise OSError(f"sensor layout file {path!r} does not exist")
    if path.endswith(".json"):
        import json

        with open(path, encoding="utf-8") as handle:
            positions = np.asarray(json.load(handle), dtype=np.float64)
    else:
        try:
            positions = np.load(path, allow_pickle=False)
        except ValueError as error:
            raise OSError(
                f"sensor layout {path!r} is not a plain numeric .npy array (object arrays are never unpickled): {error}"
            ) from error
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim != 2 or positions.shape[1] < 2:
        raise ValueError(f"sensor layout {path!r} must hold (n, 2) x/y positions, got shape {positions.shape}")
    # brain-gen reads the first two columns (x, y) of a layout.
    return positions[:, :2].tolist()


def check_rope_layout_positions(positions, spatial_cells: int, grid_size: int) -> list[list[float]] | None:
    """Validate `rope_layout_positions` against the H' * W' cells of the RoPE grid; returns them as float lists."""
    if positions is None:
        return None
    require(
        isinstance(grid_size, int) and not isinstance(grid_size, bool) and grid_size > 1,
        f"`rope_layout_grid_size` must be an integer > 1, got {grid_size!r}",
    )
    require(
        isinstance(positions, (list, tuple)) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in positions),
        "`rope_layout_positions` must be a list of [x, y] pairs (use load_sensor_positions(path) for a layout file)",
    )
    values = [[float(x), float(y)] for x, y in positions]
    require(
        all(math.isfinite(v) for pair in values for v in pair),
        "`rope_layout_positions` must be finite numbers",
    )
    require(
        len(values) == spatial_cells,
        f"`rope_layout_positions` has {len(values)} entries but the RoPE grid has {spatial_cells} spatial cells "
        "(H' * W'); one position per cell is needed",
    )
    return values


def sensor_rows_cols(positions: list[list[float]], grid_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer (row, col) raster ids of every layout entry: row from y, col from x."""
    pos = np.asarray(positions, dtype=np.float32)
    low, span = pos.min(axis=0), pos.max(axis=0) - pos.min(axis=0)
    span[span == 0] = 1.0
    unit = (pos - low) / span
    raster = np.round(unit * (grid_size - 1)).astype(np.int64)
    return torch.from_numpy(raster[:, 1].copy()), torch.from_numpy(raster[:, 0].copy())


def layout_position_ids(
    rows: torch.Tensor,
    cols: torch.Tensor,
    grid: tuple[int, int, int],
    start: int,
    length: int,
    batch_size: int,
    device: torch.device | None = None,
) -> torch.Tensor:
    """`(3, B, length)` (t, sensor row, sensor col) ids of flattened grid cells `[start, start + length)`."""
    T, H, W = grid
    if start < 0 or start + length > T * H * W:
        raise ValueError(
            f"positions {start}:{start + length} exceed the {T * H * W} cells of the token grid "
            f"{tuple(grid)}; shorten the context or enlarge it with `resize_context()`"
        )
    index = torch.arange(start, start + length, device=device)
    cell = index % (H * W)
    ids = torch.stack([index // (H * W), rows.to(device)[cell], cols.to(device)[cell]])
    return ids.unsqueeze(1).expand(3, batch_size, length)
