"""Pre-norm transformer pieces from brain-gen's generic layers (`AttentionBlock`, `MLP`, `TransformerBlock`).

Both sub-blocks normalise with `nn.RMSNorm` (PyTorch's default eps) and add their own residual.
Submodule names (`attn.attn`, `attn.norm`, `mlp.norm`, `mlp.fc1`, `mlp.fc2`) follow the reference.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_layers import GradientCheckpointingLayer

from .attention import MultiHeadAttention


class AttentionBlock(nn.Module):
    """`x + attention(RMSNorm(x))` over `(B, L, hidden_size)`."""

    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        rope: bool = False,
        rope_base: float = 10000.0,
    ):
        super().__init__()
        self.norm = nn.RMSNorm(hidden_size)
        self.attn = MultiHeadAttention(
            hidden_size, num_heads, dropout=dropout, bias=bias, rope=rope, rope_base=rope_base
        )

    def forward(
        self,
        x: torch.Tensor,
        is_causal: bool = False,
        output_attentions: bool = False,
        attn_implementation: str | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        attended = self.attn(
            self.norm(x),
            is_causal=is_causal,
            output_attentions=output_attentions,
            attn_implementation=attn_implementation,
        )
        if output_attentions:
            return x + attended[0], attended[1]
        return x + attended


class MLP(nn.Module):
    """`x + dropout(fc2(dropout(GELU(fc1(RMSNorm(x))))))`."""

    def __init__(self, hidden_size: int, intermediate_size: int | None = None, dropout: float = 0.0):
        super().__init__()
        intermediate_size = intermediate_size or 4 * hidden_size
        self.norm = nn.RMSNorm(hidden_size)
        self.fc1 = nn.Linear(hidden_size, intermediate_size)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(intermediate_size, hidden_size)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop(self.fc2(self.drop(self.act(self.fc1(self.norm(x))))))


class TransformerBlock(GradientCheckpointingLayer):
    """Attention block then MLP, each pre-normed with its own residual (recomputed in the backward pass after
    `model.gradient_checkpointing_enable()`)."""

    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        *,
        attn_dropout: float = 0.0,
        attn_bias: bool = True,
        rope: bool = False,
        rope_base: float = 10000.0,
        intermediate_size: int | None = None,
        mlp_dropout: float = 0.0,
    ):
        super().__init__()
        self.attn = AttentionBlock(
            hidden_size, num_heads, dropout=attn_dropout, bias=attn_bias, rope=rope, rope_base=rope_base
        )
        self.mlp = MLP(hidden_size, intermediate_size, dropout=mlp_dropout)

    def forward(
        self,
        x: torch.Tensor,
        is_causal: bool = False,
        output_attentions: bool = False,
        attn_implementation: str | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """`(B, L, hidden_size)` -> same shape; with `output_attentions=True` also the weights `(B, heads, L, L)`."""
        out = self.attn(
            x, is_causal=is_causal, output_attentions=output_attentions, attn_implementation=attn_implementation
        )
        if output_attentions:
            return self.mlp(out[0]), out[1]
        return self.mlp(out)
