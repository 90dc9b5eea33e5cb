"""`ModelOutput` dataclasses shared by the model families (transformers conventions: `loss` first)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers.utils import ModelOutput


@dataclass
class TokenPredictionOutput(ModelOutput):
    """Next-token logits over a quantised signal.

    loss: cross-entropy over the vocabulary when `labels` are given.
    logits: `(..., T, V)`; position t predicts token t+1.
    embeddings: the embedded input (what gradient-causality checks differentiate against).
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    embeddings: torch.Tensor | None = None


@dataclass
class SignalPredictionOutput(ModelOutput):
    """A continuous prediction in signal space (`(B, C, T)`), e.g. one-step-ahead forecasts."""

    loss: torch.Tensor | None = None
    prediction: torch.Tensor | None = None
    features: torch.Tensor | None = None


@dataclass
class BrainClassifierOutput(ModelOutput):
    """Class logits `(B, num_classes)` from a classifier head on top of a base model."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    base_output: torch.Tensor | None = None
