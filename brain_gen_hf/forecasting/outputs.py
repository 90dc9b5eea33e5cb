"""`ForecastOutput`: what every forecasting family's `forecast` returns."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers.utils import ModelOutput


@dataclass
class ForecastOutput(ModelOutput):
    """The future of a signal, `horizon` samples past the end of the input.

    values: `(B, C, horizon)` float, in the units the model was trained on (what `forward` reads).
    codes: the model's discrete predictions for the horizon where it has them (mu-law bins, RVQ codes); the
        layout is the family's (documented on its `forecast`).
    tokens: the generated language-model token ids, for models that roll out a token sequence.
    """

    values: torch.Tensor | None = None
    codes: torch.Tensor | None = None
    tokens: torch.Tensor | None = None
