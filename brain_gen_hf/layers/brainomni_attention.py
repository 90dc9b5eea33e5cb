"""BrainOmni's sensor embedding and sensor<->latent cross-attention (arXiv 2505.18185, as in brain-gen).

Submodule names match the reference (`aggregate_mlp.layer.{0,2}`, `backwardsolution.v`, `forwardsolution.kv`,
...) so converted checkpoints load unchanged.
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


def _heads(x: torch.Tensor, n_head: int) -> torch.Tensor:
    return rearrange(x, "B T (H D) -> B H T D", H=n_head)


class BackwardSolution(nn.Module):
    """Sensors -> latents: learned latent queries attend over the sensors (keys given, values projected)."""

    def __init__(self, dim: int, n_head: int, dropout: float = 0.0):
        super().__init__()
        self.n_head, self.dropout = n_head, dropout
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        out = F.scaled_dot_product_attention(
            _heads(queries, self.n_head),
            _heads(keys, self.n_head),
            _heads(self.v(x), self.n_head),
            dropout_p=self.dropout if self.training else 0.0,
        )
        return self.proj(rearrange(out, "B H T D -> B T (H D)"))


class ForwardSolution(nn.Module):
    """Latents -> sensors: sensor embeddings query the latents (keys and values projected from them)."""

    def __init__(self, dim: int, n_head: int, dropout: float = 0.0):
        super().__init__()
        self.dim, self.n_head, self.dropout = dim, n_head, dropout
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, sensor_embedding: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        k, v = self.kv(latents).split(self.dim, dim=-1)
        out = F.scaled_dot_product_attention(
            _heads(sensor_embedding, self.n_head),
            _heads(k, self.n_head),
            _heads(v, self.n_head),
            dropout_p=self.dropout if self.training else 0.0,
        )
        return self.proj(rearrange(out, "B H T D -> B T (H D)"))
