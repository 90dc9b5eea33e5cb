"""One forecast contract for every model that predicts the future of a signal.

A family mixes `ForecastMixin` into its model and implements `_forecast`; sampling follows a transformers
`GenerationConfig` through transformers' logits processors (see `sampling`).
"""

from .mixin import ForecastMixin
from .outputs import ForecastOutput
from .sampling import (
    LONG_FORECAST,
    ReferenceTopPLogitsWarper,
    build_logits_processor,
    check_logits,
    choose_next,
    forecast_progress,
    reference_sample,
    resolve_generation_config,
)

__all__ = [
    "LONG_FORECAST",
    "ForecastMixin",
    "ForecastOutput",
    "ReferenceTopPLogitsWarper",
    "build_logits_processor",
    "check_logits",
    "choose_next",
    "forecast_progress",
    "reference_sample",
    "resolve_generation_config",
]
