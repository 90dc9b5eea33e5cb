"""Conditioned (event) variants, spec 1.5.4 / 7.4: MOUS code rules, CamCAN events.tsv and stim events,
and the `events` column a build writes beside each segment."""

import numpy as np
import pytest

mne = pytest.importorskip("mne")

from brain_gen_hf.data.config import BuildConfig  # noqa: E402
from brain_gen_hf.data.events import EventsConfig, event_array, mous_event_array, read_raw_events  # noqa: E402


def _raw_with_stim(n_samples=200, sfreq=100.0, onsets=(), codes=()):
    info = mne.create_info(["MEG0111", "MEG0112", "STI101"], sfreq, ["mag", "grad", "stim"])
    data = np.zeros((3, n_samples))
    data[:2] = np.random.default_rng(0).normal(scale=1e-12, size=(2, n_samples))
    for onset, code in zip(onsets, codes):
        data[2, onset : onset + 3] = code
    return mne.io.RawArray(data, info, verbose="error")


def test_camcan_events_tsv_rules(tmp_path):
    """Spec 7.4: onset 0.1 s / duration 0.2 s (auditory) fills 10:30, onset 0.6 s without duration (visual) 60."""
    fif = tmp_path / "sub-CC1_task-av_meg.fif"
    raw = _raw_with_stim()
    raw.save(fif, verbose="error")
    (tmp_path / "sub-CC1_task-av_events.tsv").write_text(
        "onset\tduration\ttrial_type\n0.1\t0.2\tauditory\n0.6\tn/a\tvisual\n"
    )
    config = EventsConfig(mode="camcan")
    codes = event_array(read_raw_events(raw, config, fif), config, fif, raw.n_times, raw.info["sfreq"])
    assert codes.shape == (200,) and codes.dtype == np.int16
    assert (codes[10:30] == 1).all() and codes[60] == 2 and codes[:10].sum() == 0 and codes[30:60].sum() == 0


def test_camcan_stim_events_fill_until_the_next_onset_at_the_output_rate(tmp_path):
    raw = _raw_with_stim(n_samples=400, sfreq=200.0, onsets=(20, 100), codes=(3, 7))
    config = EventsConfig(mode="camcan")
    codes = event_array(read_raw_events(raw, config, tmp_path / "x_meg.fif"), config, tmp_path / "x.fif", 200, 100.0)
    assert (codes[10:50] == 3).all() and codes[50] == 7 and codes[51:].sum() == 0 and codes[:10].sum() == 0


def test_mous_rules():
    events = np.array([[10, 0, 1], [40, 0, 15], [50, 0, 20], [60, 0, 10], [62, 0, 40], [90, 0, 7]])
    codes = mous_event_array(events, 100, visual=False)
    assert (codes[10:40] == 1).all() and (codes[50:60] == 3).all()
    assert (codes[60:62] == 0).all()  # a 2-sample fill is ignored
    assert (codes[62:90] == 4).all() and (codes[90:] == 1).all()  # start without a stop runs to the end
    visual = mous_event_array(np.array([[5, 0, 8], [30, 0, 15]]), 50, visual=True)
    assert (visual[5:30] == 5).all() and visual[30:].sum() == 0


def test_mous_needs_a_stim_channel_and_skips_rest(tmp_path):
    raw = mne.io.RawArray(np.zeros((1, 50)), mne.create_info(["MEG0111"], 100.0, "mag"), verbose="error")
    config = EventsConfig(mode="mous")
    assert read_raw_events(raw, config, tmp_path / "sub-A_task-rest_meg.ds") is None
    with pytest.raises(ValueError, match="needs a stim channel"):
        read_raw_events(raw, config, tmp_path / "sub-A_task-auditory_meg.ds")
    with pytest.raises(ValueError, match="events.mode must be one of"):
        BuildConfig.from_dict({"events": {"mode": "bci"}})


def test_build_stores_events_beside_each_segment(tmp_path):
    datasets = pytest.importorskip("datasets")
    from brain_gen_hf.data.shards import DatasetBuilder

    sfreq, n = 100.0, 600
    raw = _raw_with_stim(n_samples=n, sfreq=sfreq, onsets=(100, 350), codes=(2, 5))
    fif = tmp_path / "rec_raw.fif"
    raw.save(fif, verbose="error")
    config = BuildConfig.from_dict(
        {
            "preprocessing": {
                "filter_phase": "zero",
                "detect_bad_channels": False,
                "notch_freqs": [],
                "missing_positions": "zeros",
            },
            "events": {"mode": "camcan"},
            "cleaning": {"window_seconds": 1.0, "min_segment_seconds": 1.0, "std_threshold": 100.0},
            "splits": {"val_ratio": 0.0, "test_ratio": 0.0},
        }
    )
    report = DatasetBuilder(tmp_path / "out", config).build([str(fif)], progress=False, finalize=False)
    assert not report.failed, report.failed
    (written,) = (tmp_path / "out" / ".build" / "recordings").rglob("*.parquet")
    row = datasets.Dataset.from_parquet(str(written))[0]
    codes = np.asarray(row["events"])
    assert codes.shape == (row["n_samples"],) and row["n_channels"] == 2
    assert (codes[100:350] == 2).all() and codes[350] == 5 and codes[:100].sum() == 0
    from brain_gen_hf.data.windows import WindowDataset

    windows = WindowDataset(datasets.Dataset.from_parquet(str(written)), 1.0, 0.0)
    item = windows[1]  # samples 100..199
    assert item["events"].dtype == np.int16 and (item["events"] == 2).all()
    batch = windows.__getitems__([0, 3])
    assert batch[0]["events"].sum() == 0 and batch[1]["events"][50] == 5  # sample 350
    from brain_gen_hf.data.windows import StreamingWindowDataset

    streamed = list(StreamingWindowDataset(datasets.Dataset.from_parquet(str(written)).to_iterable_dataset(), 1.0, 0.0))
    assert len(streamed) == len(windows)
    for i in range(len(windows)):
        np.testing.assert_array_equal(streamed[i]["events"], windows[i]["events"])
