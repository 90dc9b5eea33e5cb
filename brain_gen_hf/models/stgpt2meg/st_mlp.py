"""The MLPs of STGPT2MEG blocks: a GELU MLP and the gpt-oss mixture of experts. Both normalise their input with
an RMSNorm and add their own residual (as the reference's), so a block's `x + mlp(x)` counts the input twice.

Parameter names (`norm`, `fc1`, `fc2`; `gate`, `mlp1_weight`, `mlp1_bias`, `mlp2_weight`, `mlp2_bias`) follow the
reference.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import initialization as init

from .configuration_stgpt2meg import STGPT2MEGConfig


class STFeedForward(nn.Module):
    """`x + Drop(fc2(Drop(GELU(fc1(RMSNorm(x))))))`."""

    def __init__(self, config: STGPT2MEGConfig):
        super().__init__()
        hidden = config.d_ff or 4 * config.d_model
        self.norm = nn.RMSNorm(config.d_model)
        self.fc1 = nn.Linear(config.d_model, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, config.d_model)
        self.drop = nn.Dropout(config.mlp_dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop(self.fc2(self.drop(self.act(self.fc1(self.norm(x))))))


def clamped_swiglu(x: torch.Tensor, limit: float, alpha: float = 1.702) -> torch.Tensor:
    """gpt-oss SwiGLU over interleaved columns: even columns gate (clamped above at `limit`), odd ones are the
    linear part (clamped to +-limit, plus one)."""
    gate, linear = x[..., 0::2].clamp(max=limit), x[..., 1::2].clamp(-limit, limit)
    return gate * torch.sigmoid(alpha * gate) * (linear + 1)


class STRouter(nn.Linear):
    """The expert router, initialised N(0, 1/sqrt(d_model)) with a zero bias (the reference's init)."""

    def reset_brain_gen_parameters(self) -> None:
        init.normal_(self.weight, std=1.0 / math.sqrt(self.in_features))
        init.zeros_(self.bias)


class STMixtureOfExperts(nn.Module):
    """gpt-oss MoE: each token goes through its `experts_per_token` best experts (softmax over their router
    logits), `x + sum_k w_k * (W2_k swiglu(W1_k RMSNorm(x) + b1_k) + b2_k)`."""

    def __init__(self, config: STGPT2MEGConfig):
        super().__init__()
        width, hidden, experts = config.d_model, config.moe_intermediate_size or config.d_model, config.num_experts
        self.experts_per_token = config.experts_per_token
        self.swiglu_limit = config.swiglu_limit
        self.norm = nn.RMSNorm(width)
        self.gate = STRouter(width, experts)
        self.mlp1_weight = nn.Parameter(torch.empty(experts, 2 * hidden, width))
        self.mlp1_bias = nn.Parameter(torch.empty(experts, 2 * hidden))
        self.mlp2_weight = nn.Parameter(torch.empty(experts, width, hidden))
        self.mlp2_bias = nn.Parameter(torch.empty(experts, width))
        self.reset_brain_gen_parameters()

    def reset_brain_gen_parameters(self) -> None:
        init.normal_(self.mlp1_weight, std=1.0 / math.sqrt(self.mlp1_weight.shape[-1]))
        init.zeros_(self.mlp1_bias)
        init.normal_(self.mlp2_weight, std=1.0 / math.sqrt(self.mlp2_weight.shape[-1]))
        init.zeros_(self.mlp2_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.norm(x).reshape(-1, x.shape[-1])
        top = torch.topk(self.gate(tokens), k=self.experts_per_token, dim=-1, sorted=True)
        weights = top.values.softmax(dim=-1)
        mixed = torch.zeros_like(tokens)
        # One batched matmul per expert over the tokens routed to it (no per-token weight copies).
        for expert in range(self.mlp1_weight.shape[0]):
            rows, ranks = (top.indices == expert).nonzero(as_tuple=True)
            if rows.numel() == 0:
                continue
            hidden = tokens[rows] @ self.mlp1_weight[expert].T + self.mlp1_bias[expert]
            out = clamped_swiglu(hidden, self.swiglu_limit) @ self.mlp2_weight[expert].T + self.mlp2_bias[expert]
            mixed = mixed.index_add(0, rows, out * weights[rows, ranks].unsqueeze(-1))
        return x + mixed.view_as(x)


def build_mlp(config: STGPT2MEGConfig) -> nn.Module:
    return STMixtureOfExperts(config) if config.mlp_type == "moe" else STFeedForward(config)
