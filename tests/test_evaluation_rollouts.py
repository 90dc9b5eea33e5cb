"""Rollout generation (spec 5.4): batching, seeding, rollouts per context, sensor metadata, the RVQ temperature
curriculum, save/load, and bad inputs."""

import json

import numpy as np
import pytest
import torch
from transformers import GenerationConfig

from brain_gen_hf.evaluation.baselines import PersistenceBaseline
from brain_gen_hf.evaluation.rollouts import (
    RolloutConfig,
    RolloutResult,
    RVQTemperatureCurriculum,
    curriculum_temperatures,
    generate_rollouts,
    measure_rollout_throughput,
)
from brain_gen_hf.evaluation.sessions import SessionSample
from brain_gen_hf.forecasting import ForecastOutput

CHANNELS, CONTEXT, TOTAL = 4, 16, 40


def make_sample(i, channels=CHANNELS, context=CONTEXT, total=TOTAL, sfreq=100.0):
    data = np.random.default_rng(i).standard_normal((channels, total)).astype(np.float32)
    return SessionSample(
        dataset_key="ds",
        session=f"ses-{i}",
        task_type="rest",
        subject=f"{i:02d}",
        data=data,
        context_steps=context,
        total_steps=total,
        sfreq=sfreq,
        channel_names=[f"MEG{c}" for c in range(channels)],
        ch_types=["mag", "grad"] * (channels // 2),
        pos_2d=np.full((channels, 2), 0.5, dtype=np.float32),
        pos_3d=np.arange(channels * 3, dtype=np.float32).reshape(channels, 3),
        ori_3d=-np.arange(channels * 3, dtype=np.float32).reshape(channels, 3),
    )


class ContextEcho:
    """Deterministic: the forecast at step h is the context's last sample times (h + 1) plus the row's mean."""

    def forecast(self, input_values, horizon, generation_config=None, **kwargs):
        last = input_values[..., -1:]
        steps = torch.arange(1, horizon + 1, dtype=input_values.dtype)
        return ForecastOutput(values=last * steps + input_values.mean(dim=(1, 2), keepdim=True))


class NoisyForecaster:
    """Draws from the global torch RNG, like a sampling model."""

    def forecast(self, input_values, horizon, generation_config=None, **kwargs):
        batch, channels, _ = input_values.shape
        return ForecastOutput(values=torch.randn(batch, channels, horizon))


class MetadataRecorder:
    """Names the sensor metadata in its signature (as a family's `_forecast` does) and records what it got."""

    def __init__(self):
        self.calls = []

    def _forecast(
        self,
        input_values,
        horizon,
        generation_config,
        logits_processor,
        *,
        progress=None,
        pos=None,
        sensor_type=None,
        channel_names=None,
        sampling_rate=None,
    ):
        raise AssertionError("generate_rollouts calls forecast, not _forecast")

    def forecast(self, input_values, horizon, generation_config=None, **kwargs):
        self.calls.append(kwargs)
        return ForecastOutput(values=torch.zeros(input_values.shape[0], input_values.shape[1], horizon))


def test_batched_equals_one_at_a_time_and_keeps_context_and_target():
    samples = [make_sample(i) for i in range(5)]
    one = generate_rollouts(ContextEcho(), samples, {"rollout_batch_size": 1})
    batched = generate_rollouts(ContextEcho(), samples, {"rollout_batch_size": 3})
    np.testing.assert_array_equal(one.generated, batched.generated)
    assert one.generated.shape == (5, CHANNELS, TOTAL) and one.generated.dtype == np.float32
    for r, sample in enumerate(samples):
        np.testing.assert_array_equal(one.target[r], sample.data)
        np.testing.assert_array_equal(one.generated[r, :, :CONTEXT], sample.data[:, :CONTEXT])
        expected = sample.data[:, CONTEXT - 1 : CONTEXT] * np.arange(1, TOTAL - CONTEXT + 1) + sample.context.mean()
        np.testing.assert_allclose(one.generated[r, :, CONTEXT:], expected, rtol=1e-5, atol=1e-5)
    assert one.horizon == TOTAL - CONTEXT and one.sfreq == 100.0
    assert one.channel_names == samples[0].channel_names


def test_rollouts_per_context_and_metadata():
    samples = [make_sample(i) for i in range(3)]
    result = generate_rollouts(NoisyForecaster(), samples, {"rollouts_per_context": 2, "rollout_batch_size": 4})
    assert result.num_runs == 6
    assert [(m["session_index"], m["rollout_index"]) for m in result.metadata] == [
        (0, 0),
        (0, 1),
        (1, 0),
        (1, 1),
        (2, 0),
        (2, 1),
    ]
    assert [m["session"] for m in result.metadata] == ["ses-0", "ses-0", "ses-1", "ses-1", "ses-2", "ses-2"]
    # The two rollouts of one context share context and target, but are different draws.
    np.testing.assert_array_equal(result.target[0], result.target[1])
    np.testing.assert_array_equal(result.generated[0, :, :CONTEXT], result.generated[1, :, :CONTEXT])
    assert not np.array_equal(result.generated[0, :, CONTEXT:], result.generated[1, :, CONTEXT:])


def test_seeded_and_sharded_runs_are_reproducible():
    samples = [make_sample(i) for i in range(4)]
    config = {"rollouts_per_context": 2, "rollout_batch_size": 2, "seed": 7}
    first = generate_rollouts(NoisyForecaster(), samples, config)
    again = generate_rollouts(NoisyForecaster(), samples, config)
    np.testing.assert_array_equal(first.generated, again.generated)
    other = generate_rollouts(NoisyForecaster(), samples, {**config, "seed": 8})
    assert not np.array_equal(first.generated, other.generated)
    # A shard of whole batches reproduces its runs of the full list.
    shard = generate_rollouts(NoisyForecaster(), samples[2:], config, index_offset=2)
    np.testing.assert_array_equal(shard.generated, first.generated[4:])
    assert [m["session_index"] for m in shard.metadata] == [2, 2, 3, 3]


def test_sensor_metadata_follows_the_signature():
    samples = [make_sample(i) for i in range(3)]
    recorder = MetadataRecorder()
    generate_rollouts(recorder, samples, {"rollout_batch_size": 2})
    assert [c["pos"].shape for c in recorder.calls] == [(2, CHANNELS, 6), (1, CHANNELS, 6)]
    expected = np.concatenate([samples[2].pos_3d, samples[2].ori_3d], axis=1)
    np.testing.assert_array_equal(recorder.calls[1]["pos"][0].numpy(), expected)
    np.testing.assert_array_equal(recorder.calls[0]["sensor_type"].numpy(), [[0, 1, 0, 1]] * 2)  # mag, grad
    assert recorder.calls[0]["channel_names"] == samples[0].channel_names
    assert recorder.calls[0]["sampling_rate"] == 100.0
    assert "max_context_tokens" not in recorder.calls[0] and "progress" in recorder.calls[0]
    recorder = MetadataRecorder()
    generate_rollouts(recorder, samples[:1], {"positions": "2d"})
    assert recorder.calls[0]["pos"].shape == (1, CHANNELS, 2)
    recorder = MetadataRecorder()
    generate_rollouts(recorder, samples[:1], {"positions": None})
    assert "pos" not in recorder.calls[0] and "sensor_type" not in recorder.calls[0]


def test_save_load_round_trip_is_bit_exact(tmp_path):
    samples = [make_sample(i) for i in range(2)]
    result = generate_rollouts(NoisyForecaster(), samples, {"rollouts_per_context": 2})
    path = result.save(tmp_path / "paired_rollouts.npz")
    assert path == tmp_path / "paired_rollouts.npz" and (tmp_path / "paired_rollouts.json").is_file()
    json.loads((tmp_path / "paired_rollouts.json").read_text())  # plain JSON
    with np.load(path, allow_pickle=False) as arrays:  # no object arrays inside
        assert set(arrays.files) == {"generated", "target", "pos_2d"}
    loaded = RolloutResult.load(path)
    assert loaded.generated.tobytes() == result.generated.tobytes()
    assert loaded.target.tobytes() == result.target.tobytes()
    assert (loaded.context_steps, loaded.total_steps, loaded.sfreq) == (CONTEXT, TOTAL, 100.0)
    assert loaded.metadata == result.metadata and loaded.channel_names == result.channel_names
    (tmp_path / "paired_rollouts.json").unlink()
    with pytest.raises(FileNotFoundError, match="paired_rollouts.json"):
        RolloutResult.load(path)


def test_curriculum_processor_scales_each_level():
    # 2 rows, 3 codes each on the first call, 1 on the second; Q = 2 levels at temperatures 1 and 0.5.
    processor = RVQTemperatureCurriculum([1.0, 0.5], batch_size=2)
    scores = torch.ones(6, 5)
    out = processor(None, scores)
    np.testing.assert_allclose(out[:, 0].numpy(), [1, 2, 1, 1, 2, 1])  # levels 0, 1, 0 per row
    out = processor(None, torch.ones(2, 5))
    np.testing.assert_allclose(out[:, 0].numpy(), [2, 2])  # the 4th code of each row has level 1
    config = RolloutConfig(temperature_curriculum=True, temperature_decay=0.5, temperature_min=0.3)
    assert curriculum_temperatures(config, 3, base_temperature=2.0) == [2.0, 1.0, 0.5]
    assert curriculum_temperatures(config, 4, base_temperature=1.0) == [1.0, 0.5, 0.3, 0.3]
    explicit = RolloutConfig(temperature_curriculum=[0.9, 0.7, 0.6])
    assert curriculum_temperatures(explicit, 2, base_temperature=1.0) == [0.9, 0.7]
    assert curriculum_temperatures(explicit, 4, base_temperature=1.0) == [0.9, 0.7, 0.6, 0.6]


@pytest.fixture(scope="module")
def rvq_model():
    from tests.flatgpt_rvq_configs import build

    return build("flatgpt_embeds_rvq")


def rvq_samples(n):
    # The brain tokenizer's hop is 4 samples: 8 context samples (2 token steps), 12 to forecast.
    return [make_sample(i, context=8, total=20) for i in range(n)]


def test_flatgpt_batched_equals_one_at_a_time_under_greedy(rvq_model):
    samples = rvq_samples(3)
    one = generate_rollouts(rvq_model, samples, {"rollout_batch_size": 1})
    batched = generate_rollouts(rvq_model, samples, {"rollout_batch_size": 3})
    np.testing.assert_allclose(one.generated, batched.generated, rtol=1e-4, atol=1e-5)
    direct = rvq_model.forecast(torch.from_numpy(samples[1].context[None]), 12).values[0].numpy()
    np.testing.assert_allclose(one.generated_continuation[1], direct, rtol=1e-4, atol=1e-5)
    # A 16-token window slides (8 context + 12 new tokens): still the model's own windowed forecast, batched or not.
    window = {"max_context_tokens": 16, "kv_overlap": 0.5}
    one = generate_rollouts(rvq_model, samples, {"rollout_batch_size": 1, **window})
    batched = generate_rollouts(rvq_model, samples, {"rollout_batch_size": 3, **window})
    np.testing.assert_allclose(one.generated, batched.generated, rtol=1e-4, atol=1e-5)
    direct = rvq_model.forecast(
        torch.from_numpy(samples[2].context[None]), 12, max_context_tokens=16, sliding_window_overlap=0.5
    )
    np.testing.assert_allclose(one.generated_continuation[2], direct.values[0].numpy(), rtol=1e-4, atol=1e-5)


def test_flatgpt_curriculum_at_near_zero_temperature_is_greedy(rvq_model):
    samples = rvq_samples(2)
    greedy = generate_rollouts(rvq_model, samples, {"rollout_batch_size": 2})
    cold = generate_rollouts(
        rvq_model,
        samples,
        {"rollout_batch_size": 2, "sampling": {"do_sample": True}, "temperature_curriculum": [1e-6, 1e-6]},
    )
    np.testing.assert_allclose(cold.generated, greedy.generated, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="needs sampling"):
        generate_rollouts(rvq_model, samples, {"temperature_curriculum": True})


def test_throughput_measure():
    samples = [make_sample(i) for i in range(4)]
    result = measure_rollout_throughput(ContextEcho(), samples, {"rollouts_per_context": 2})
    assert set(result) == {"batch_1", "batch_8", "speedup"}
    assert result["batch_8"]["signal_seconds"] == pytest.approx(8 * (TOTAL - CONTEXT) / 100.0)
    assert result["batch_1"]["signal_seconds_per_second"] > 0 and result["speedup"] > 0


def test_mulaw_bins_are_mapped_back_to_signal_units():
    class Bins:
        def forecast(self, input_values, horizon, generation_config=None, **kwargs):
            bins = torch.zeros(input_values.shape[0], input_values.shape[1], horizon, dtype=torch.long)
            bins[..., 1::2] = 255
            return ForecastOutput(values=bins)

    result = generate_rollouts(Bins(), [make_sample(0)], {"mu": 255, "mulaw_max_value": 5.0})
    # mu-law decode: bin 0 -> -1, bin mu -> +1, then times max_value.
    np.testing.assert_allclose(result.generated_continuation[0, :, :4], [[-5.0, 5.0, -5.0, 5.0]] * CHANNELS)


@pytest.mark.parametrize(
    "config, message",
    [
        ({"rollouts_per_contexts": 2}, r"unknown keys \['rollouts_per_contexts'\] in rollout generator"),
        ({"rollout_batch_size": 0}, "rollout_batch_size must be a positive int"),
        ({"sampling": {"num_beams": 2}}, r"unknown sampling key\(s\) \['num_beams'\]"),
        ({"positions": "4d"}, "positions must be"),
        ({"temperature_curriculum": [0.5, -1]}, "positive temperatures"),
        ({"max_context_tokens": 64}, "has no sliding window"),
        ({"temperature_curriculum": True, "sampling": {"do_sample": True}}, "applies to RVQ FlatGPT models"),
    ],
)
def test_bad_config(config, message):
    with pytest.raises(ValueError, match=message):
        generate_rollouts(PersistenceBaseline(), [make_sample(0)], config)


def test_bad_samples_and_outputs():
    nan = make_sample(0)
    nan.data[1, 3] = np.nan
    with pytest.raises(ValueError, match="NaN/inf"):
        generate_rollouts(ContextEcho(), [nan], {})
    with pytest.raises(ValueError, match="share context_steps, total_steps"):
        generate_rollouts(ContextEcho(), [make_sample(0), make_sample(1, total=TOTAL + 4)], {})
    with pytest.raises(ValueError, match="share context_steps, total_steps, channel count"):
        generate_rollouts(ContextEcho(), [make_sample(0), make_sample(1, channels=2)], {})
    wrong = make_sample(0)
    wrong.context_steps = TOTAL
    with pytest.raises(ValueError, match=r"context_steps \(40\) must be in \(0, total_steps"):
        generate_rollouts(ContextEcho(), [wrong], {})
    with pytest.raises(ValueError, match="at least one SessionSample"):
        generate_rollouts(ContextEcho(), [], {})

    class Transposed:
        def forecast(self, input_values, horizon, generation_config=None, **kwargs):
            return ForecastOutput(values=torch.zeros(input_values.shape[0], horizon, input_values.shape[1]))

    with pytest.raises(ValueError, match=r"the contract is \(B, C, horizon\) = \(1, 4, 24\)"):
        generate_rollouts(Transposed(), [make_sample(0)], {})
    with pytest.raises(ValueError, match="forecast\\(\\) method"):
        generate_rollouts(object(), [make_sample(0)], {})


def test_generation_config_reaches_the_model(rvq_model):
    # An unsupported GenerationConfig field is refused by the model's forecast, through the rollout config.
    config = RolloutConfig(sampling={"do_sample": True, "top_k": 3})
    assert config.generation_config() == GenerationConfig(do_sample=True, top_k=3)
    result = generate_rollouts(rvq_model, rvq_samples(1), config)
    assert np.isfinite(result.generated).all()


def test_rollout_plots_catalogue(tmp_path):
    from brain_gen_hf.evaluation.rollout_plots import plot_rollouts

    samples = [make_sample(i, total=120, context=40) for i in range(2)]
    result = generate_rollouts(PersistenceBaseline(), samples, {})
    written = plot_rollouts(result, tmp_path, max_runs=1, max_channels=2, max_plot_seconds=1.0)
    assert [p.name for p in written] == [
        "gen_vs_target_run0_timeseries.png",
        "gen_vs_target_run0_stft.png",
        "gen_vs_target_psd.png",
        "gen_vs_target_cov.png",
        "gen_vs_target_stacked_timeseries.png",
    ]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in written)


def test_plot_summaries_follow_their_definitions():
    from brain_gen_hf.evaluation.rollout_plots import continuation_psd, mean_covariance, pick_channels

    sfreq, context, total = 100.0, 100, 500
    t = np.arange(total) / sfreq
    wave = np.sin(2 * np.pi * 12.0 * t)
    data = np.stack([wave, 2 * wave]).astype(np.float32)[None]  # channel 1 = 2 x channel 0
    result = RolloutResult(
        generated=data.copy(),
        target=data.copy(),
        context_steps=context,
        total_steps=total,
        sfreq=sfreq,
        metadata=[{}],
    )
    freqs, generated, target = continuation_psd(result)
    assert freqs[np.argmax(generated[0])] == pytest.approx(12.0)  # 1 Hz bins (nperseg = sfreq)
    variance = np.var(wave[context:], ddof=1)
    np.testing.assert_allclose(
        mean_covariance(result.target_continuation), variance * np.array([[1, 2], [2, 4]]), rtol=1e-5
    )
    first = pick_channels(result, np.random.default_rng(3), max_channels=1)
    assert first.tolist() == pick_channels(result, np.random.default_rng(3), max_channels=1).tolist()
    assert pick_channels(result, np.random.default_rng(0), max_channels=10).tolist() == [0, 1]


def test_curriculum_reference_case_and_config_spellings():
    # Spec 7.12: 3 levels, decay 0.5 -> [1, 0.5, 0.25, 1] for a 4-code call, then [0.5, 0.25] (the offset persists).
    temperatures = curriculum_temperatures(RolloutConfig(temperature_curriculum=True, temperature_decay=0.5), 3, 1.0)
    processor = RVQTemperatureCurriculum(temperatures, batch_size=1)
    np.testing.assert_allclose(1 / processor(None, torch.ones(4, 2))[:, 0].numpy(), [1, 0.5, 0.25, 1])
    np.testing.assert_allclose(1 / processor(None, torch.ones(2, 2))[:, 0].numpy(), [0.5, 0.25])
    assert RolloutConfig().temperature_curriculum is False  # off by default
    assert RolloutConfig.from_dict({"temperature_levels": [1, 0.7, 0.5]}).temperature_curriculum == [1, 0.7, 0.5]
    assert RolloutConfig.from_dict({"num_rollouts_per_context": 3}).rollouts_per_context == 3


def test_plot_rollouts_draws_ten_runs_with_the_same_channels(monkeypatch, tmp_path):
    import brain_gen_hf.evaluation.rollout_plots as plots

    calls = []
    for name in ("plot_run_timeseries", "plot_run_stft"):
        monkeypatch.setattr(
            plots, name, lambda r, run, ch, path, s=None, name=name: calls.append((name, run, list(ch)))
        )
    for name in ("plot_psd_summary", "plot_cov_summary", "plot_stacked_timeseries"):
        monkeypatch.setattr(plots, name, lambda r, path, *a, name=name: calls.append((name, None, None)))
    # 12 rollouts of one context (spec 7.12): 10 timeseries + 10 STFT figures, one of each summary.
    result = generate_rollouts(PersistenceBaseline(), [make_sample(0, channels=12)], {"rollouts_per_context": 12})
    plots.plot_rollouts(result, tmp_path, seed=4)
    names = [c[0] for c in calls]
    assert names.count("plot_run_timeseries") == 10 and names.count("plot_run_stft") == 10
    assert [n for n in names if not n.startswith("plot_run")] == [
        "plot_psd_summary",
        "plot_cov_summary",
        "plot_stacked_timeseries",
    ]
    series = [c[2] for c in calls if c[0] == "plot_run_timeseries"]
    stft = [c[2] for c in calls if c[0] == "plot_run_stft"]
    assert series == stft and all(len(ch) == 10 for ch in series)
    first = list(series)
    calls.clear()
    plots.plot_rollouts(result, tmp_path, seed=4)
    assert [c[2] for c in calls if c[0] == "plot_run_timeseries"] == first  # same seed, same channels
