"""Unit tests of the data pipeline pieces that need no recordings: splits, windows, cleaning,
normalisation, bad-channel statistics, layouts, collators, configs and the CLI."""

import random
import subprocess
import sys

import numpy as np
import pytest

from brain_gen_hf.data.cleaning import CleaningConfig, clean_recording
from brain_gen_hf.data.config import BuildConfig
from brain_gen_hf.data.layouts import build_canonical_layout
from brain_gen_hf.data.normalization import NormalizationConfig, normalize_recording
from brain_gen_hf.data.preprocessing import gesd_outliers
from brain_gen_hf.data.splits import SplitConfig, assign_splits, split_items
from brain_gen_hf.data.windows import WindowConfig, build_window_index, window_starts


# -- splits -------------------------------------------------------------------------------------
def _recordings(n_datasets=2, n_subjects=5, n_sessions=2):
    return [
        (f"ds{d}", f"sub-{s:02d}_ses-{k}", f"sub-{s:02d}")
        for d in range(n_datasets)
        for s in range(n_subjects)
        for k in range(n_sessions)
    ]


def test_split_items_matches_reference_semantics():
    assert split_items([], 0.1, 0.1, random.Random(0)) == ([], [], [])
    assert split_items(["a"], 0.5, 0.5, random.Random(0)) == (["a"], [], [])  # lone item trains
    train, val, test = split_items(list(range(10)), 0.25, 0.25, random.Random(42))
    # banker's rounding: round(2.5) == 2
    assert (len(train), len(val), len(test)) == (6, 2, 2)
    expected = list(range(10))
    random.Random(42).shuffle(expected)
    assert train + val + test == expected


@pytest.mark.parametrize("strategy", ["session", "subject"])
def test_splits_deterministic_disjoint_complete(strategy):
    recordings = _recordings()
    config = SplitConfig(strategy=strategy, val_ratio=0.2, test_ratio=0.2, seed=7)
    first = assign_splits(recordings, config)
    # listing order within a dataset does not matter (dataset order does, as in the reference)
    relisted = [r for d in ("ds0", "ds1") for r in reversed([x for x in recordings if x[0] == d])]
    assert first == assign_splits(relisted, config)
    assert set(first) == {(d, s) for d, s, _ in recordings}
    assert first != assign_splits(recordings, SplitConfig(strategy=strategy, val_ratio=0.2, test_ratio=0.2, seed=8))
    if strategy == "subject":  # no subject leaks across splits
        split_of_subject = {}
        for d, s, subject in recordings:
            assert split_of_subject.setdefault((d, subject), first[(d, s)]) == first[(d, s)]


def test_dataset_strategy_holds_out_subjects_half_and_half():
    recordings = _recordings(n_datasets=2, n_subjects=4)
    assignment = assign_splits(recordings, SplitConfig(strategy="dataset", heldout_dataset="ds1", seed=3))
    assert {assignment[(d, s)] for d, s, _ in recordings if d == "ds0"} == {"train"}
    held = {}
    for d, s, subject in recordings:
        if d == "ds1":
            held.setdefault(assignment[(d, s)], set()).add(subject)
    assert set(held) == {"validation", "test"} and len(held["validation"]) == len(held["test"]) == 2
    assert not held["validation"] & held["test"]
    with pytest.raises(KeyError, match="heldout_dataset"):
        assign_splits(recordings, SplitConfig(strategy="dataset", heldout_dataset="nope"))


def test_split_config_validation():
    with pytest.raises(ValueError, match="strategy"):
        SplitConfig(strategy="random")
    with pytest.raises(ValueError, match="heldout_dataset"):
        SplitConfig(strategy="dataset")
    with pytest.raises(ValueError, match="sum to at most 1"):
        SplitConfig(val_ratio=0.7, test_ratio=0.5)


# -- windows ------------------------------------------------------------------------------------
def test_window_lengths_and_errors():
    assert WindowConfig(10.24, 5.0).lengths(100.0) == (1024, 524)
    assert WindowConfig(61.44, 30.0).lengths(100.0) == (6144, 3144)
    with pytest.raises(ValueError, match="zero-length"):
        WindowConfig(0.001, 0.0).lengths(100.0)
    with pytest.raises(ValueError, match="overlap"):
        WindowConfig(1.0, 1.0).lengths(100.0)


def test_window_index_stays_inside_segments_in_order():
    n_samples = np.array([10, 8, 12, 3])
    index = build_window_index(n_samples, 5, 3)
    counts = {row: int((index[:, 0] == row).sum()) for row in range(4)}
    assert counts == {0: 2, 1: 2, 2: 3, 3: 0}
    assert np.all(index[:, 1] + 5 <= n_samples[index[:, 0]])  # never crosses a segment end
    assert np.all(np.diff(index[:, 0]) >= 0)
    for row in range(3):
        np.testing.assert_array_equal(index[index[:, 0] == row, 1], window_starts(int(n_samples[row]), 5, 3))


# -- cleaning and normalisation -------------------------------------------------------------------
def test_cleaning_drops_noisy_windows_and_segments():
    rng = np.random.default_rng(0)
    data = rng.standard_normal((4, 1000)).astype(np.float32) * 0.5
    data[:, 300:400] *= 20  # window 3 is bad
    result = clean_recording(data, 100.0, CleaningConfig(window_seconds=1.0, min_segment_seconds=2.0, max_bad_pct=20.0))
    assert result.summary.bad_windows == 1 and not result.summary.discarded
    assert [s.shape[1] for s in result.segments] == [300, 600]
    assert all(np.abs(s).max() <= 10 for s in result.segments)


def test_cleaning_says_clearly_when_recording_is_too_short():
    result = clean_recording(np.zeros((2, 50), np.float32), 100.0, CleaningConfig(window_seconds=5.0))
    assert result.summary.discard_reason == "too_short"
    assert "0.50 s long, shorter than one cleaning window of 5 s" in result.summary.message
    noisy = np.random.default_rng(0).standard_normal((2, 1000)) * 10
    result = clean_recording(noisy, 100.0, CleaningConfig(window_seconds=1.0))
    assert result.summary.discard_reason == "too_many_bad_windows"


def test_robust_normalisation_statistics_invert():
    rng = np.random.default_rng(1)
    data = rng.standard_normal((3, 2000)) * np.array([[1e-12], [2e-11], [5.0]]) + 3.0
    out, stats = normalize_recording(data, NormalizationConfig(clip_std_factor=None))
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.median(out, axis=1), 0, atol=1e-5)
    np.testing.assert_allclose(np.percentile(out, 75, axis=1) - np.percentile(out, 25, axis=1), 1, rtol=1e-4)
    np.testing.assert_allclose(stats.invert(out.astype(np.float64)), data, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="flat"):
        normalize_recording(np.zeros((2, 10)), NormalizationConfig(), source="x.fif")


def test_gesd_finds_outlying_channel_std():
    stds = np.r_[np.random.default_rng(0).normal(1.0, 0.05, 50), 3.0, 0.0]
    assert set(gesd_outliers(stds).tolist()) == {50, 51}
    assert gesd_outliers(np.ones(20)).size == 0


# -- layouts and collators -------------------------------------------------------------------------
def _row(dataset, session, names, positions, sfreq=100.0, ch_type="mag"):
    positions = np.asarray(positions, dtype=np.float32)
    return {
        "dataset": dataset,
        "session": session,
        "sfreq": sfreq,
        "ch_names": names,
        "ch_types": [ch_type] * len(names),
        "pos_3d": positions,
        "ori_3d": np.zeros_like(positions),
        "pos_2d": positions[:, :2],
    }


def test_layout_union_by_position_and_type():
    square = [[0.1, 0, 0.05], [0, 0.1, 0.05], [-0.1, 0, 0.05], [0, -0.1, 0.05]]
    a = _row("A", "s1", ["a0", "a1", "a2", "a3"], square)
    b = _row("B", "s1", ["b0", "b1", "b9"], [square[0], square[1], [0, 0, 0.12]])  # 2 shared sensors, renamed
    c = _row("C", "s1", ["c0"], [square[0]], ch_type="grad")  # same position, other type
    layout = build_canonical_layout([a, b, c])
    assert len(layout) == 6
    np.testing.assert_array_equal(layout.indices_for("B", "s1"), [0, 1, 4])
    assert layout.names[0] == "a0" and layout.types[5] == "grad"
    parcels = [
        {**_row("P", "s", ["bankssts-lh", "bankssts-rh"], np.zeros((2, 3))), "ch_types": ["parcel"] * 2},
        {**_row("Q", "s", ["bankssts-rh"], np.ones((1, 3))), "ch_types": ["parcel"]},
    ]
    layout = build_canonical_layout(parcels)  # parcels merge by name whatever their positions
    assert len(layout) == 2 and layout.indices_for("Q", "s").tolist() == [1]
    with pytest.raises(ValueError, match="sampling rate"):
        build_canonical_layout([a, _row("D", "s", ["d"], [square[0]], sfreq=200.0)])


def test_collators_shapes_dtypes_and_masks():
    torch = pytest.importorskip("torch")
    from brain_gen_hf.data.collators import ContinuousCollator, ImageCollator, MuLawCollator, grid_indices

    square = [[0.1, 0, 0.05], [0, 0.1, 0.05], [-0.1, 0, 0.05], [0, -0.1, 0.05]]
    layout = build_canonical_layout([_row("A", "s", ["a", "b", "c", "d"], square)])
    mask = np.array([True, True, False, True])
    signal = np.random.default_rng(0).standard_normal((4, 16)).astype(np.float32)
    signal[~mask] = 0
    items = [{"signal": signal, "channel_mask": mask}] * 3
    batch = ContinuousCollator(layout, positions="3d")(items)
    assert batch["input_values"].shape == (3, 4, 16) and batch["input_values"].dtype == torch.float32
    assert batch["pos"].shape == (3, 4, 6) and batch["sensor_type"].dtype == torch.int64
    tokens = MuLawCollator()(items)
    assert tokens["input_ids"].shape == (3, 4, 15) and tokens["input_ids"].dtype == torch.int64
    assert int(tokens["input_ids"].min()) >= 0 and int(tokens["input_ids"].max()) <= 255
    assert torch.equal(tokens["labels"][:, 2], torch.full((3, 15), -100))
    row, col = grid_indices(layout.pos_2d, 8)
    assert row.min() >= 0 and row.max() <= 7 and len(set(zip(row, col))) == 4
    image = ImageCollator(layout, image_size=8)
    out = image(items)
    assert out["input_values"].shape == (3, 8, 8, 16)
    torch.testing.assert_close(image.from_image(out["input_values"]), torch.from_numpy(np.stack([signal] * 3)))
    quantized = ImageCollator(layout, image_size=8, quantize=True)(items)
    assert quantized["input_ids"].shape == (3, 8, 8, 15)


# -- config and CLI -------------------------------------------------------------------------------
def test_build_config_from_dict_validates():
    config = BuildConfig.from_dict({"cleaning": {"clip_range": [-5, 5]}, "splits": {"strategy": "subject"}})
    assert config.cleaning.clip_range == (-5.0, 5.0) and config.splits.strategy == "subject"
    assert BuildConfig.from_dict(config.to_dict()).to_dict() == config.to_dict()
    with pytest.raises(ValueError, match="unknown build config keys"):
        BuildConfig.from_dict({"cleanin": {}})
    with pytest.raises(ValueError, match="unknown keys"):
        BuildConfig.from_dict({"cleaning": {"window": 3}})
    with pytest.raises(ValueError, match="l_freq"):
        BuildConfig.from_dict({"preprocessing": {"l_freq": 60, "h_freq": 50}})


def test_cli_import_is_cheap_and_parses_preprocess():
    code = (
        "import sys, brain_gen_hf.cli as c; heavy = [m for m in ('torch', 'mne', 'datasets') if m in sys.modules];"
        "assert not heavy, heavy; p = c.build_parser();"
        "a = p.parse_args(['preprocess', 'x.fif', 'y/', '--output', 'o', '--push-to-hub', 'u/r']);"
        "assert a.inputs == ['x.fif', 'y/'] and a.push_to_hub == 'u/r' and a.func is c.run_preprocess"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
