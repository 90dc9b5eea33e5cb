"""Forecasters a researcher would compare a brain LM against, under the shared `forecast()` contract.

Each baseline takes a context `(B, C, T)` and a horizon and returns `ForecastOutput(values=(B, C, horizon))`, so
`generate_rollouts` and every analysis treat it exactly like a model. All except TimesFM are closed-form and
deterministic; a sampling `generation_config` is accepted and ignored (there is nothing to sample).

* `ZeroBaseline`: zeros (the mean of a normalised signal).
* `MeanBaseline`: each channel's context mean.
* `PersistenceBaseline`: the last `window` samples of the context (default: `horizon`), repeated.
* `LinearARBaseline(order)`: a per-channel autoregression fitted by least squares on the context, iterated.
* `TimesFMBaseline`: transformers' `TimesFmModelForPrediction`, each channel an independent series; it loads
  only weights that are already on this machine (a folder, or the Hugging Face cache).
"""

from __future__ import annotations

import numbers
from pathlib import Path

import numpy as np
import torch

from ..forecasting import ForecastOutput

DEFAULT_TIMESFM = "google/timesfm-2.0-500m-pytorch"


class BaselineUnavailable(OSError):
    """A baseline that cannot run here (e.g. TimesFM without local weights); the message says why and the fix."""


def check_context(input_values, horizon: int, name: str) -> np.ndarray:
    """`input_values` as a float64 `(B, C, T)` array, or a ValueError naming what is wrong."""
    if isinstance(horizon, bool) or not isinstance(horizon, numbers.Integral) or horizon < 1:
        raise ValueError(f"{name}: horizon must be a positive int (future samples), got {horizon!r}")
    if isinstance(input_values, torch.Tensor):
        array = input_values.detach().cpu().double().numpy()
    else:
        array = np.asarray(input_values, dtype=np.float64)
    if array.ndim != 3 or 0 in array.shape:
        raise ValueError(f"{name}: input_values must be a non-empty (B, C, T) signal, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(
            f"{name}: input_values hold {int((~np.isfinite(array)).sum())} NaN/inf values; clean the context first"
        )
    return array


def _output(values: np.ndarray) -> ForecastOutput:
    return ForecastOutput(values=torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32)))


class ZeroBaseline:
    """Predicts zeros: on z-scored data, the signal's mean."""

    name = "zero"

    def forecast(self, input_values, horizon: int, generation_config=None, **sensor_metadata) -> ForecastOutput:
        batch, channels, _ = check_context(input_values, horizon, type(self).__name__).shape
        return _output(np.zeros((batch, channels, horizon)))


class MeanBaseline:
    """Predicts each channel's mean over the context."""

    name = "mean"

    def forecast(self, input_values, horizon: int, generation_config=None, **sensor_metadata) -> ForecastOutput:
        context = check_context(input_values, horizon, type(self).__name__)
        mean = context.mean(axis=-1, keepdims=True)
        return _output(np.repeat(mean, horizon, axis=-1))


class PersistenceBaseline:
    """Repeats the last `window` samples of the context (default: the horizon itself, capped at the context), so
    a signal with period `window` is continued exactly."""

    name = "persistence"

    def __init__(self, window: int | None = None):
        if window is not None and (isinstance(window, bool) or not isinstance(window, numbers.Integral) or window < 1):
            raise ValueError(
                f"PersistenceBaseline: window must be a positive int or None (the horizon), got {window!r}"
            )
        self.window = window

    def forecast(self, input_values, horizon: int, generation_config=None, **sensor_metadata) -> ForecastOutput:
        context = check_context(input_values, horizon, type(self).__name__)
        period = min(self.window or horizon, context.shape[-1])
        last = context[..., -period:]
        repeats = -(-horizon // period)
        return _output(np.tile(last, (1, 1, repeats))[..., :horizon])


class LinearARBaseline:
    """Per-channel AR(`order`) model `x[t] = c + sum_k a_k x[t-k]`, fitted by least squares on each context
    separately, then iterated on its own predictions over the horizon.

    `ridge` adds `ridge * I` to the normal equations (0: plain least squares); `intercept=False` fits no `c`.
    """

    name = "ar"

    def __init__(self, order: int = 8, *, ridge: float = 0.0, intercept: bool = True):
        if isinstance(order, bool) or not isinstance(order, numbers.Integral) or order < 1:
            raise ValueError(f"LinearARBaseline: order must be a positive int, got {order!r}")
        if not isinstance(ridge, numbers.Real) or not np.isfinite(ridge) or ridge < 0:
            raise ValueError(f"LinearARBaseline: ridge must be a non-negative number, got {ridge!r}")
        self.order, self.ridge, self.intercept = int(order), float(ridge), bool(intercept)

    def fit(self, context: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Coefficients `(B, C, order)` (`[..., k]` multiplies `x[t-1-k]`) and intercepts `(B, C)` of a
        float `(B, C, T)` context."""
        context = np.asarray(context, dtype=np.float64)
        batch, channels, steps = context.shape
        p = self.order
        n_rows = steps - p
        n_params = p + int(self.intercept)
        if n_rows < n_params:
            raise ValueError(
                f"LinearARBaseline: an AR({p}) fit needs at least {p + n_params} context samples, got {steps}; "
                "use a longer context or a lower order"
            )
        series = context.reshape(batch * channels, steps)
        # Row i predicts x[p + i] from x[p + i - 1], ..., x[i] (lag 1 first).
        lags = np.stack([series[:, p - 1 - k : steps - 1 - k] for k in range(p)], axis=-1)  # (N, rows, p)
        if self.intercept:
            lags = np.concatenate([lags, np.ones(lags.shape[:2] + (1,))], axis=-1)
        targets = series[:, p:]
        gram = np.einsum("nri,nrj->nij", lags, lags) + self.ridge * np.eye(n_params)
        rhs = np.einsum("nri,nr->ni", lags, targets)
        # lstsq per series copes with a rank-deficient design (a flat channel) where solve would fail.
        params = np.stack([np.linalg.lstsq(g, r, rcond=None)[0] for g, r in zip(gram, rhs)])
        coefs = params[:, :p].reshape(batch, channels, p)
        intercept = params[:, p].reshape(batch, channels) if self.intercept else np.zeros((batch, channels))
        return coefs, intercept

    def forecast(self, input_values, horizon: int, generation_config=None, **sensor_metadata) -> ForecastOutput:
        context = check_context(input_values, horizon, type(self).__name__)
        coefs, intercept = self.fit(context)
        history = list(np.moveaxis(context[..., -self.order :][..., ::-1], -1, 0))  # newest first: lag 1, 2, ...
        out = np.empty(context.shape[:2] + (horizon,))
        for t in range(horizon):
            lagged = np.stack(history[: self.order], axis=-1)  # (B, C, order)
            out[..., t] = intercept + np.einsum("bck,bck->bc", coefs, lagged)
            history.insert(0, out[..., t])
            del history[self.order :]
        return _output(out)


class TimesFMBaseline:
    """transformers' `TimesFmModelForPrediction`, one univariate series per channel (the point forecast, no
    sampling). Horizons longer than the model's `horizon_length` are rolled out on its own predictions; the
    context is cut to the model's `context_length`.

    `model`: a loaded `TimesFmModelForPrediction`, a folder, or a Hub id already in the local cache (it is
    loaded with `local_files_only=True`; nothing is downloaded). Use `TimesFMBaseline.load` to get a
    `BaselineUnavailable` that says how to fix a missing model.
    """

    name = "timesfm"

    def __init__(self, model, *, device: str | torch.device | None = None, batch_size: int = 256):
        if isinstance(model, (str, Path)):
            model = self.load_model(model)
        self.model = model.eval()
        if device is not None:
            self.model.to(device)
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise ValueError(f"TimesFMBaseline: batch_size must be a positive int, got {batch_size!r}")
        self.batch_size = int(batch_size)

    @staticmethod
    def load_model(model_id_or_path: str | Path):
        """The model from a folder or the local Hugging Face cache, or `BaselineUnavailable` saying why not."""
        from transformers import TimesFmModelForPrediction

        name = str(model_id_or_path)
        try:
            return TimesFmModelForPrediction.from_pretrained(name, local_files_only=True)
        except OSError as err:
            if isinstance(model_id_or_path, Path) or name.startswith((".", "/", "~")) or Path(name).exists():
                where = f"the folder {name} does not hold a saved TimesFmModelForPrediction"
                fix = "pass the folder `TimesFmModelForPrediction.save_pretrained` wrote"
            else:
                where = f"{name!r} is not in the local Hugging Face cache (nothing is downloaded during evaluation)"
                fix = f"download it once with `hf download {name}`, or pass a local folder"
            raise BaselineUnavailable(f"TimesFM baseline skipped: {where}; {fix}") from err

    @classmethod
    def load(cls, model_id_or_path: str | Path = DEFAULT_TIMESFM, **kwargs) -> TimesFMBaseline:
        return cls(cls.load_model(model_id_or_path), **kwargs)

    def forecast(self, input_values, horizon: int, generation_config=None, **sensor_metadata) -> ForecastOutput:
        context = check_context(input_values, horizon, type(self).__name__)
        batch, channels, _ = context.shape
        series = torch.from_numpy(context.reshape(batch * channels, -1)).float()
        config = self.model.config
        device = next(self.model.parameters()).device
        predictions = []
        for start in range(0, series.shape[0], self.batch_size):
            rows = series[start : start + self.batch_size]
            done = []
            with torch.no_grad():
                while sum(chunk.shape[-1] for chunk in done) < horizon:
                    history = torch.cat([rows, *done], dim=-1)[:, -config.context_length :].to(device)
                    output = self.model(past_values=list(history), freq=[0] * history.shape[0])
                    done.append(output.mean_predictions.float().cpu()[:, : config.horizon_length])
            predictions.append(torch.cat(done, dim=-1)[:, :horizon])
        values = torch.cat(predictions).reshape(batch, channels, horizon)
        return ForecastOutput(values=values.contiguous())


BASELINES = {"zero": ZeroBaseline, "mean": MeanBaseline, "persistence": PersistenceBaseline, "ar": LinearARBaseline}
ALL_BASELINES = (*BASELINES, "timesfm")


class Baselines(dict):
    """`name -> forecaster`, plus `skipped`: `name -> message` for baselines that cannot run here."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.skipped: dict[str, str] = {}


def build_baselines(names, **options) -> Baselines:
    """Forecasters for `names` (from `ALL_BASELINES`); `options[name]` is a dict of that baseline's keyword
    arguments, e.g. `build_baselines(["ar", "timesfm"], ar={"order": 4}, timesfm={"model": "/path"})`.

    A baseline that cannot run here (TimesFM without local weights) is left out and its message put in
    `result.skipped[name]`, for the report to record; an unknown name or option raises ValueError.
    """
    if isinstance(names, str):
        names = [names]
    names = list(names)
    unknown = [n for n in names if n not in ALL_BASELINES]
    if unknown:
        raise ValueError(f"unknown baseline(s) {unknown}; choose from {list(ALL_BASELINES)}")
    stray = sorted(set(options) - set(names))
    if stray:
        raise ValueError(f"options given for baseline(s) {stray} that are not in names {names}")
    result = Baselines()
    for name in names:
        kwargs = dict(options.get(name) or {})
        if name == "timesfm":
            model = kwargs.pop("model", kwargs.pop("model_id", DEFAULT_TIMESFM))
            try:
                result[name] = (
                    TimesFMBaseline.load(model, **kwargs)
                    if isinstance(model, (str, Path))
                    else (TimesFMBaseline(model, **kwargs))
                )
            except BaselineUnavailable as err:
                result.skipped[name] = str(err)
            continue
        try:
            result[name] = BASELINES[name](**kwargs)
        except TypeError as err:
            raise ValueError(f"bad options for baseline {name!r}: {err}") from None
    return result
