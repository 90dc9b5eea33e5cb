"""`ForecastMixin`: the one `forecast` entry point; a family implements `_forecast` only."""

from __future__ import annotations

import inspect

import torch
from transformers import GenerationConfig, LogitsProcessorList

from .outputs import ForecastOutput
from .sampling import build_logits_processor, resolve_generation_config

# Sampling settings belong in a GenerationConfig; passed as keywords they get a TypeError that says so.
_GENERATION_FIELDS = ("do_sample", "temperature", "top_k", "top_p", "min_p", "use_cache", "max_new_tokens")
# What `forecast` itself passes to `_forecast`; every other parameter of `_forecast` is a keyword users may pass.
_CORE_ARGUMENTS = ("input_values", "horizon", "generation_config", "logits_processor", "progress")


class ForecastMixin:
    """Adds `forecast(input_values, horizon, generation_config=None, **sensor_metadata) -> ForecastOutput`.

    The family implements
    `_forecast(self, input_values, horizon, generation_config, logits_processor, *, progress, **sensor_metadata)`
    returning a `ForecastOutput` whose `values` are `(B, C, horizon)`. It receives a validated copy of the
    generation config and the processors to pass to `sampling.choose_next`; it runs in eval mode under
    `torch.no_grad`. The keywords its signature names (sensor metadata, family options) are the ones `forecast`
    accepts; any other raises `TypeError`.
    """

    # Converted models whose sampling must follow brain-gen's top-p rule set this to True.
    forecast_reference_top_p: bool = False

    def forecast(
        self,
        input_values: torch.Tensor,
        horizon: int,
        generation_config: GenerationConfig | None = None,
        *,
        logits_processor: LogitsProcessorList | list | None = None,
        progress: bool | None = None,
        **sensor_metadata,
    ) -> ForecastOutput:
        """Predict the `horizon` samples that follow `input_values`.

        Args:
            input_values: the context, in the layout and units `forward` reads (usually `(B, C, T)`).
            horizon: number of future samples (of the model's signal) to predict.
            generation_config: greedy by default (the model's own `generation_config` if it has one);
                `GenerationConfig(do_sample=True, temperature=..., top_k=..., top_p=..., min_p=...)` samples,
                seeded by `transformers.set_seed` / `torch.manual_seed`; `use_cache=False` recomputes the
                context at every step where the family keeps a cache.
            logits_processor: extra transformers logits processors, applied before the sampling warpers.
            progress: a tqdm bar over the steps; `None` shows it only for long forecasts in a terminal or notebook.
            sensor_metadata: what the family needs besides the signal (`channel_names`, `pos`, ...).

        Returns:
            `ForecastOutput` with `values` `(B, C, horizon)` (plus `codes` / `tokens` where the model has them).
        """
        if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
            raise ValueError(f"horizon must be a positive int (future samples of the model's signal), got {horizon!r}")
        self._check_forecast_kwargs(sensor_metadata)
        generation_config = resolve_generation_config(self, generation_config)
        processors = build_logits_processor(
            generation_config, logits_processor, reference_top_p=self.forecast_reference_top_p
        )
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                output = self._forecast(
                    input_values, horizon, generation_config, processors, progress=progress, **sensor_metadata
                )
        finally:
            self.train(was_training)
        self._check_forecast_output(output, input_values, horizon)
        return output

    def _forecast(
        self, input_values, horizon, generation_config, logits_processor, *, progress, **sensor_metadata
    ) -> ForecastOutput:
        raise NotImplementedError(f"{type(self).__name__} does not implement _forecast")

    def _forecast_channels(self, input_values) -> int | None:
        """Channels the forecast must have: those of a `(B, C, T)` input; families with another layout override."""
        if isinstance(input_values, torch.Tensor) and input_values.ndim == 3:
            return input_values.shape[1]
        return None

    def _check_forecast_kwargs(self, kwargs: dict) -> None:
        parameters = inspect.signature(self._forecast).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            return
        accepted = [
            name
            for name, p in parameters.items()
            if name not in _CORE_ARGUMENTS
            and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        ]
        unknown = sorted(set(kwargs) - set(accepted))
        if not unknown:
            return
        hint = ""
        if any(name in _GENERATION_FIELDS for name in unknown):
            hint = "; sampling settings go in generation_config=GenerationConfig(do_sample=True, ...)"
        raise TypeError(
            f"{type(self).__name__}.forecast() got unexpected keyword argument(s) "
            f"{', '.join(map(repr, unknown))} (it accepts {', '.join(accepted) or 'no sensor metadata'})"
            f"{hint}"
        )

    def _check_forecast_output(self, output, input_values, horizon: int) -> None:
        name = f"{type(self).__name__}._forecast"
        if not isinstance(output, ForecastOutput) or not isinstance(output.values, torch.Tensor):
            raise TypeError(f"{name} must return a ForecastOutput with `values`, got {type(output).__name__}")
        batch = input_values.shape[0] if isinstance(input_values, torch.Tensor) and input_values.ndim else None
        channels = self._forecast_channels(input_values)
        values = output.values
        if (
            values.ndim != 3
            or values.shape[-1] != horizon
            or (batch is not None and values.shape[0] != batch)
            or (channels is not None and values.shape[1] != channels)
        ):
            raise RuntimeError(
                f"{name} returned values of shape {tuple(values.shape)}; the contract is (B, C, "
                f"horizon) = ({batch}, {channels}, {horizon})"
            )
