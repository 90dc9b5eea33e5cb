"""Baselines (spec 5.11 and issue 13): zero, mean, persistence, per-channel AR and TimesFM, one forecast contract."""

import numpy as np
import pytest
import torch

from brain_gen_hf.evaluation.baselines import (
    ALL_BASELINES,
    LinearARBaseline,
    MeanBaseline,
    PersistenceBaseline,
    TimesFMBaseline,
    ZeroBaseline,
    build_baselines,
)
from brain_gen_hf.forecasting import ForecastOutput


def context(batch=2, channels=3, steps=50, seed=0):
    return torch.randn(batch, channels, steps, generator=torch.Generator().manual_seed(seed))


def test_zero_and_mean():
    x = context()
    zero = ZeroBaseline().forecast(x, 7)
    assert isinstance(zero, ForecastOutput) and zero.values.shape == (2, 3, 7) and zero.values.dtype == torch.float32
    assert not zero.values.any()
    mean = MeanBaseline().forecast(x, 5).values
    for b in range(2):
        for c in range(3):
            np.testing.assert_allclose(mean[b, c].numpy(), float(x[b, c].double().mean()), rtol=1e-6, atol=1e-6)


def test_persistence_continues_a_signal_whose_period_is_the_horizon():
    period = 12
    t = np.arange(5 * period)
    pattern = np.random.default_rng(1).standard_normal((2, period))
    signal = torch.tensor(pattern[:, t % period][None])  # (1, 2, 60), period 12
    context_steps = 41  # not a multiple of the period: the phase must carry over
    forecast = PersistenceBaseline().forecast(signal[..., :context_steps], period).values
    np.testing.assert_array_equal(forecast.numpy(), signal[..., context_steps : context_steps + period].float().numpy())
    # A fixed window longer than one period tiles the last `window` samples.
    longer = PersistenceBaseline(window=period).forecast(signal[..., :context_steps], 3 * period).values
    expected = pattern[:, (context_steps + np.arange(3 * period)) % period][None]
    np.testing.assert_array_equal(longer.numpy(), expected.astype(np.float32))
    # A horizon longer than the context repeats the whole context.
    short = torch.arange(4.0).reshape(1, 1, 4)
    np.testing.assert_array_equal(PersistenceBaseline().forecast(short, 6).values[0, 0].numpy(), [0, 1, 2, 3, 0, 1])


def test_ar2_recovers_a_known_process():
    a1, a2 = 0.6, -0.3
    rng = np.random.default_rng(0)
    x = np.zeros((2, 6000))
    noise = rng.standard_normal(x.shape)
    for t in range(2, x.shape[1]):
        x[:, t] = a1 * x[:, t - 1] + a2 * x[:, t - 2] + noise[:, t]
    coefs, intercept = LinearARBaseline(order=2).fit(x[None])
    # Least-squares error ~ 1/sqrt(n) = 0.013: 0.05 is ~4 standard errors.
    np.testing.assert_allclose(coefs[0], [[a1, a2], [a1, a2]], atol=0.05)
    np.testing.assert_allclose(intercept, 0.0, atol=0.05)


def test_ar2_forecasts_a_sinusoid_almost_exactly():
    # sin(w t) = 2 cos(w) sin(w (t-1)) - sin(w (t-2)): an exact AR(2) recursion.
    t = np.arange(400)
    signal = np.stack([np.sin(2 * np.pi * t / 23.7), 0.5 * np.cos(2 * np.pi * t / 9.1 + 0.3)])[None]
    forecast = LinearARBaseline(order=2).forecast(torch.tensor(signal[..., :200]), 200).values.numpy()
    np.testing.assert_allclose(forecast, signal[..., 200:], atol=1e-4)
    coefs, _ = LinearARBaseline(order=2, intercept=False).fit(signal[..., :200])
    np.testing.assert_allclose(coefs[0, 0], [2 * np.cos(2 * np.pi / 23.7), -1.0], atol=1e-6)


@pytest.mark.parametrize("baseline", [ZeroBaseline(), MeanBaseline(), PersistenceBaseline(), LinearARBaseline(2)])
def test_bad_inputs(baseline):
    bad = context()
    bad[0, 1, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN/inf"):
        baseline.forecast(bad, 4)
    with pytest.raises(ValueError, match=r"\(B, C, T\) signal, got shape \(3, 50\)"):
        baseline.forecast(context()[0], 4)
    with pytest.raises(ValueError, match="horizon must be a positive int"):
        baseline.forecast(context(), 0)


def test_ar_needs_enough_context_and_a_valid_order():
    with pytest.raises(ValueError, match="needs at least 17 context samples, got 10"):
        LinearARBaseline(order=8).forecast(context(steps=10), 3)
    with pytest.raises(ValueError, match="order must be a positive int"):
        LinearARBaseline(order=0)
    with pytest.raises(ValueError, match="ridge must be a non-negative number"):
        LinearARBaseline(order=2, ridge=-1.0)


def test_build_baselines():
    built = build_baselines(["zero", "mean", "persistence", "ar"], ar={"order": 3})
    assert list(built) == ["zero", "mean", "persistence", "ar"] and built["ar"].order == 3 and not built.skipped
    assert {b.name for b in built.values()} == {"zero", "mean", "persistence", "ar"}
    assert "timesfm" in ALL_BASELINES
    with pytest.raises(ValueError, match=r"unknown baseline\(s\) \['arima'\]"):
        build_baselines(["zero", "arima"])
    with pytest.raises(ValueError, match=r"options given for baseline\(s\) \['ar'\]"):
        build_baselines(["zero"], ar={"order": 2})
    with pytest.raises(ValueError, match="bad options for baseline 'ar'"):
        build_baselines(["ar"], ar={"lags": 2})


def test_timesfm_without_local_weights_is_skipped_with_a_message(tmp_path):
    missing = tmp_path / "no-such-timesfm"
    built = build_baselines(["zero", "timesfm"], timesfm={"model": str(missing)})
    assert list(built) == ["zero"]
    assert "TimesFM baseline skipped" in built.skipped["timesfm"] and str(missing) in built.skipped["timesfm"]


def test_timesfm_from_a_local_folder(tmp_path):
    from transformers import TimesFmConfig, TimesFmModelForPrediction

    config = TimesFmConfig(
        patch_length=4,
        context_length=16,
        horizon_length=8,
        hidden_size=16,
        intermediate_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        head_dim=8,
    )
    torch.manual_seed(0)
    TimesFmModelForPrediction(config).save_pretrained(tmp_path / "timesfm")
    baseline = build_baselines(["timesfm"], timesfm={"model": str(tmp_path / "timesfm")})["timesfm"]
    assert isinstance(baseline, TimesFMBaseline)
    x = context(steps=20)
    values = baseline.forecast(x, 19).values  # longer than horizon_length: rolled out on its own predictions
    assert values.shape == (2, 3, 19) and torch.isfinite(values).all()
    # Each channel is an independent series.
    alone = baseline.forecast(x[1:, 2:3], 19).values
    torch.testing.assert_close(values[1:, 2:3], alone, rtol=1e-4, atol=1e-5)
