"""STGPT2MEG's input embedding: token + channel (+ per-step condition, + per-example subject), all summed.

Table names (`quant_emb`, `channel_emb`, `cond_emb`, `subject_emb`) follow the reference's `Embeddings`.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import initialization as init

from .configuration_stgpt2meg import STGPT2MEGConfig


class STEmbeddingTable(nn.Embedding):
    """An `nn.Embedding` initialised N(0, 0.02), as every table of the reference's `Embeddings`."""

    def reset_brain_gen_parameters(self) -> None:
        init.normal_(self.weight, mean=0.0, std=0.02)


class STEmbeddings(nn.Module):
    def __init__(self, config: STGPT2MEGConfig):
        super().__init__()
        width = config.d_model
        self.quant_emb = STEmbeddingTable(config.vocab_size, width)
        self.cond_emb = STEmbeddingTable(config.num_classes, width) if config.class_emb else None
        self.channel_emb = STEmbeddingTable(config.num_channels, width)
        self.subject_emb = STEmbeddingTable(config.subjects, width) if config.sub_emb else None

    def forward(
        self,
        input_ids: torch.Tensor,
        channel_ids: torch.Tensor | None = None,
        condition: torch.Tensor | None = None,
        subject_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """`(B, C, T)` ids -> `(B, C, T, d_model)`. `channel_ids (C,)` picks the channel embedding of every row
        (default `0 .. C-1`); `condition (B, 1, T)` adds the condition embedding of each step (id 0 adds nothing);
        `subject_ids (B,)` adds one subject embedding per example."""
        x = self.quant_emb(input_ids)
        if channel_ids is None:
            channel_ids = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = x + self.channel_emb(channel_ids)[:, None, :]
        if self.cond_emb is not None and condition is not None:
            x = x + self.cond_emb(condition) * (condition > 0).unsqueeze(-1).to(x.dtype)
        if self.subject_emb is not None and subject_ids is not None:
            x = x + self.subject_emb(subject_ids)[:, None, None, :]
        return x
