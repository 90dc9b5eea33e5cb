"""VidtokRVQ's quantiser: the shared residual VQ of EMA codebooks (`layers/quantizers.py`) over channel-first
latents `(B, dim, T, H, W)`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...layers.quantizers import ResidualVectorQuantizer
from .configuration_vidtok import VidtokRVQConfig


class VideoResidualQuantizer(nn.Module):
    def __init__(self, config: VidtokRVQConfig):
        super().__init__()
        self.normalize = config.normalize
        self.rvq = ResidualVectorQuantizer(
            config.z_channels,
            config.codebook_dim,
            config.codebook_size,
            config.num_quantizers,
            config.rotation_trick,
            kmeans_iters=config.kmeans_iters,
            init_on_first_forward=config.codebook_init == "kmeans_on_first_forward",
        )

    def _tokens(self, z: torch.Tensor) -> torch.Tensor:
        tokens = z.flatten(2).transpose(1, 2)  # (B, T * H * W, dim)
        return F.normalize(tokens, p=2.0, dim=-1) if self.normalize else tokens

    def forward(self, z: torch.Tensor, n_steps: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`z (B, dim, T, H, W)` -> `(quantised latent, codes (B, T, H, W, Q), mean commitment loss)`.

        In training mode the codebooks are updated (EMA, dead-code replacement). `n_steps` is unused (FSQ's).
        """
        batch, _, *grid = z.shape
        quantized, codes, loss = self.rvq(self._tokens(z))
        return quantized.transpose(1, 2).reshape(batch, -1, *grid), codes.reshape(batch, *grid, -1), loss

    def indices_to_latent(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes `(B, T, H, W, Q)` -> latent `(B, dim, T, H, W)`: the sum of the levels' codewords."""
        return self.rvq.decode(codes).movedim(-1, 1)

    @torch.no_grad()
    def init_codebooks(self, z: torch.Tensor) -> None:
        self.rvq.init_codebooks(self._tokens(z))
