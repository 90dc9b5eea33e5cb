"""Building datasets from SIMULATED recordings: round trips, resumability, bad inputs, Hub push."""

import json
import uuid

import numpy as np
import pytest

datasets = pytest.importorskip("datasets")
mne = pytest.importorskip("mne")

from brain_gen_hf.data.config import BuildConfig  # noqa: E402
from brain_gen_hf.data.shards import DatasetBuilder, build_dataset, push_dataset_to_hub  # noqa: E402
from brain_gen_hf.data.simulate import SIMULATED_DESCRIPTION, simulate_meg_raw, write_simulated_recordings  # noqa: E402
from brain_gen_hf.data.windows import StreamingWindowDataset, WindowDataset, load_window_datasets  # noqa: E402

SMALL = {
    # zero-phase filters and zeroed bad channels: the reference's minimum-phase design and MEG
    # interpolation cost seconds per file, which short test recordings do not need.
    "preprocessing": {"filter_phase": "zero", "bad_channel_action": "zero"},
    "cleaning": {"window_seconds": 1.0, "min_segment_seconds": 2.0, "std_threshold": 3.0},
    "splits": {"val_ratio": 0.34, "test_ratio": 0.34, "seed": 1},
    "card": {"license": "cc-by-4.0"},
}


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("simulated")
    write_simulated_recordings(folder, n_subjects=3, duration_seconds=8.0, sfreq=200.0)
    return folder


@pytest.fixture(scope="module")
def built(sim_dir, tmp_path_factory):
    # a unique folder name: datasets 5.2 caches load_dataset(folder) under the folder name only
    out = tmp_path_factory.mktemp("built") / f"ds_{uuid.uuid4().hex[:8]}"
    report = build_dataset([f"simulated={sim_dir}"], out, BuildConfig.from_dict(SMALL), progress=False)
    return out, report


def test_simulator_is_labelled_and_realistic():
    raw = simulate_meg_raw(duration_seconds=20.0, sfreq=200.0)
    assert raw.info["description"] == SIMULATED_DESCRIPTION
    assert raw.get_channel_types().count("grad") == 204 and raw.get_channel_types().count("mag") == 102
    psd = raw.compute_psd(picks="mag", fmin=2, fmax=40, verbose="error")
    peak = psd.freqs[np.argmax(psd.get_data().mean(axis=0))]
    assert 8 <= peak <= 12  # alpha peak over a 1/f background
    assert 1e-14 < raw.get_data(picks="mag").std() < 1e-11  # tesla scale


def test_build_round_trips_through_load_and_streaming(built):
    out, report = built
    assert not report.failed and len(report.processed) == 3
    assert set(report.splits) == {"train", "validation", "test"}
    ds = datasets.load_dataset(str(out))
    row = ds["train"][0]
    assert row["dataset"] == "simulated" and row["subject"].startswith("sub-sim") and row["task"] == "rest"
    assert row["sfreq"] == 100.0 and len(row["ch_names"]) == 306 and len(row["norm_scale"]) == 306
    assert np.asarray(row["data"], dtype=np.float32).shape == (306, row["n_samples"])
    assert ds["train"].features["data"].feature.feature.dtype == "float32"
    sessions = {split: set(ds[split]["session"]) for split in ds}
    assert sum(len(s) for s in sessions.values()) == 3 and not (sessions["train"] & sessions["test"])

    windows = load_window_datasets(str(out), example_seconds=1.0, overlap_seconds=0.5)
    streamed = load_window_datasets(str(out), example_seconds=1.0, overlap_seconds=0.5, streaming=True)
    for split in ds:
        mapped = windows[split]
        items = list(streamed[split])
        assert len(items) == len(mapped) > 0
        for i in (0, len(mapped) // 2, len(mapped) - 1):
            np.testing.assert_array_equal(items[i]["signal"], mapped[i]["signal"])
            assert (items[i]["start"], mapped[i]["start"]) == (mapped[i]["start"], items[i]["start"])
        n_samples = np.asarray(ds[split]["n_samples"])
        assert np.all(mapped.index[:, 1] + mapped.length <= n_samples[mapped.index[:, 0]])
        np.testing.assert_array_equal(mapped.index, WindowDataset(ds[split], 1.0, 0.5, layout=mapped.layout).index)
    # save_to_disk / load_from_disk keeps the same windows
    ds["train"].save_to_disk(str(out.parent / "saved"))
    reloaded = WindowDataset(datasets.load_from_disk(str(out.parent / "saved")), 1.0, 0.5)
    np.testing.assert_array_equal(reloaded[3]["signal"], windows["train"][3]["signal"])


def test_dataset_card_lists_sources_parameters_and_hours(built):
    out, report = built
    card = (out / "README.md").read_text()
    assert "license: cc-by-4.0" in card and "data/train-*.parquet" in card
    assert "std_threshold: 3.0" in card and "Simulated data" in card
    assert f"{report.splits['train']['hours']:.4f}" in card
    assert "not** applied" in card  # source space left out, said so


def test_rerun_resumes_and_interrupt_loses_nothing(sim_dir, tmp_path, monkeypatch):
    config = BuildConfig.from_dict(SMALL)
    out = tmp_path / "ds"
    original = DatasetBuilder.add_recording
    calls = []

    def interrupted(self, source, raw=None):
        calls.append(source.session)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self, source, raw=raw)

    monkeypatch.setattr(DatasetBuilder, "add_recording", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_dataset([str(sim_dir)], out, config, progress=False)
    manifest = json.loads((out / ".build" / "manifest.json").read_text())
    assert len(manifest["recordings"]) == 1
    finished = next(iter(manifest["recordings"].values()))
    assert datasets.Dataset.from_parquet(str(out / finished["file"])).num_rows == finished["n_segments"]
    assert not list(out.rglob("*.tmp"))
    monkeypatch.setattr(DatasetBuilder, "add_recording", original)
    report = build_dataset([str(sim_dir)], out, config, progress=False)
    assert len(report.skipped_done) == 1 and len(report.processed) == 2
    again = build_dataset([str(sim_dir)], out, config, progress=False)
    assert len(again.skipped_done) == 3 and not again.processed
    with pytest.raises(ValueError, match="different preprocessing settings"):
        DatasetBuilder(out, BuildConfig.from_dict({**SMALL, "normalization": {"method": "standard"}}))


def _save(raw, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    raw.save(path, overwrite=True, verbose="error")
    return path


def test_bad_inputs_are_reported_per_file_and_run_continues(tmp_path):
    src = tmp_path / "src"
    good = _save(simulate_meg_raw(duration_seconds=6.0, sfreq=200.0, seed=1), src / "a_good_raw.fif")
    flat = simulate_meg_raw(duration_seconds=6.0, sfreq=200.0, seed=2)
    flat._data[5] = 0.0
    _save(flat, src / "b_flat_raw.fif")
    corrupt = src / "c_corrupt_raw.fif"
    corrupt.write_bytes(b"not a fif file" * 100)
    nan = simulate_meg_raw(duration_seconds=6.0, sfreq=200.0, seed=3)
    nan._data[:, 100:200] = np.nan
    _save(nan, src / "d_nan_raw.fif")
    eeg = mne.io.RawArray(
        np.random.default_rng(0).standard_normal((4, 1200)) * 1e-5,
        mne.create_info(["E1", "E2", "E3", "E4"], 200.0, "eeg"),
        verbose="error",
    )
    _save(eeg, src / "e_nopos_raw.fif")
    _save(simulate_meg_raw(duration_seconds=0.5, sfreq=200.0, seed=4), src / "f_short_raw.fif")
    unsupported = tmp_path / "notes.xyz"
    unsupported.write_text("hello")

    out = tmp_path / "ds"
    report = build_dataset([str(src), str(unsupported)], out, BuildConfig.from_dict(SMALL), progress=False)
    failed = report.failed
    assert set(report.processed) == {str(good), str(src / "b_flat_raw.fif")}
    assert "channel(s) marked bad: MEG" in " ".join(report.notes[str(src / "b_flat_raw.fif")])
    expectations = {
        corrupt: "could not read",
        src / "d_nan_raw.fif": "NaN/inf samples",
        src / "e_nopos_raw.fif": "have no 3-D position",
        src / "f_short_raw.fif": "shorter than one cleaning window",
        unsupported: "unsupported format",
    }
    for path, text in expectations.items():
        assert str(path) in failed[str(path)] and text in failed[str(path)], failed[str(path)]
    kept = datasets.load_dataset(str(out))  # finished recordings are kept
    assert sum(split.num_rows for split in kept.values()) >= 2

    # sampling rates that differ (no resampling) are rejected per file with both rates named
    other = _save(simulate_meg_raw(duration_seconds=6.0, sfreq=250.0, seed=5), tmp_path / "rates" / "z_250_raw.fif")
    _save(simulate_meg_raw(duration_seconds=6.0, sfreq=200.0, seed=6), tmp_path / "rates" / "a_200_raw.fif")
    keep_rate = BuildConfig.from_dict(
        {
            **SMALL,
            "preprocessing": {"sfreq": None, "h_freq": 40.0, "filter_phase": "zero", "bad_channel_action": "zero"},
        }
    )
    report = build_dataset([str(tmp_path / "rates")], tmp_path / "rates_ds", keep_rate, progress=False)
    assert "250 Hz differs from the 200 Hz" in report.failed[str(other)]


def test_too_short_for_a_training_window_is_a_clear_error(sim_dir, tmp_path):
    config = BuildConfig.from_dict({**SMALL, "example_seconds": 60.0})
    builder = DatasetBuilder(tmp_path / "ds_long", config)
    report = builder.build([str(sim_dir)], progress=False, finalize=False)
    assert all("shorter than one training window of example_seconds=60 s" in m for m in report.failed.values())
    with pytest.raises(ValueError, match="no recording could be processed"):
        builder.finalize(report)


def test_windows_error_when_every_segment_is_shorter_than_a_window(built):
    out, _ = built
    ds = datasets.load_dataset(str(out), split="train")
    with pytest.raises(ValueError, match="shorter than one window"):
        WindowDataset(ds, example_seconds=600.0, overlap_seconds=0.0)


def test_push_to_hub_round_trip(built, local_hub, hub_repo_id):
    out, _ = built
    push_dataset_to_hub(out, hub_repo_id, token=local_hub.api.token)
    remote = datasets.load_dataset(hub_repo_id)
    local = datasets.load_dataset(str(out))
    assert set(remote) == set(local)
    for split in local:
        assert remote[split]["session"] == local[split]["session"]
        np.testing.assert_array_equal(np.asarray(remote[split][0]["data"]), np.asarray(local[split][0]["data"]))
    streamed = next(
        iter(StreamingWindowDataset(datasets.load_dataset(hub_repo_id, split="train", streaming=True), 1.0, 0.5))
    )
    np.testing.assert_array_equal(streamed["signal"], WindowDataset(local["train"], 1.0, 0.5)[0]["signal"])
