"""BENDRForecast (brain-gen): BENDR's convolutional encoder and transformer contextualiser (Kostas,
Aroca-Ouellette & Rudzicz 2021) with a transposed-convolution decoder that predicts the signal itself.

Two reference bugs are fixed (see docs/reference-differences.md): the transformer attends over
time within each sequence (the reference attended across the batch), and the convolutional position
encoding only looks at the past (the reference's was centred, so outputs saw the future). Submodule
names follow the reference so converted checkpoints load without renaming.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from einops.layers.torch import Rearrange
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm
from transformers import GenerationConfig, LogitsProcessorList
from transformers import initialization as init
from transformers.utils.generic import can_return_tuple

from ...forecasting import ForecastMixin, ForecastOutput, forecast_progress
from ...layers.transformer import TransformerBlock
from ...modeling_outputs import SignalPredictionOutput
from ...modeling_utils import (
    COMMON_FORWARD_KWARGS,
    BrainGenPreTrainedModel,
    reject_unknown_kwargs,
)
from .causal_norm import CumulativeGroupNorm
from .configuration_bendr import BENDRForecastConfig


class ConvEncoderBENDR(nn.Module):
    """Strided conv stages `(B, C, T) -> (B, h, T / downsampling)`: left zero pad (width - stride), conv,
    channel dropout, GroupNorm(h/2), GELU. With `encoder_norm="causal"` the GroupNorm statistics are
    cumulative, so encoder step m sees samples up to `(m + 1) * downsampling - 1` only."""

    def __init__(self, config: BENDRForecastConfig):
        super().__init__()
        norm = CumulativeGroupNorm if config.encoder_norm == "causal" else nn.GroupNorm
        stages, in_channels = OrderedDict(), config.channels
        for i, (width, stride) in enumerate(zip(config.enc_width, config.enc_downsample)):
            stages[f"Encoder_{i}"] = nn.Sequential(
                nn.ConstantPad1d((width - stride, 0), 0.0),
                nn.Conv1d(in_channels, config.encoder_h, width, stride=stride),
                nn.Dropout1d(config.dropout),
                norm(config.encoder_h // 2, config.encoder_h),
                nn.GELU(),
            )
            in_channels = config.encoder_h
        self.encoder = nn.Sequential(stages)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)


class BENDRContextualizer(nn.Module):
    """Causal position conv -> LayerNorm -> 1x1 conv to `d_model` -> start token + causal transformer over
    time -> 1x1 conv back to h. `(B, h, T') -> (B, h, T' + 1)`; output step i sees encoder steps < i."""

    def __init__(self, config: BENDRForecastConfig):
        super().__init__()
        h, d = config.encoder_h, config.d_model
        self.start_token = config.start_token
        self.layer_drop = config.layer_drop
        self.position_kernel = config.position_encoder
        if self.position_kernel:
            # Same weight shape (and weight-norm parametrisation, keys `...parametrizations.weight.original0/1`)
            # as the reference; only the padding differs (left-only, so the conv is causal).
            conv = nn.Conv1d(h, h, self.position_kernel, groups=config.position_groups)
            self.relative_position = nn.Sequential(weight_norm(conv, dim=2), nn.GELU())
        # Indices 1 (LayerNorm) and 4 (conv) hold the weights, as in the reference state dict.
        self.input_conditioning = nn.Sequential(
            Rearrange("b c t -> b t c"),
            nn.LayerNorm(h),
            nn.Dropout(config.dropout),
            Rearrange("b t c -> b c t"),
            nn.Conv1d(h, d, 1),
            Rearrange("b d t -> b t d"),
        )
        self.transformer_layers = nn.ModuleList(
            TransformerBlock(
                d,
                config.attn_heads,
                attn_dropout=config.attn_dropout,
                attn_bias=config.attn_bias,
                rope=config.attn_rope,
                intermediate_size=config.mlp_d_ff,
                mlp_dropout=config.mlp_dropout,
            )
            for _ in range(config.transformer_layers)
        )
        self.output_layer = nn.Conv1d(d, h, 1)

    def forward(
        self,
        features: torch.Tensor,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        attn_implementation: str | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None, tuple[torch.Tensor | None, ...] | None]:
        """`(B, h, T')` -> `(B, h, T' + 1)`, plus (when asked) the transformer's input and every layer's output
        `(B, T' + 1, d_model)` and every layer's attention weights `(B, heads, T' + 1, T' + 1)` (None for a layer
        skipped by layer drop)."""
        x = features
        if self.position_kernel:
            x = x + self.relative_position(F.pad(x, (self.position_kernel - 1, 0)))
        x = self.input_conditioning(x)  # (B, T', d)
        start = x.new_full((x.shape[0], 1, x.shape[2]), self.start_token)
        x = torch.cat([start, x], dim=1)
        hidden_states = [x] if output_hidden_states else None
        attentions = [] if output_attentions else None
        for layer in self.transformer_layers:
            weights = None
            if not self.training or torch.rand(1) > self.layer_drop:
                x = layer(
                    x, is_causal=True, output_attentions=output_attentions, attn_implementation=attn_implementation
                )
                if output_attentions:
                    x, weights = x
            if output_hidden_states:
                hidden_states.append(x)
            if output_attentions:
                attentions.append(weights)
        output = self.output_layer(x.transpose(1, 2))
        return output, _as_tuple(hidden_states), _as_tuple(attentions)


def _as_tuple(states: list | None) -> tuple | None:
    return None if states is None else tuple(states)


class CausalTransposeDecoder(nn.Module):
    """Mirror of the encoder: per stage (reversed) ConvTranspose1d(h, h, width, stride) keeping the first
    `stride * length` samples, GELU; then a 1x1 conv to the signal channels. Keeping the *first* samples
    makes output n depend on inputs <= n // stride only (the reference cropped the start, which looked ahead)."""

    def __init__(self, config: BENDRForecastConfig):
        super().__init__()
        h = config.encoder_h
        self.strides = list(config.enc_downsample)[::-1]
        layers = []
        for width, stride in zip(list(config.enc_width)[::-1], self.strides):
            layers += [nn.ConvTranspose1d(h, h, width, stride=stride, output_padding=stride - 1), nn.GELU()]
        # Even indices hold the transposed convs, as in the reference state dict.
        self.conv_stack = nn.ModuleList(layers)
        self.to_raw = nn.Conv1d(h, config.channels, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = z
        for stride, conv, act in zip(self.strides, self.conv_stack[0::2], self.conv_stack[1::2]):
            x = act(conv(x)[..., : stride * x.shape[-1]])
        return self.to_raw(x)


class BENDRForecastPreTrainedModel(BrainGenPreTrainedModel):
    config_class = BENDRForecastConfig
    main_input_name = "input_values"
    # The transformer blocks are `GradientCheckpointingLayer`s.
    supports_gradient_checkpointing = True
    _no_split_modules = ["TransformerBlock"]

    def _init_module(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            # T-Fixup (Huang et al. 2020), as in BENDR: Xavier scaled by 0.67 * layers^(-1/4), zero bias.
            gain = 0.67 * self.config.transformer_layers**-0.25
            init.xavier_uniform_(module.weight, gain=gain)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif parametrize.is_parametrized(module, "weight"):
            # The weight-normed position conv: direction ~ N(0, 2 / d_model), zero bias, and weight_norm's
            # starting magnitude g = |v| over every axis but the kernel axis (dim=2).
            direction = module.parametrizations.weight.original1
            init.normal_(direction, mean=0.0, std=2.0 / self.config.d_model)
            init.copy_(
                module.parametrizations.weight.original0, torch.linalg.vector_norm(direction, dim=(0, 1), keepdim=True)
            )
            init.zeros_(module.bias)
        else:
            super()._init_module(module)


class BENDRForecastModel(ForecastMixin, BENDRForecastPreTrainedModel):
    """One-step-ahead forecaster of continuous `(B, C, T)` signals.

    * `encode(x)` -> contextualised features `(B, encoder_h, T' + 1)` of the first `config.context_length`
      samples (T' = encoder steps; step 0 comes from the start token). `output_dim` is `encoder_h`;
      classifiers read `features[..., -1]`.
    * `forward(input_values, labels=None)` -> `SignalPredictionOutput(loss, prediction (B, C, (T' + 1) *
      downsampling), features)`. `prediction[..., t]` depends only on samples before t (see
      `docs/reference-differences.md`); `loss` is the MSE against `labels` of the same shape.
    * `forecast(input_values, horizon)` -> `ForecastOutput(values (B, C, horizon))`: the one-step prediction
      rolled forward (deterministic).
    """

    def __init__(self, config: BENDRForecastConfig):
        super().__init__(config)
        self.encoder = ConvEncoderBENDR(config)
        self.contextualiser = BENDRContextualizer(config)
        self.project = CausalTransposeDecoder(config)
        self.post_init()

    @property
    def output_dim(self) -> int:
        """Width of the features `encode` returns (what a classifier head reads)."""
        return self.config.encoder_h

    def _check_input(self, x: torch.Tensor, name: str, channel_names: list[str] | None = None) -> torch.Tensor:
        cfg = self.config
        x = self.check_signal(x, name=name, ndim=3, num_channels=cfg.channels, channel_names=channel_names)
        if x.shape[-1] < cfg.downsampling:
            raise ValueError(
                f"{name} has {x.shape[-1]} samples; the encoder needs at least {cfg.downsampling} (one encoder step)"
            )
        return x

    def get_input_embeddings(self) -> nn.Module:
        raise NotImplementedError(
            f"{type(self).__name__} reads continuous signals through a convolutional encoder: it has no token "
            "embedding table to get, set or resize"
        )

    def _contextualise(
        self,
        input_values: torch.Tensor,
        channel_names: list[str] | None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ):
        x = self._check_input(input_values, "input_values", channel_names)[..., : self.config.context_length]
        return self.contextualiser(
            self.encoder(x),
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            attn_implementation=self.config._attn_implementation,
        )

    def encode(self, input_values: torch.Tensor, channel_names: list[str] | None = None) -> torch.Tensor:
        """Contextualised features `(B, encoder_h, T' + 1)` of `input_values[..., :config.context_length]`.

        A float16/bfloat16/float64 signal is cast to the model's dtype; `channel_names` (optional) must equal
        `config.channel_names` when the config has names.
        """
        return self._contextualise(input_values, channel_names)[0]

    @can_return_tuple
    def forward(
        self,
        input_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        channel_names: list[str] | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> SignalPredictionOutput:
        r"""
        Predict every sample of the window from the samples before it.

        Args:
            input_values (`torch.Tensor` of shape `(B, C, T)`): the signal; the first `config.context_length`
                samples are read (T' = `context_length // downsampling` encoder steps). Any float dtype is cast
                to the model's.
            labels (`torch.Tensor` of shape `(B, C, (T' + 1) * downsampling)`, *optional*): targets of the
                prediction; `loss` is their mean squared error (computed in float32).
            channel_names (`list[str]`, *optional*): must equal `config.channel_names` when the config has names.
            output_hidden_states (`bool`, *optional*): also return the transformer's input and every layer's
                output, `(B, T' + 1, d_model)` each.
            output_attentions (`bool`, *optional*): also return every layer's attention weights
                `(B, attn_heads, T' + 1, T' + 1)`.
            return_dict (`bool`, *optional*): `False` returns a tuple of the non-None fields.

        Returns:
            `SignalPredictionOutput` with `prediction (B, C, (T' + 1) * downsampling)` (`prediction[..., t]`
            depends only on samples before t), `features (B, encoder_h, T' + 1)`, `loss`, `hidden_states`,
            `attentions`. Unknown keywords raise `TypeError`.
        """
        reject_unknown_kwargs(kwargs, COMMON_FORWARD_KWARGS, f"{type(self).__name__}.forward")
        cfg = self.config
        features, hidden_states, attentions = self._contextualise(
            input_values,
            channel_names,
            output_hidden_states=cfg.output_hidden_states if output_hidden_states is None else output_hidden_states,
            output_attentions=cfg.output_attentions if output_attentions is None else output_attentions,
        )
        prediction = self.project(features)
        loss = None
        if labels is not None:
            labels = self.check_signal(labels, name="labels")
            if labels.shape != prediction.shape:
                raise ValueError(
                    f"labels must have the prediction's shape {tuple(prediction.shape)} (sample t of "
                    f"the input window), got {tuple(labels.shape)}"
                )
            loss = F.mse_loss(prediction.float(), labels.float())
        return SignalPredictionOutput(
            loss=loss, prediction=prediction, features=features, hidden_states=hidden_states, attentions=attentions
        )

    def _forecast(
        self,
        input_values: torch.Tensor,
        horizon: int,
        generation_config: GenerationConfig,
        logits_processor: LogitsProcessorList,
        *,
        progress: bool | None = None,
        channel_names: list[str] | None = None,
    ) -> ForecastOutput:
        """Roll the one-step prediction forward `horizon` samples.

        Every step reads the latest window of whole encoder steps (at most `config.context_length` samples) and
        appends the prediction of the sample right after it. BENDR regresses values: it is deterministic, so
        `GenerationConfig(do_sample=True)` and logits processors raise `ValueError` (there is nothing to
        sample). `channel_names` (optional) must equal `config.channel_names`, as in `encode`.
        """
        if generation_config.do_sample:
            raise ValueError(
                f"{type(self).__name__} predicts continuous values and has no distribution to sample: "
                "forecast with do_sample=False (the default)"
            )
        if logits_processor:
            raise ValueError(
                f"{type(self).__name__} predicts continuous values: logits processors do not apply; "
                "pass logits_processor=None"
            )
        cfg = self.config
        context = self._check_input(input_values, "input_values", channel_names).to(self.device)
        sequence = context
        with forecast_progress(horizon, f"{type(self).__name__} forecast", progress, unit="sample") as bar:
            for _ in range(horizon):
                window = min(sequence.shape[-1], cfg.context_length) // cfg.downsampling * cfg.downsampling
                prediction = self(sequence[..., -window:]).prediction
                sequence = torch.cat([sequence, prediction[..., window : window + 1]], dim=-1)
                bar.update(1)
        return ForecastOutput(values=sequence[..., context.shape[-1] :])
