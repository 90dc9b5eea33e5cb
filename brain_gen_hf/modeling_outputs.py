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
    hidden_states: with `output_hidden_states=True` (transformers convention) the embedding output, then one
        tensor per layer, each in the logits' layout with the hidden width last; `hidden_states[-1]` is what
        heads on top read. They are the tensors the next layer reads, so `retain_grad()` on them works.
    attentions: with `output_attentions=True`, one `(B', heads, T, T)` map per attention layer (models with
        attention only).
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    embeddings: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class SignalPredictionOutput(ModelOutput):
    """A continuous prediction in signal space (`(B, C, T)`), e.g. one-step-ahead forecasts.

    hidden_states / attentions: with `output_hidden_states=True` / `output_attentions=True`, the transformer's
    input and every layer's output `(B, L, d_model)` / every layer's attention map `(B, heads, L, L)`.
    """

    loss: torch.Tensor | None = None
    prediction: torch.Tensor | None = None
    features: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class BrainClassifierOutput(ModelOutput):
    """Class logits `(B, num_classes)` from a classifier head on top of a base model.

    hidden_states / attentions: the base model's, when asked for (`output_hidden_states` / `output_attentions`).
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    base_output: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class BrainTokenizerOutput(ModelOutput):
    """A brain tokenizer's training forward: the objective, each of its terms, and what was reconstructed.

    loss: `l1 + exp(-pcc) + commit + amp + 0.5 * phi` (requires grad).
    l1, pcc, amp, phi, commit: the terms (detached); ppl: code-usage perplexity (a metric, not in the loss).
    reconstruction: `(B, C, T)` float32 signal; codes: `(B, C', W, Q)` RVQ codes of the input.
    hidden_states: with `output_hidden_states=True`, the encoder's stage outputs, time-major with the width last
        (first convolution first), ending with the latent tokens `(B, C', W, D)` the RVQ quantises.
    attentions: with `output_attentions=True`, the attention maps `(N, heads, queries, keys)` of the families with
        attention (BrainOmni: the latents-over-sensors map, then the sensors-over-latents map).
    """

    loss: torch.Tensor | None = None
    l1: torch.Tensor | None = None
    pcc: torch.Tensor | None = None
    amp: torch.Tensor | None = None
    phi: torch.Tensor | None = None
    commit: torch.Tensor | None = None
    ppl: torch.Tensor | None = None
    reconstruction: torch.Tensor | None = None
    codes: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class BrainTokenizerEncoding(ModelOutput):
    """`encode()` of a brain tokenizer.

    codes: `(B, C', W, Q)` int64: C' latent channels, W token steps, Q RVQ levels.
    embeddings: `(B, C', W, D)` quantised embeddings (sum of the levels' codewords).
    commitment_loss: mean RVQ commitment term.
    """

    codes: torch.Tensor | None = None
    embeddings: torch.Tensor | None = None
    commitment_loss: torch.Tensor | None = None
