"""Gaussian-interpolated sensor images against values computed by hand from the formulas (pipeline spec §2.8)."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from brain_gen_hf.data.gaussian_sensor_images import (
    GaussianSensorImageCollator,
    GaussianSensorImages,
    median_nearest_neighbour,
)

# Two channels at opposite corners of a 3x3 grid: pixels (0, 0) and (2, 2), 2*sqrt(2) apart.
CORNERS = np.array([[0.0, 0.0], [1.0, 1.0]])
SIGMA = 0.75 * 2 * math.sqrt(2)  # sigma_scale * median nearest-neighbour distance


def test_kernel_width_from_the_layout():
    images = GaussianSensorImages(CORNERS, image_size=3)
    assert (images.row_idx.tolist(), images.col_idx.tolist()) == ([0, 2], [0, 2])
    assert images.sigma == pytest.approx(SIGMA)
    assert images.r_max == pytest.approx(4 * SIGMA)
    # Channels closer than a pixel (or on the same pixel) never shrink the kernel below one pixel.
    assert median_nearest_neighbour(np.array([[0, 0], [0, 0], [5, 5]])) == 1.0
    assert median_nearest_neighbour(np.array([[0, 0], [0, 3], [4, 3]])) == 3.0  # nearest: 3, 3, 4 -> median 3


def test_images_are_normalised_gaussian_averages():
    images = GaussianSensorImages(CORNERS, image_size=3)
    signal = torch.tensor([[1.0, 2.0], [3.0, -1.0]])  # (C, T)
    frames = images.signal_to_images(signal)
    assert frames.shape == (2, 3, 3)
    near, far = 1.0, math.exp(-8 / (2 * SIGMA**2))  # d^2 = 0 and 8 from pixel (0, 0)
    expected = (1.0 * near + 3.0 * far) / (near + far)
    assert frames[0, 0, 0].item() == pytest.approx(expected, rel=1e-6)
    # The centre and the off-diagonal corners are equidistant from both channels: the plain mean.
    for row, col in ((1, 1), (0, 2), (2, 0)):
        assert frames[1, row, col].item() == pytest.approx((2.0 - 1.0) / 2, abs=1e-6)
    batched = images.signal_to_images(signal[None].expand(3, -1, -1))
    torch.testing.assert_close(batched, frames[None].expand(3, -1, -1, -1))


def test_cut_off_radius_and_read_back():
    images = GaussianSensorImages(CORNERS, image_size=3, r_max_factor=1.0)  # r_max^2 = sigma^2 = 4.5
    signal = torch.tensor([[1.0], [3.0]])
    frame = images.signal_to_images(signal)[0]
    assert frame[0, 0].item() == pytest.approx(1.0)  # the far channel (d^2 = 8 > 4.5) is cut off
    assert frame[2, 2].item() == pytest.approx(3.0)
    assert frame[1, 1].item() == pytest.approx(2.0)  # d^2 = 2 from both
    # Read-back of channel 0: the kernel-weighted mean over the pixels it reaches (d^2 <= 4.5 from (0, 0)).
    weights = {(r, c): math.exp(-(r * r + c * c) / (2 * SIGMA**2)) for r in range(3) for c in range(3)}
    weights = {p: w for p, w in weights.items() if p[0] ** 2 + p[1] ** 2 <= SIGMA**2}
    expected = sum(w * frame[p].item() for p, w in weights.items()) / sum(weights.values())
    back = images.images_to_signal(frame[None])
    assert back.shape == (2, 1)
    assert back[0, 0].item() == pytest.approx(expected, rel=1e-6)


def test_collator_builds_videos_and_normalises_windows():
    layout = SimpleNamespace(pos_2d=CORNERS)
    items = [{"signal": np.array([[1.0, 2.0, 3.0], [3.0, 5.0, 7.0]], dtype=np.float32)}] * 2
    batch = GaussianSensorImageCollator(layout, image_size=3)(items)
    assert list(batch) == list(GaussianSensorImageCollator.model_inputs) == ["input_values"]
    assert batch["input_values"].shape == (2, 1, 3, 3, 3)
    normalised = GaussianSensorImageCollator(layout, image_size=3, r_max_factor=1.0, normalize=True)(items)
    values = np.array([1.0, 2.0, 3.0, 3.0, 5.0, 7.0])
    z = (values - values.mean()) / values.std(ddof=1)
    assert normalised["input_values"][0, 0, 0, 0, 0].item() == pytest.approx(z[0], rel=1e-5)  # channel 0, t = 0


def test_bad_layouts_and_shapes_raise():
    with pytest.raises(ValueError, match=r"\(C, 2\)"):
        GaussianSensorImages(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="NaN"):
        GaussianSensorImages(np.array([[0.0, np.nan], [1.0, 1.0]]))
    images = GaussianSensorImages(CORNERS, image_size=3)
    with pytest.raises(ValueError, match="signal must be"):
        images.signal_to_images(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="images must be"):
        images.images_to_signal(torch.zeros(2, 4, 4))
