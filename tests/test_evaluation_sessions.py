"""Session sampler (spec 5.3): deterministic under a seed, filters, lengths, and clear errors."""

import numpy as np
import pytest

from brain_gen_hf.evaluation.sessions import SessionSample, SessionSamplerConfig, sample_sessions

SFREQ = 100.0


def row(dataset="dsA", subject="01", session="ses-1", task="rest", segment_index=0, n_samples=300, channels=3):
    """One segment row in the dataset layout; sample t of channel c holds 1000 * c + t (so slices are checkable)."""
    data = (1000.0 * np.arange(channels)[:, None] + np.arange(n_samples)[None, :]).astype(np.float32)
    return {
        "dataset": dataset,
        "subject": subject,
        "session": session,
        "task": task,
        "segment_index": segment_index,
        "sfreq": SFREQ,
        "n_samples": n_samples,
        "ch_names": [f"MEG{c:03d}" for c in range(channels)],
        "ch_types": ["mag"] * channels,
        "pos_2d": [[0.1 * c, 0.2] for c in range(channels)],
        "pos_3d": [[0.0, 0.1 * c, 0.3] for c in range(channels)],
        "ori_3d": [[0.0, 0.0, 1.0]] * channels,
        "data": data.tolist(),
    }


def rows():
    return [
        row(subject="01", task="rest"),
        row(subject="02", task="rest", n_samples=150),  # too short for total 200
        row(subject="03", task="motor", segment_index=0, n_samples=120),
        row(subject="03", task="motor", segment_index=1, n_samples=400),  # a later segment is long enough
        row(subject="04", task="restingstate"),
        row(dataset="dsB", subject="01", task="rest"),
    ]


def config(**kw):
    values = {"context_length_steps": 50, "total_length_steps": 200, "num_sessions": 0, "seed": 0}
    values.update(kw)
    return SessionSamplerConfig.from_dict(values)


def names(samples):
    return [(s.dataset_key, s.subject, s.task_type) for s in samples]


def test_all_candidates_sorted_and_sliced():
    samples = sample_sessions(rows(), config())
    # 02 is too short; sorted by dataset, subject, session, task.
    assert names(samples) == [
        ("dsA", "01", "rest"),
        ("dsA", "03", "motor"),
        ("dsA", "04", "restingstate"),
        ("dsB", "01", "rest"),
    ]
    motor = samples[1]
    assert motor.segment_index == 1
    assert motor.data.shape == (3, 200) and motor.data.dtype == np.float32
    np.testing.assert_array_equal(motor.data[2], 2000.0 + np.arange(200))
    assert motor.context.shape == (3, 50) and motor.continuation.shape == (3, 150)
    assert motor.channel_names == ["MEG000", "MEG001", "MEG002"]
    assert motor.pos_3d.shape == (3, 3) and motor.pos_2d.shape == (3, 2)
    np.testing.assert_array_equal(motor.sensor_type_ids, [0, 0, 0])  # "mag"


def test_seeded_sampling_is_deterministic_and_seed_dependent():
    picks = {seed: names(sample_sessions(rows(), config(num_sessions=2, seed=seed))) for seed in range(6)}
    assert picks[3] == names(sample_sessions(rows(), config(num_sessions=2, seed=3)))
    assert all(len(p) == 2 and len(set(p)) == 2 for p in picks.values())
    assert len({tuple(p) for p in picks.values()}) > 1  # 4 candidates, 12 ordered pairs: seeds differ


def test_filters_task_and_dataset():
    assert names(sample_sessions(rows(), config(task_type="REST"))) == [
        ("dsA", "01", "rest"),
        ("dsA", "04", "restingstate"),  # substring match
        ("dsB", "01", "rest"),
    ]
    assert names(sample_sessions(rows(), config(dataset_keys=["DSB"]))) == [("dsB", "01", "rest")]
    with pytest.raises(ValueError, match=r"dsC.*available: \['dsA', 'dsB'\]"):
        sample_sessions(rows(), config(dataset="dsC"))
    with pytest.raises(ValueError, match="no session matches task_type"):
        sample_sessions(rows(), config(task_type="sleep"))


def test_seconds_are_converted_with_sfreq():
    samples = sample_sessions(
        rows(), config(context_length_steps=None, total_length_steps=None, context_length_s=0.5, total_length_s=2.0)
    )
    assert (samples[0].context_steps, samples[0].total_steps) == (50, 200)


def test_no_long_enough_segment_names_the_longest():
    with pytest.raises(ValueError, match=r"1000 samples.*longest is 400 samples.*dsA/03/ses-1/motor"):
        sample_sessions(rows(), config(context_length_steps=10, total_length_steps=1000))


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"context_length_steps": 200}, "must be positive and shorter than the total"),
        ({"context_length_steps": 300}, "shorter than the total"),
        ({"context_length_s": 1.0}, "exactly one of context_length_steps and context_length_s"),
        ({"frobnicate": 1}, r"unknown keys \['frobnicate'\] in session sampler"),
        ({"num_sessions": 1.5}, "num_sessions must be an int"),
        ({"split": "dev"}, "split must be"),
        ({"num_runs": 1, "num_sessions": 2}, "alias"),
    ],
)
def test_bad_config(bad, message):
    with pytest.raises(ValueError, match=message):
        config(**bad)


def test_nan_in_the_chosen_segment_is_refused():
    bad = row()
    bad["data"][1][7] = float("nan")
    with pytest.raises(ValueError, match="NaN/inf"):
        sample_sessions([bad], config())


def test_missing_columns_and_empty_split():
    broken = row()
    del broken["n_samples"]
    with pytest.raises(ValueError, match=r"lacks key\(s\) \['n_samples'\]"):
        sample_sessions([broken], config())
    with pytest.raises(ValueError, match="empty"):
        sample_sessions([], config())


def test_built_dataset(tiny_meg_dataset):
    from brain_gen_hf.data.windows import load_segments

    segments = load_segments(str(tiny_meg_dataset), "train")
    longest = max(segments["n_samples"])
    samples = sample_sessions(segments, {"context_length_steps": 100, "total_length_steps": 400, "num_sessions": 0})
    assert samples and all(isinstance(s, SessionSample) for s in samples)
    first = samples[0]
    assert first.data.shape == (len(first.channel_names), 400) and first.sfreq == segments[0]["sfreq"]
    # The sampled data are the first samples of a segment of that session.
    match = [
        r
        for r in segments
        if (r["subject"], r["session"], r["segment_index"]) == (first.subject, first.session, first.segment_index)
    ]
    np.testing.assert_array_equal(first.data, np.asarray(match[0]["data"], dtype=np.float32)[:, :400])
    with pytest.raises(ValueError, match=f"longest is {longest} samples"):
        sample_sessions(segments, {"context_length_steps": 10, "total_length_steps": longest + 1})
