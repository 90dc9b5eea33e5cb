"""Small SIMULATED MEG datasets built once per test session through the real pipeline."""

from __future__ import annotations

from pathlib import Path

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


PARQUET_DAMAGE = ("truncated", "zeroed", "garbled pages")


def damage_parquet(path: Path, how: str) -> None:
    """Damage a Parquet file in place, as a failed copy or a bad disk would (`how` in PARQUET_DAMAGE)."""
    import numpy as np

    payload = bytearray(Path(path).read_bytes())
    if how == "truncated":
        payload = payload[: len(payload) // 2]
    elif how == "zeroed":
        payload = bytearray(len(payload))
    elif how == "garbled pages":  # the footer survives, the data pages do not
        payload[100 : len(payload) // 2] = np.random.default_rng(0).bytes(len(payload) // 2 - 100)
    else:
        raise ValueError(f"unknown damage {how!r}")
    Path(path).write_bytes(bytes(payload))
