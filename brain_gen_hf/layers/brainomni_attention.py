"""BrainOmni's sensor embedding and sensor<->latent cross-attention (arXiv 2505.18185, as in brain-gen).

Submodule names match the reference (`aggregate_mlp.layer.{0,2}`, `backwardsolution.v`, `forwardsolution.kv`,
...) so converted checkpoints load unchanged. Attention runs through `attend`: PyTorch's SDPA, or the explicit
softmax ("eager", the model's `config._attn_implementation`, or whenever the attention weights are asked for).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from transformers import initialization as init


class RMSNorm(nn.Module):
    """RMS normalisation computed in float32 (`x * rsqrt(mean(x^2) + eps) * weight`), cast back."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def reset_brain_gen_parameters(self) -> None:
        init.ones_(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return (self.weight * x).to(dtype)


class FeedForward(nn.Module):
    """Linear(d, 4d) -> SELU -> Linear(4d, d) -> dropout."""

    def __init__(self, dim: int, dropout: float = 0.0):
        super().__init__()
        self.layer = nn.Sequential(
            nn.Linear(dim, 4 * dim),
            nn.SELU(),
            nn.Linear(4 * dim, dim),
            nn.Dropout(dropout) if dropout else nn.Identity(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class FixedSensorEmbedding(nn.Module):
    """ "Source space": one learned vector per channel slot (channel c of the input uses slot c).

    Positions and types are not used; only the channel count matters (at most `num_sensors`).
    """

    def __init__(self, dim: int, num_sensors: int):
        super().__init__()
        self.num_sensors = num_sensors
        self.embedding = nn.Embedding(num_sensors, dim)
        self.aggregate_mlp = FeedForward(dim)
        self.norm = RMSNorm(dim)

    def forward(self, pos: torch.Tensor, sensor_type: torch.Tensor) -> torch.Tensor:
        batch, channels = pos.shape[:2]
        x = self.embedding(torch.arange(channels, device=pos.device)).unsqueeze(0).repeat(batch, 1, 1)
        return self.norm(x + self.aggregate_mlp(x))


class SensorEmbedding(nn.Module):
    """ "Sensor space": MLP of the sensor position/orientation `(B, C, n_pos)` plus a sensor-type embedding."""

    def __init__(self, dim: int, n_pos: int = 6, n_type: int = 3):
        super().__init__()
        self.n_pos, self.n_type = n_pos, n_type
        self.sensor_embedding_layer = nn.Embedding(n_type, dim)
        self.pos_embedding_layer = nn.Sequential(nn.Linear(n_pos, dim // 2), nn.SELU(), nn.Linear(dim // 2, dim))
        self.aggregate_mlp = FeedForward(dim)
        self.norm = RMSNorm(dim)

    def forward(self, pos: torch.Tensor, sensor_type: torch.Tensor) -> torch.Tensor:
        x = self.pos_embedding_layer(pos)
        x = x + self.sensor_embedding_layer(sensor_type).type_as(x)
        return self.norm(x + self.aggregate_mlp(x))


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    attn_mask: torch.Tensor | None = None,
    implementation: str | None = None,
    output_attentions: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`(out (N, H, Tq, hd), weights (N, H, Tq, Tk) or None)` for `q (N, H, Tq, hd)`, `k`, `v (N, H, Tk, hd)`.

    `attn_mask` is boolean (True = attend), `is_causal` the top-left causal mask. SDPA unless `implementation` is
    "eager" or the weights are asked for; the explicit path takes the softmax in float32 and returns the weights
    after dropout (what multiplied the values).
    """
    if implementation != "eager" and not output_attentions:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal)
        return out, None
    # q and k each scaled by sqrt(1 / sqrt(hd)), as SDPA's math backend does: eager and SDPA then round alike.
    scale = q.shape[-1] ** -0.25
    scores = torch.matmul(q * scale, (k * scale).transpose(-2, -1))
    if is_causal:
        attn_mask = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool, device=q.device).tril()
    if attn_mask is not None:
        scores = scores.masked_fill(~attn_mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
    if dropout_p:
        weights = F.dropout(weights, p=dropout_p)
    return torch.matmul(weights, v), weights


def _heads(x: torch.Tensor, n_head: int) -> torch.Tensor:
    return rearrange(x, "B T (H D) -> B H T D", H=n_head)


class BackwardSolution(nn.Module):
    """Sensors -> latents: learned latent queries attend over the sensors (keys given, values projected)."""

    def __init__(self, dim: int, n_head: int, dropout: float = 0.0):
        super().__init__()
        self.n_head, self.dropout = n_head, dropout
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(
        self,
        queries: torch.Tensor,
        keys: torch.Tensor,
        x: torch.Tensor,
        implementation: str | None = None,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`queries (N, Q, D)`, `keys`/`x (N, S, D)` -> `(out (N, Q, D), weights (N, H, Q, S) or None)`."""
        out, weights = attend(
            _heads(queries, self.n_head),
            _heads(keys, self.n_head),
            _heads(self.v(x), self.n_head),
            dropout_p=self.dropout if self.training else 0.0,
            implementation=implementation,
            output_attentions=output_attentions,
        )
        return self.proj(rearrange(out, "B H T D -> B T (H D)")), weights


class ForwardSolution(nn.Module):
    """Latents -> sensors: sensor embeddings query the latents (keys and values projected from them)."""

    def __init__(self, dim: int, n_head: int, dropout: float = 0.0):
        super().__init__()
        self.dim, self.n_head, self.dropout = dim, n_head, dropout
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(
        self,
        sensor_embedding: torch.Tensor,
        latents: torch.Tensor,
        implementation: str | None = None,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`sensor_embedding (N, C, D)`, `latents (N, L, D)` -> `(out (N, C, D), weights (N, H, C, L) or None)`."""
        k, v = self.kv(latents).split(self.dim, dim=-1)
        out, weights = attend(
            _heads(sensor_embedding, self.n_head),
            _heads(k, self.n_head),
            _heads(v, self.n_head),
            dropout_p=self.dropout if self.training else 0.0,
            implementation=implementation,
            output_attentions=output_attentions,
        )
        return self.proj(rearrange(out, "B H T D -> B T (H D)")), weights
