"""NTD's denoiser, "AdaConv": per-channel hidden groups, structured long convolutions (SGConv, Li et al. 2022)
modulated by the diffusion step (adaLN, as in DiT), everything causal (left padding, per-step channel norm).

Submodule names follow the reference, so converted state dicts load without renaming.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer

from .configuration_ntd import NTDConfig


# ---------------------------------------------------------------------------------------------- masks
def block_diagonal_mask(groups: int, inputs_per_group: int, outputs_per_group: int) -> torch.Tensor:
    """`(groups * out, groups * in)` ones where output group g reads input group g only."""
    eye = torch.eye(groups)
    return eye.repeat_interleave(outputs_per_group, 0).repeat_interleave(inputs_per_group, 1)


def channel_mixing_mask(groups: int, width: int, num_off_diag: int) -> torch.Tensor:
    """Within-group dense blocks, plus the first `num_off_diag` units of every group connected across groups."""
    shared = torch.zeros(width, width)
    shared[:num_off_diag, :num_off_diag] = 1.0
    return torch.maximum(block_diagonal_mask(groups, width, width), shared.repeat(groups, groups))


def output_mask(groups: int, hidden: int, outputs: int) -> torch.Tensor:
    """Output channel c reads hidden group c; the mask channel's group (the last one) feeds no output."""
    return block_diagonal_mask(groups, hidden, 1)[:outputs]


# ---------------------------------------------------------------------------------------------- convs
class MaskedConv1d(nn.Module):
    """Causal conv whose dense weight is multiplied by a fixed 0/1 connectivity mask `(out, in)`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, make_mask: Callable[[], torch.Tensor]):
        super().__init__()
        self.kernel_size = kernel_size
        self.make_mask = make_mask
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels))
        self.register_buffer("mask", torch.empty(out_channels, in_channels))
        self.reset_brain_gen_parameters()

    def reset_brain_gen_parameters(self) -> None:
        bound = math.sqrt(1.0 / (self.weight.shape[1] * self.kernel_size))
        init.uniform_(self.weight, -bound, bound)
        init.uniform_(self.bias, -bound, bound)
        init.copy_(self.mask, self.make_mask())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (self.kernel_size - 1, 0))
        return F.conv1d(x, self.weight * self.mask.unsqueeze(-1).to(self.weight.dtype), self.bias)


class CausalConv1d(nn.Module):
    """A causal conv: masked (`layer` is a `MaskedConv1d`) or dense (`layer` is an `nn.Conv1d`)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, make_mask=None):
        super().__init__()
        self.kernel_size = kernel_size
        if make_mask is None:
            self.layer = nn.Conv1d(in_channels, out_channels, kernel_size)
        else:
            self.layer = MaskedConv1d(in_channels, out_channels, kernel_size, make_mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(self.layer, MaskedConv1d):
            return self.layer(x)
        return self.layer(F.pad(x, (self.kernel_size - 1, 0)))


class SLConv(nn.Module):
    """Structured long depthwise convolution: `num_scales` kernels of `kernel_size` taps, scale i stretched by
    `2**max(0, i - 1)` and damped by `2**(num_scales - i - 1)`, concatenated and divided by the norm the
    concatenation had at initialisation; applied causally (a true convolution), plus a per-channel skip `D x`."""

    def __init__(self, kernel_size: int, channels: int, num_scales: int):
        super().__init__()
        self.num_scales = num_scales
        self.kernel_length = kernel_size * 2 ** (num_scales - 1)
        self.D = nn.Parameter(torch.empty(1, channels))
        self.kernel_list = nn.ParameterList(
            [nn.Parameter(torch.empty(1, channels, kernel_size)) for _ in range(num_scales)]
        )
        self.register_buffer("multiplier", torch.empty(1, channels, 1))
        self.register_buffer("kernel_norm", torch.empty(1, channels, 1))
        # Kept for checkpoint compatibility: the norm is fixed at initialisation (the reference fixed it at the
        # first forward, before any update of the kernels, so the value is the same).
        self.register_buffer("kernel_norm_initialized", torch.ones((), dtype=torch.bool))
        self.reset_brain_gen_parameters()

    def reset_brain_gen_parameters(self) -> None:
        init.normal_(self.D)
        for kernel in self.kernel_list:
            init.normal_(kernel)
        init.constant_(self.multiplier, 2.0)
        with torch.no_grad():
            norm = self.stacked_kernel().norm(dim=-1, keepdim=True)
        init.copy_(self.kernel_norm, norm)
        init.constant_(self.kernel_norm_initialized, True)

    def stacked_kernel(self) -> torch.Tensor:
        """`(1, channels, kernel_length)`, before normalisation."""
        scales = [
            F.interpolate(kernel, scale_factor=2 ** max(0, i - 1), mode="nearest")
            * self.multiplier ** (self.num_scales - i - 1)
            for i, kernel in enumerate(self.kernel_list)
        ]
        return torch.cat(scales, dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel = self.stacked_kernel() / self.kernel_norm
        weight = kernel.flip(-1).transpose(0, 1)  # (channels, 1, length): conv1d correlates, so flip
        y = F.conv1d(F.pad(x, (self.kernel_length - 1, 0)), weight, groups=x.shape[1])
        return y + x * self.D.unsqueeze(-1)


# ------------------------------------------------------------------------------------------ embeddings
class TimestepEmbedder(nn.Module):
    """Sinusoidal features (cos then sin, 256 wide, max period 1e4) of a step or position -> MLP."""

    frequency_embedding_size = 256

    def __init__(self, hidden_size: int):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(self.frequency_embedding_size, hidden_size),
            nn.SiLU(),
            nn.Linear(hidden_size, hidden_size),
        )

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.frequency_embedding_size // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
        args = t[:, None].float() * freqs[None]
        features = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
        return self.mlp(features.to(self.mlp[0].weight.dtype))


class GeneralEmbedder(nn.Module):
    """Per-sample MLP of conditioning channels `(B, cond_dim, L) -> (B, hidden, L)`."""

    def __init__(self, cond_channel: int, hidden_size: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(cond_channel, hidden_size), nn.SiLU(), nn.Linear(hidden_size, hidden_size))

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        return self.mlp(cond.transpose(1, 2)).transpose(1, 2)


def channel_norm(x: torch.Tensor) -> torch.Tensor:
    """LayerNorm over channels at every time step of `(B, C, L)` (no statistics across time: causal)."""
    return F.layer_norm(x.transpose(1, 2), (x.shape[1],)).transpose(1, 2)


# ---------------------------------------------------------------------------------------------- blocks
class AdaConvBlock(GradientCheckpointingLayer):
    """`x + gate1 * SLConv(mod(norm(x)))`, then `x + gate2 * MLP(mod(norm(x)))`; shift/scale/gate from the
    embedding through a zero-initialised linear (so a fresh block is the identity)."""

    def __init__(self, config: NTDConfig, mid_mask):
        super().__init__()
        width = config.hidden_width
        self.ada_ln = nn.Sequential(nn.SiLU(), nn.Linear(config.embedding_width, 6 * width))
        self.conv = SLConv(config.net_slconv_kernel_size, width, config.net_num_scales)
        self.mlp = nn.Sequential(
            CausalConv1d(width, width, 1, mid_mask), nn.GELU(), CausalConv1d(width, width, 1, mid_mask)
        )
        self.reset_brain_gen_parameters()

    def reset_brain_gen_parameters(self) -> None:
        init.zeros_(self.ada_ln[1].weight)
        init.zeros_(self.ada_ln[1].bias)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        modulation = self.ada_ln(emb.transpose(1, 2)).transpose(1, 2)
        shift1, scale1, gate1, shift2, scale2, gate2 = modulation.chunk(6, dim=1)
        x = x + gate1 * self.conv(channel_norm(x) * (1 + scale1) + shift1)
        return x + gate2 * self.mlp(channel_norm(x) * (1 + scale2) + shift2)


class AdaConv(nn.Module):
    """`(B, C + mask_channel, L)` noisy signal (+ mask) and steps `(B,)` -> predicted noise `(B, C, L)`."""

    def __init__(self, config: NTDConfig):
        super().__init__()
        groups, hidden = config.signal_channel + config.mask_channel, config.net_hidden_channel
        width, emb_width = config.hidden_width, config.embedding_width
        self.signal_length = config.signal_length
        mid_mask = None
        if config.net_num_off_diag != hidden:
            mid_mask = partial(channel_mixing_mask, groups, hidden, config.net_num_off_diag)
        self.conv_in = CausalConv1d(
            groups, width, config.net_in_kernel_size, partial(block_diagonal_mask, groups, 1, hidden)
        )
        self.blocks = nn.ModuleList([AdaConvBlock(config, mid_mask) for _ in range(config.net_num_blocks)])
        self.conv_out = CausalConv1d(
            width,
            config.signal_channel,
            config.net_out_kernel_size,
            partial(output_mask, groups, hidden, config.signal_channel),
        )
        self.t_emb = TimestepEmbedder(emb_width)
        self.pos_emb = TimestepEmbedder(emb_width) if config.net_use_pos_emb else None
        self.cond_emb = GeneralEmbedder(config.cond_dim, emb_width) if config.cond_dim > 0 else None

    def embedding(self, timesteps: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """`(B, emb_width, L)`: step embedding (+ position embedding) (+ conditioning embedding)."""
        emb = self.t_emb(timesteps)[:, :, None].expand(-1, -1, self.signal_length)
        if self.pos_emb is not None:
            positions = torch.arange(self.signal_length, device=timesteps.device)
            emb = emb + self.pos_emb(positions).transpose(0, 1)[None]
        if cond is not None:
            emb = emb + self.cond_emb(cond)
        return emb

    def forward(
        self,
        x: torch.Tensor,
        timesteps: torch.Tensor,
        cond: torch.Tensor | None = None,
        output_hidden_states: bool = False,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
        """Returns the predicted noise and, if asked, the hidden states `(B, L, F)` (input conv, then every block;
        time-major with the width last, and each is the tensor the next layer reads)."""
        emb = self.embedding(timesteps, cond)
        h = self.conv_in(x)
        hidden_states = []
        for block in self.blocks:
            if output_hidden_states:
                hidden_states.append(h.transpose(1, 2))
                h = hidden_states[-1].transpose(1, 2)
            h = block(h, emb)
        if output_hidden_states:
            hidden_states.append(h.transpose(1, 2))
            h = hidden_states[-1].transpose(1, 2)
        return self.conv_out(h), (tuple(hidden_states) if output_hidden_states else None)
