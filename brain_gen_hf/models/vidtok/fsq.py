"""Finite scalar quantisation (Mentzer et al. 2023, arXiv 2309.15505) with the reference's auxiliary losses.

Each latent dimension d is bounded with a shifted tanh and rounded to one of `levels[d]` values in [-1, 1]
(straight-through gradients); a code's index is its mixed-radix number over the dimensions. The auxiliary loss is

* a factorised code-entropy term: per dimension, a softmax over that dimension's level values (logits
  `2 * inv_temperature * z_d * value`); per-token entropy minus `diversity_gamma` times the entropy of the batch
  mean. Kept from the reference, where it replaces the full `prod(levels)` softmax of the upstream code (a
  mean-field approximation, far cheaper for 8^6 codes);
* a commitment term `mse(z, codes)`.

The entropy weight is annealed over annealing steps: from `factor * weight` down to `weight`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


def round_straight_through(z: torch.Tensor) -> torch.Tensor:
    return z + (z.round() - z).detach()


def _entropy(prob: torch.Tensor) -> torch.Tensor:
    return (-prob * prob.clamp(min=1e-5).log()).sum(dim=-1)


class FiniteScalarQuantizer(nn.Module):
    """FSQ over channel-first latents `(B, dim, T, H, W)`.

    The level tables are built from `levels` on the input's device at each call (no buffers: nothing to save, and a
    model built on the meta device needs no re-initialisation for them).
    """

    def __init__(
        self,
        levels: list[int],
        dim: int,
        num_codebooks: int = 1,
        entropy_loss_weight: float = 0.0,
        entropy_loss_annealing_steps: int = 0,
        entropy_loss_annealing_factor: float = 1.0,
        commitment_loss_weight: float = 0.0,
        diversity_gamma: float = 1.0,
        inv_temperature: float = 100.0,
    ):
        super().__init__()
        self.levels = list(levels)
        self.codebook_dim = len(levels)
        self.num_codebooks = num_codebooks
        self.codebook_size = math.prod(levels)
        self.entropy_loss_weight = entropy_loss_weight
        self.entropy_loss_annealing_steps = entropy_loss_annealing_steps
        self.entropy_loss_annealing_factor = entropy_loss_annealing_factor
        self.commitment_loss_weight = commitment_loss_weight
        self.diversity_gamma = diversity_gamma
        self.inv_temperature = inv_temperature
        effective = self.codebook_dim * num_codebooks
        self.project_in = nn.Linear(dim, effective) if dim != effective else nn.Identity()
        self.project_out = nn.Linear(effective, dim) if dim != effective else nn.Identity()

    # ------------------------------------------------------------ tables
    def _levels(self, device) -> torch.Tensor:
        return torch.tensor(self.levels, dtype=torch.int32, device=device)

    def _basis(self, device) -> torch.Tensor:
        return torch.cumprod(torch.tensor([1, *self.levels[:-1]], device=device), dim=0).to(torch.int32)

    def _level_values(self, device) -> tuple[torch.Tensor, torch.Tensor]:
        """`(values (d, max L), mask (d, max L))`: each dimension's normalised code values, padded."""
        width = max(self.levels)
        values = torch.zeros(self.codebook_dim, width, device=device)
        mask = torch.zeros(self.codebook_dim, width, dtype=torch.bool, device=device)
        for d, n in enumerate(self.levels):
            half = max(n // 2, 1)
            values[d, :n] = (torch.arange(n, dtype=torch.float32, device=device) - half) / float(half)
            mask[d, :n] = True
        return values, mask

    # ------------------------------------------------------------ codes
    def quantize(self, z: torch.Tensor) -> torch.Tensor:
        """`(..., d)` -> normalised codes in [-1, 1] (straight-through gradients)."""
        levels = self._levels(z.device)
        half_l = (levels - 1) * (1 + 1e-3) / 2
        offset = torch.where(levels % 2 == 0, 0.5, 0.0)
        shift = (offset / half_l).atanh()
        bounded = (z + shift).tanh() * half_l - offset
        return round_straight_through(bounded) / (levels // 2)

    def codes_to_indices(self, codes: torch.Tensor) -> torch.Tensor:
        half = self._levels(codes.device) // 2
        return ((codes * half + half) * self._basis(codes.device)).sum(dim=-1).to(torch.int32)

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """`(...)` code indices -> normalised codes `(..., d)`."""
        levels = self._levels(indices.device)
        half = levels // 2
        digits = (indices.unsqueeze(-1) // self._basis(indices.device)) % levels
        return (digits - half) / half

    def indices_to_latent(self, indices: torch.Tensor) -> torch.Tensor:
        """Codes `(B, T, H, W)` (or `(B, T, H, W, c)` with several codebooks) -> latent `(B, dim, T, H, W)`."""
        if self.num_codebooks == 1:
            indices = indices.unsqueeze(-1)
        codes = rearrange(self.indices_to_codes(indices), "... c d -> ... (c d)")
        return self.project_out(codes).movedim(-1, 1)

    def entropy_weight(self, n_steps: int) -> float:
        if n_steps >= self.entropy_loss_annealing_steps:
            return self.entropy_loss_weight
        start = self.entropy_loss_annealing_factor * self.entropy_loss_weight
        return start - (n_steps / self.entropy_loss_annealing_steps) * (start - self.entropy_loss_weight)

    # ------------------------------------------------------------ forward
    def forward(self, z: torch.Tensor, n_steps: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`z (B, dim, T, H, W)` -> `(quantised latent (B, dim, T, H, W), codes, aux_loss)`."""
        batch, _, *grid = z.shape
        tokens = z.flatten(2).transpose(1, 2)  # (B, N, dim)
        tokens = self.project_in(tokens)
        tokens = rearrange(tokens, "b n (c d) -> b n c d", c=self.num_codebooks)
        with torch.autocast(tokens.device.type, enabled=False):  # quantise and score in float32
            dtype = tokens.dtype
            original = tokens.float()
            codes = self.quantize(original)
            indices = self.codes_to_indices(codes)
            zero = original.new_zeros(())
            entropy_aux = commitment = zero
            if self.entropy_loss_weight > 0:
                entropy_aux = self._entropy_aux(original)
            if self.commitment_loss_weight > 0:
                commitment = F.mse_loss(original, codes.detach())
            codes = codes.to(dtype)
        out = self.project_out(rearrange(codes, "b n c d -> b n (c d)"))
        out = out.transpose(1, 2).reshape(batch, -1, *grid)
        indices = indices.reshape(batch, *grid, self.num_codebooks)
        if self.num_codebooks == 1:
            indices = indices.squeeze(-1)
        aux_loss = entropy_aux * self.entropy_weight(n_steps) + commitment * self.commitment_loss_weight
        return out, indices, aux_loss

    def _entropy_aux(self, z: torch.Tensor) -> torch.Tensor:
        values, mask = self._level_values(z.device)
        logits = (2.0 * float(self.inv_temperature)) * z.unsqueeze(-1) * values.view(1, 1, 1, *values.shape)
        logits = logits.masked_fill(~mask.view(1, 1, 1, *mask.shape), torch.finfo(logits.dtype).min)
        prob = logits.softmax(dim=-1)  # (b, n, c, d, L)
        per_sample = _entropy(prob).sum(dim=-1).mean()
        codebook = _entropy(prob.mean(dim=(0, 1))).sum(dim=-1).mean()
        return per_sample - self.diversity_gamma * codebook
