"""Sample-by-sample WaveNet rollout with a streaming convolution cache.

Each gated layer's dilated conv reads its last `causal_left_pad + 1` inputs, so a step only needs those: the
cache keeps them per layer and one new sample costs one output of every layer, independent of the context
length. The state is primed from the last receptive field of the context, which is all the next output sees.
Works for 1-D `(N, E, T)` and 3-D `(N, E, H, W, T)` streams alike (time is last).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _last_steps(x: torch.Tensor, steps: int) -> torch.Tensor:
    """The last `steps` time steps of `x`, zero-padded on the left as the causal convs pad a short input."""
    if x.shape[-1] >= steps:
        return x[..., -steps:]
    return F.pad(x, (steps - x.shape[-1], 0))


class WavenetStream:
    """Rollout state of a WaveNet stack (`layers`, `head`) over embedded inputs.

    `parallel_layers` reproduces the unchained wiring of converted reference checkpoints (every layer reads the
    embeddings). `prime` consumes the context and returns the logits of the next step; `step` consumes one new
    embedded step and returns the logits of the step after it.
    """

    def __init__(self, layers: nn.ModuleList, head: nn.Module, *, parallel_layers: bool, receptive_field: int):
        self.layers, self.head = layers, head
        self.parallel_layers = parallel_layers
        self.receptive_field = receptive_field
        self.inputs: list[torch.Tensor] = []

    def prime(self, embeddings: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        # Outputs at the last step see only the receptive field, so older context changes nothing.
        embeddings = embeddings[..., -self.receptive_field :]
        if cond is not None:
            cond = cond[..., -embeddings.shape[-1] :]
        hidden, skips, self.inputs = embeddings, [], []
        for layer in self.layers:
            layer_input = embeddings if self.parallel_layers else hidden
            self.inputs.append(_last_steps(layer_input, layer.causal_left_pad + 1))
            hidden, skip = layer(layer_input, cond)
            skips.append(skip[..., -1:])
        return self.head(skips)

    def step(self, embedding: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """`embedding (N, E, ..., 1)`, `cond (N, Cc, ..., 1)` or None -> logits `(N, Q, ..., 1)`."""
        hidden, skips = embedding, []
        for i, layer in enumerate(self.layers):
            layer_input = embedding if self.parallel_layers else hidden
            window = torch.cat([self.inputs[i][..., 1:], layer_input], dim=-1)
            self.inputs[i] = window
            hidden, skip = layer(window, cond, causal_pad=False)
            skips.append(skip)
        return self.head(skips)
