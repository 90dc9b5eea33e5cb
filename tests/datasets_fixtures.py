"""Small SIMULATED MEG datasets built once per test session through the real pipeline."""

from __future__ import annotations

import pytest

# Three 20 s simulated recordings, magnetometers only, 100 Hz: train + validation windows in seconds.
TINY_BUILD = {
    "dataset_name": "simulated-tiny",
    "preprocessing": {"picks": "mag", "detect_bad_channels": False},
    "cleaning": {"min_segment_seconds": 5.0},
    "splits": {"strategy": "session", "val_ratio": 0.34, "test_ratio": 0.0, "seed": 0},
}


@pytest.fixture(scope="session")
def tiny_meg_dataset(tmp_path_factory):
    from brain_gen_hf.data.config import BuildConfig
    from brain_gen_hf.data.shards import build_dataset
    from brain_gen_hf.data.simulate import write_simulated_recordings

    root = tmp_path_factory.mktemp("tiny_meg")
    write_simulated_recordings(root / "raw", n_subjects=3, n_sessions=1, duration_seconds=20.0, sfreq=200.0)
    build_dataset([str(root / "raw")], root / "dataset", BuildConfig.from_dict(TINY_BUILD), progress=False)
    return root / "dataset"
