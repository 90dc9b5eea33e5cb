"""The factorized autoencoder (brain-gen's research tokenizer for 68-ROI MEG), continuous latents, no quantizer.

Compression is factorised: time is down-sampled by depthwise causal convolutions that never mix channels
(features are mixed only within a channel), and channels are reduced by learned channel-mixing matrices that never
mix time. Every convolution is causal, and up-sampling repeats each latent step forward in time, so the
reconstruction at time t depends on the input up to t only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.utils import ModelOutput
from transformers.utils.generic import can_return_tuple

from ...modeling_utils import COMMON_FORWARD_KWARGS, BrainGenPreTrainedModel, reject_unknown_kwargs
from .configuration_factorized_autoencoder import FactorizedAutoencoderConfig


@dataclass
class FactorizedAutoencoderOutput(ModelOutput):
    r"""
    Output of `FactorizedAutoencoderModel.forward`.

    Args:
        loss (`torch.FloatTensor` of shape `()`): the reconstruction loss (float32), what training minimises.
        recon_loss (`torch.FloatTensor` of shape `()`): the same reconstruction term, named as the reference does.
        reconstruction (`torch.FloatTensor` of shape `(B, c_out, T)`): the decoded signal.
        latents (`torch.FloatTensor` of shape `(B, C_red, T_red, d_latent)`): the continuous latents.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*): the encoder's stem output and every stage's output,
            time-major `(B, C_s, T_s, f_hidden)`, then the latents.
    """

    loss: torch.FloatTensor | None = None
    recon_loss: torch.FloatTensor | None = None
    reconstruction: torch.FloatTensor | None = None
    latents: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


class CausalConv1d(nn.Conv1d):
    """`nn.Conv1d` with `dilation * (kernel - 1)` zeros on the left: output t sees inputs up to `t * stride`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.dilation[0] * (self.kernel_size[0] - 1), 0)))


def binomial_kernel(size: int) -> torch.Tensor:
    """Normalised binomial coefficients of `size` taps (a smooth low-pass)."""
    taps = torch.tensor([math.comb(size - 1, i) for i in range(size)], dtype=torch.float32)
    return taps / taps.sum()


class CausalLowpass1d(nn.Module):
    """Depthwise causal binomial low-pass (anti-aliasing around strided down-sampling and repeat up-sampling)."""

    def __init__(self, channels: int, kernel_size: int):
        super().__init__()
        self.channels, self.kernel_size = channels, kernel_size
        # A constant of the config: rebuilt by `reset_brain_gen_parameters`, not saved.
        self.register_buffer("kernel", binomial_kernel(kernel_size).repeat(channels, 1, 1), persistent=False)

    def reset_brain_gen_parameters(self) -> None:
        init.copy_(self.kernel, binomial_kernel(self.kernel_size).repeat(self.channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (self.kernel_size - 1, 0))
        return F.conv1d(x, self.kernel.to(x.dtype), groups=self.channels)


def lowpass_or_identity(channels: int, kernel_size: int, stride: int) -> nn.Module:
    return CausalLowpass1d(channels, kernel_size) if stride > 1 and kernel_size > 1 else nn.Identity()


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channel axis of `(B, C, T)`, separately at every time step."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


def mix_channels(h: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """`out[b, c', f, t] = sum_c weight[c', c] * h[b, c, f, t]`."""
    return torch.einsum("dc,bcft->bdft", weight, h)


class ChannelMix(nn.Module):
    """A learned `(c_out, c_in)` channel-mixing matrix, the same for every feature and time step."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(c_out, c_in))
        self.reset_brain_gen_parameters()

    def reset_brain_gen_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Linear's default

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return mix_channels(h, self.weight)


class ChannelMixMLP(nn.Module):
    """Two channel-mixing matrices with a GELU between (a bottleneck of `round(min(c_in, c_out) * ratio)`)."""

    def __init__(self, c_in: int, c_out: int, ratio: float, dropout: float):
        super().__init__()
        hidden = max(1, round(min(c_in, c_out) * ratio))
        self.w1 = nn.Parameter(torch.empty(hidden, c_in))
        self.w2 = nn.Parameter(torch.empty(c_out, hidden))
        self.drop = nn.Dropout(dropout)
        self.reset_brain_gen_parameters()

    def reset_brain_gen_parameters(self) -> None:
        init.kaiming_uniform_(self.w1, a=math.sqrt(5))
        init.kaiming_uniform_(self.w2, a=math.sqrt(5))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return mix_channels(self.drop(F.gelu(mix_channels(h, self.w1))), self.w2)


def channel_mixer(c_in: int, c_out: int, config: FactorizedAutoencoderConfig) -> nn.Module:
    if c_in == c_out:
        return nn.Identity()
    if config.channel_mlp_ratio is None:
        return ChannelMix(c_in, c_out)
    return ChannelMixMLP(c_in, c_out, float(config.channel_mlp_ratio), config.dropout)


class WithinChannelBlock(nn.Module):
    """Depthwise causal conv over time -> LN -> GELU -> features mixed within each channel (grouped 1x1) -> LN ->
    GELU -> dropout, on `(B, C * F, T)`."""

    def __init__(self, channels: int, features: int, kernel_size: int, stride: int, dropout: float):
        super().__init__()
        width = channels * features
        self.temporal = CausalConv1d(width, width, kernel_size, stride=stride, groups=width, bias=False)
        self.norm1 = ChannelLayerNorm(width)
        self.pointwise = nn.Conv1d(width, width, 1, groups=channels, bias=False)
        self.norm2 = ChannelLayerNorm(width)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.norm1(self.temporal(x)))
        return self.drop(F.gelu(self.norm2(self.pointwise(x))))


class TemporalDownsampleBlock(GradientCheckpointingLayer):
    """Optional causal low-pass, then a `WithinChannelBlock` whose temporal conv has stride `t_s`: `(B, C * F, T)`
    -> `(B, C * F, ceil(T / t_s))`."""

    def __init__(self, channels: int, config: FactorizedAutoencoderConfig, stride: int):
        super().__init__()
        self.lowpass = lowpass_or_identity(channels * config.f_hidden, config.aa_kernel_size, stride)
        self.block = WithinChannelBlock(channels, config.f_hidden, config.k_down, stride, config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(self.lowpass(x))


class TemporalUpsampleBlock(GradientCheckpointingLayer):
    """Every step repeated `t_s` times, optional causal low-pass, then a `WithinChannelBlock` (stride 1)."""

    def __init__(self, channels: int, config: FactorizedAutoencoderConfig, stride: int):
        super().__init__()
        self.stride = stride
        self.lowpass = lowpass_or_identity(channels * config.f_hidden, config.aa_kernel_size_up, stride)
        self.block = WithinChannelBlock(channels, config.f_hidden, config.k_up, 1, config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = self.lowpass(x.repeat_interleave(self.stride, dim=-1))
        return self.block(x)


def _time_major(h: torch.Tensor, channels: int) -> torch.Tensor:
    """`(B, C * F, T)` -> `(B, C, T, F)`."""
    batch, width, steps = h.shape
    return h.view(batch, channels, width // channels, steps).transpose(2, 3)


def _channel_major(h: torch.Tensor) -> torch.Tensor:
    """`(B, C, T, F)` -> `(B, C * F, T)`."""
    batch, channels, steps, features = h.shape
    return h.transpose(2, 3).reshape(batch, channels * features, steps)


class FactorizedEncoder(nn.Module):
    """`(B, C, T)` -> latents `(B, C_red, T_red, D)`; also the per-stage hidden states."""

    def __init__(self, config: FactorizedAutoencoderConfig):
        super().__init__()
        c, f = config.c_in, config.f_hidden
        self.features = f
        self.stages = config.encoder_stages
        self.stem = CausalConv1d(c, c * f, config.k_stem, groups=c, bias=False)  # 1 -> F features per channel
        self.stem_norm = ChannelLayerNorm(c * f)
        self.down_blocks = nn.ModuleList(TemporalDownsampleBlock(c_s, config, t) for t, c_s, _ in self.stages)
        self.channel_reducers = nn.ModuleList(channel_mixer(c_s, c_next, config) for _, c_s, c_next in self.stages)
        c_red, d = config.latent_channels, config.d_latent
        self.to_latent = nn.Conv1d(c_red * f, c_red * d, 1, groups=c_red, bias=False)  # F -> D per channel
        self.latent_norm = ChannelLayerNorm(c_red * d)

    def reduce_weights(self) -> list[torch.Tensor | None]:
        """Every stage's channel matrix (None where the stage keeps its channels)."""
        return [m.weight if isinstance(m, ChannelMix) else None for m in self.channel_reducers]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        batch = x.shape[0]
        # Each hidden state is the tensor the next step reads (so its gradient is the real one).
        state = _time_major(F.gelu(self.stem_norm(self.stem(x))), x.shape[1])
        hidden = [state]
        for (_, _, c_next), down, reduce in zip(self.stages, self.down_blocks, self.channel_reducers):
            h = down(_channel_major(state))
            steps = h.shape[-1]
            h = reduce(h.view(batch, -1, self.features, steps)).reshape(batch, c_next * self.features, steps)
            state = _time_major(h, c_next)
            hidden.append(state)
        h = _channel_major(state)
        latents = _time_major(F.gelu(self.latent_norm(self.to_latent(h))), state.shape[1]).contiguous()
        return latents, hidden + [latents]


class FactorizedDecoder(nn.Module):
    """Latents `(B, C_red, T_red, D)` -> `(B, c_out, T_red * t_up)`."""

    def __init__(self, config: FactorizedAutoencoderConfig):
        super().__init__()
        c_red, f, d, c = config.latent_channels, config.f_hidden, config.d_latent, config.c_out
        self.features = f
        self.stages = config.decoder_stages
        self.from_latent = nn.Conv1d(c_red * d, c_red * f, 1, groups=c_red, bias=False)  # D -> F per channel
        self.latent_norm = ChannelLayerNorm(c_red * f)
        # Tied: the encoder's transposed matrices expand the channels (no parameters here).
        self.channel_expanders = (
            None
            if config.tie_channel_mats
            else nn.ModuleList(channel_mixer(c_s, c_next, config) for _, c_s, c_next in self.stages)
        )
        self.up_blocks = nn.ModuleList(TemporalUpsampleBlock(c_next, config, t) for t, _, c_next in self.stages)
        width = c * f
        self.refine = WithinChannelBlock(c, f, config.k_refine, 1, dropout=0.0)
        self.to_signal = nn.Conv1d(width, c, 1, groups=c)  # F -> 1 per channel, with bias

    def forward(self, latents: torch.Tensor, tied_weights: list[torch.Tensor | None] | None = None) -> torch.Tensor:
        batch, c_red, steps, d = latents.shape
        h = latents.transpose(2, 3).reshape(batch, c_red * d, steps)
        h = F.gelu(self.latent_norm(self.from_latent(h)))
        for i, ((_, c_s, c_next), up) in enumerate(zip(self.stages, self.up_blocks)):
            grouped = h.view(batch, c_s, self.features, h.shape[-1])
            if tied_weights is not None:
                weight = tied_weights[len(self.stages) - 1 - i]
                grouped = grouped if weight is None else mix_channels(grouped, weight.t())
            else:
                grouped = self.channel_expanders[i](grouped)
            h = up(grouped.reshape(batch, c_next * self.features, -1))
        return self.to_signal(self.refine(h))


class FactorizedAutoencoderPreTrainedModel(BrainGenPreTrainedModel):
    config_class = FactorizedAutoencoderConfig
    base_model_prefix = "factorized_autoencoder"
    main_input_name = "input_values"
    # The temporal down/up-sampling blocks are `GradientCheckpointingLayer`s.
    supports_gradient_checkpointing = True
    _no_split_modules = ["TemporalDownsampleBlock", "TemporalUpsampleBlock"]

    def _init_module(self, module: nn.Module) -> None:
        # The reference's rule: He-normal convolutions, zero biases, unit norms; channel matrices as nn.Linear.
        if isinstance(module, nn.Conv1d):
            init.kaiming_normal_(module.weight, nonlinearity="relu")
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif hasattr(module, "reset_brain_gen_parameters"):
            module.reset_brain_gen_parameters()


class FactorizedAutoencoderModel(FactorizedAutoencoderPreTrainedModel):
    """Factorized autoencoder: `forward(input_values (B, C, T))` -> `FactorizedAutoencoderOutput` with the
    reconstruction `(B, c_out, T)`, the latents `(B, C_red, T_red, d_latent)` and the reconstruction loss.

    `encode` / `decode` run the two halves (without gradients, as the reference's do).
    """

    def __init__(self, config: FactorizedAutoencoderConfig):
        super().__init__(config)
        self.encoder = FactorizedEncoder(config)
        self.decoder = FactorizedDecoder(config)
        self.post_init()

    def get_input_embeddings(self) -> None:
        return None  # continuous signals in: no token table

    def _tied_weights(self) -> list[torch.Tensor | None] | None:
        return self.encoder.reduce_weights() if self.config.tie_channel_mats else None

    def _signal(self, input_values: torch.Tensor, channel_names) -> torch.Tensor:
        return self.check_signal(
            input_values, name="input_values", ndim=3, num_channels=self.config.c_in, channel_names=channel_names
        )

    def _decode(self, latents: torch.Tensor, target_length: int | None) -> torch.Tensor:
        reconstruction = self.decoder(latents, self._tied_weights())
        if target_length is None:
            return reconstruction
        steps = reconstruction.shape[-1]
        # Cropped, or zero-padded on the right when the decoder up-samples less than the encoder down-sampled.
        return (
            reconstruction[..., :target_length]
            if steps >= target_length
            else F.pad(reconstruction, (0, target_length - steps))
        )

    @torch.no_grad()
    def encode(self, input_values: torch.Tensor, channel_names: list[str] | None = None) -> torch.Tensor:
        """`(B, c_in, T)` signal -> latents `(B, C_red, T_red, d_latent)`."""
        return self.encoder(self._signal(input_values, channel_names))[0]

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, target_length: int | None = None) -> torch.Tensor:
        """Latents `(B, C_red, T_red, d_latent)` -> `(B, c_out, T)`: `T_red * t_up` steps, or `target_length`."""
        cfg = self.config
        latents = self.check_signal(latents, name="latents", ndim=4, num_channels=cfg.latent_channels)
        if latents.shape[-1] != cfg.d_latent:
            raise ValueError(
                f"latents must have d_latent = {cfg.d_latent} features (last dim), got {latents.shape[-1]}"
            )
        _check_length(target_length)
        return self._decode(latents, target_length)

    @can_return_tuple
    def forward(
        self,
        input_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        target_length: int | None = None,
        channel_names: list[str] | None = None,
        output_hidden_states: bool | None = None,
        **kwargs,
    ) -> FactorizedAutoencoderOutput:
        r"""
        Encode, decode, and score the reconstruction.

        Args:
            input_values (`torch.FloatTensor` of shape `(B, c_in, T)`): the signal (any float dtype, cast to the
                model's).
            labels (`torch.FloatTensor` of shape `(B, c_out, T')`, *optional*): the reconstruction target
                (default: `input_values`, which needs `c_out == c_in`).
            target_length (`int`, *optional*): length of the reconstruction (default: the target's); the decoder's
                output is cropped or zero-padded on the right to it.
            channel_names (`list[str]`, *optional*): checked against `config.channel_names`.
            output_hidden_states (`bool`, *optional*): also return the encoder's hidden states.
            return_dict (`bool`, *optional*): `False` returns a tuple of the non-None fields.

        Returns:
            `FactorizedAutoencoderOutput`: `loss` and `recon_loss` (float32, `config.recon_loss` between the
            reconstruction and the target), `reconstruction (B, c_out, T')`, `latents (B, C_red, T_red, d_latent)`,
            `hidden_states`. Unknown keywords raise `TypeError`; `output_attentions` is accepted (no attention).
        """
        reject_unknown_kwargs(kwargs, COMMON_FORWARD_KWARGS, f"{type(self).__name__}.forward")
        cfg = self.config
        keep_hidden = output_hidden_states if output_hidden_states is not None else cfg.output_hidden_states
        signal = self._signal(input_values, channel_names)
        target = self._target(signal, labels)
        _check_length(target_length)
        if target_length is None:
            target_length = target.shape[-1]
        elif target_length != target.shape[-1]:
            raise ValueError(
                f"target_length is {target_length} but the target has {target.shape[-1]} steps; drop target_length "
                "or pass labels of that length"
            )
        latents, hidden = self.encoder(signal)
        reconstruction = self._decode(latents, target_length)
        loss = self._loss(reconstruction, target)
        return FactorizedAutoencoderOutput(
            loss=loss,
            recon_loss=loss,
            reconstruction=reconstruction,
            latents=latents,
            hidden_states=tuple(hidden) if keep_hidden else None,
        )

    def _target(self, signal: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        cfg = self.config
        if labels is None:
            if cfg.c_out != cfg.c_in:
                raise ValueError(
                    f"the model reconstructs {cfg.c_out} channels from {cfg.c_in}: pass `labels` (B, {cfg.c_out}, T) "
                    "as the target"
                )
            return signal
        labels = self.check_signal(labels, name="labels", ndim=3, num_channels=cfg.c_out)
        if labels.shape[0] != signal.shape[0]:
            raise ValueError(f"labels hold {labels.shape[0]} windows but input_values {signal.shape[0]}")
        return labels

    def _loss(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        prediction, target = reconstruction.float(), target.float()
        if self.config.recon_loss == "l1":
            return F.l1_loss(prediction, target)
        if self.config.recon_loss == "huber":
            return F.huber_loss(prediction, target, delta=float(self.config.huber_delta))
        return F.mse_loss(prediction, target)


def _check_length(target_length) -> None:
    if target_length is not None and not (
        isinstance(target_length, int) and not isinstance(target_length, bool) and target_length > 0
    ):
        raise ValueError(f"target_length must be a positive int, got {target_length!r}")
