"""The whole path on every real recording in ../shared/data/real (FIF, CTF, EEGLAB, EDF):
read -> preprocess -> clean -> Parquet shards -> reload (map-style and streaming) -> windows."""

import uuid

import numpy as np
import pytest

from tests.conftest import REPO_ROOT, SHARED, require_shared

datasets = pytest.importorskip("datasets")

from brain_gen_hf.data.config import BuildConfig  # noqa: E402
from brain_gen_hf.data.shards import build_dataset  # noqa: E402
from brain_gen_hf.data.windows import load_window_datasets  # noqa: E402

REAL = SHARED / "data" / "real"
# (file, expected channel types, expected channel count after picking)
RECORDINGS = [
    ("neuromag/141027_cropped_90Hz_raw.fif", {"mag", "grad"}, 306),
    ("neuromag/sample_audvis_trunc_raw_sss.fif", {"mag", "grad"}, 306),
    ("ctf/testdata_ctf_short_discontinuous.ds", {"mag"}, 273),
    ("eeg/test_raw.set", {"eeg"}, 32),
    ("eeg/test_reduced.edf", {"eeg"}, 138),  # bad channels zeroed, not dropped
]
# Recordings are 1-10 s long (EEGLAB: cropped to 20 s): small cleaning windows and segments.
SHORT = {
    # zero-phase filters and zeroed bad channels keep this fast; the reference defaults
    # (minimum phase, interpolation) run in test_reference_defaults_on_neuromag.
    "preprocessing": {
        "crop_seconds": 20.0,
        "missing_positions": "zeros",
        "filter_phase": "zero",
        "bad_channel_action": "zero",
    },
    "cleaning": {"window_seconds": 0.5, "min_segment_seconds": 0.5, "std_threshold": 3.0, "max_bad_pct": 50.0},
    "splits": {"val_ratio": 0.0, "test_ratio": 0.0},
}


@pytest.mark.parametrize("relative, types, n_channels", RECORDINGS, ids=[r[0].split("/")[-1] for r in RECORDINGS])
def test_real_recording_full_path(relative, types, n_channels, tmp_path):
    path = require_shared(REAL / relative)
    out = tmp_path / f"real_{uuid.uuid4().hex[:8]}"
    report = build_dataset([f"real={path}"], out, BuildConfig.from_dict(SHORT), progress=False)
    assert not report.failed, report.failed
    ds = datasets.load_dataset(str(out), split="train")
    row = ds[0]
    assert set(row["ch_types"]) == types and row["n_channels"] == n_channels
    assert row["sfreq"] == 100.0 and len(row["ch_units"]) == n_channels
    pos = np.asarray(row["pos_3d"])
    assert pos.shape == (n_channels, 3) and np.isfinite(pos).all()
    if types != {"eeg"}:  # MEG: real device positions and unit coil normals
        assert np.all(np.abs(pos).sum(axis=1) > 0)
        np.testing.assert_allclose(np.linalg.norm(np.asarray(row["ori_3d"]), axis=1), 1.0, atol=1e-5)
    windows = load_window_datasets(str(out), example_seconds=0.25, overlap_seconds=0.1)["train"]
    streamed = list(load_window_datasets(str(out), example_seconds=0.25, overlap_seconds=0.1, streaming=True)["train"])
    assert len(windows) == len(streamed) > 0
    np.testing.assert_array_equal(windows[len(windows) - 1]["signal"], streamed[-1]["signal"])
    assert windows[0]["signal"].shape == (n_channels, 25) and windows[0]["signal"].dtype == np.float32


def test_reference_defaults_on_neuromag(tmp_path):
    """Reference parameters (minimum-phase 1-50 Hz, 50 Hz notch, 100 Hz, GESD + interpolation)."""
    path = require_shared(REAL / "neuromag" / "141027_cropped_90Hz_raw.fif")
    config = BuildConfig.from_dict(
        {
            "cleaning": {"window_seconds": 1.0, "min_segment_seconds": 2.0},
            "splits": {"val_ratio": 0.0, "test_ratio": 0.0},
        }
    )
    report = build_dataset([str(path)], tmp_path / f"ref_{uuid.uuid4().hex[:8]}", config, progress=False)
    assert not report.failed, report.failed
    notes = " ".join(report.notes.get(str(path), []))
    assert "notch at [50.0] Hz skipped" in notes and "low-pass at 50 Hz skipped" in notes  # 90 Hz recording


def test_one_second_recording_is_too_short_for_reference_cleaning(tmp_path):
    path = require_shared(REAL / "neuromag" / "sample_audvis_trunc_raw_sss.fif")
    config = BuildConfig.from_dict({"preprocessing": {"filter_phase": "zero", "bad_channel_action": "zero"}})
    from brain_gen_hf.data.shards import DatasetBuilder

    report = DatasetBuilder(tmp_path / "short", config).build([str(path)], progress=False, finalize=False)
    message = report.failed[str(path)]
    assert str(path) in message and "too_short" in message
    assert "shorter than one cleaning window of 5 s" in message
    # the message names the real key and the config that fits
    assert "(cleaning.window_seconds)" in message and "session_cleaning" not in message
    assert "--config training_scripts/configs/preprocess_short_recordings.yaml" in message


def test_short_recordings_config_accepts_every_real_recording(tmp_path):
    """The config the README and the rejection messages point to really builds every file here."""
    paths = [require_shared(REAL / relative) for relative, _, _ in RECORDINGS]
    config = BuildConfig.from_yaml(REPO_ROOT / "training_scripts" / "configs" / "preprocess_short_recordings.yaml")
    report = build_dataset([str(p) for p in paths], tmp_path / f"short_{uuid.uuid4().hex[:8]}", config, progress=False)
    assert not report.failed, report.failed
    assert sorted(report.processed) == sorted(map(str, paths))
