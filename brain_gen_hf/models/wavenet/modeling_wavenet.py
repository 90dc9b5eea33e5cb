"""WaveNet models over mu-law tokens (van den Oord et al. 2016; brain-gen's MEG ports).

Submodule names (`layers.{i}.conv_dilation`, `logits.transform.{2,5}`, ...) match the reference so
converted checkpoints load without renaming.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.utils.generic import can_return_tuple

from ...forecasting import ForecastMixin, ForecastOutput, choose_next, forecast_progress
from ...layers.mulaw_signal import mulaw_to_signal, signal_to_mulaw
from ...layers.sensor_image import SensorImage, roll_out_frames
from ...modeling_outputs import TokenPredictionOutput
from ...modeling_utils import (
    COMMON_FORWARD_KWARGS,
    BrainGenPreTrainedModel,
    check_labels,
    reject_unknown_kwargs,
)
from .configuration_wavenet import Wavenet3DConfig, WavenetFullChannelConfig
from .streaming_wavenet import WavenetStream


class GatedResidualLayer(GradientCheckpointingLayer):
    """One WaveNet layer: causal dilated conv -> tanh*sigmoid gate -> residual and skip 1x1 convs.

    Works on `(N, C, T)` (1-D) or `(N, C, H, W, T)` (3-D, time last, spatial "same" padding). After
    `model.gradient_checkpointing_enable()` its activations are recomputed in the backward pass.
    """

    def __init__(
        self,
        *,
        ndim: int,
        in_channels: int,
        residual_channels: int,
        dilation_channels: int,
        skip_channels: int,
        kernel_size: int,
        dilation: int,
        spatial_kernel=(1, 1),
        spatial_dilation=(1, 1),
        cond_channels: int | None = None,
        dropout: float = 0.0,
        bias: bool = True,
    ):
        super().__init__()
        conv = nn.Conv1d if ndim == 1 else nn.Conv3d
        self.dilation_channels = dilation_channels
        self.causal_left_pad = (kernel_size - 1) * dilation
        if ndim == 1:
            kernel, dil, pad = kernel_size, dilation, 0
        else:
            kernel = (*spatial_kernel, kernel_size)
            dil = (*spatial_dilation, dilation)
            pad = (
                ((spatial_kernel[0] - 1) * spatial_dilation[0]) // 2,
                ((spatial_kernel[1] - 1) * spatial_dilation[1]) // 2,
                0,
            )
        self.conv_dilation = conv(in_channels, 2 * dilation_channels, kernel, dilation=dil, padding=pad, bias=bias)
        self.conv_res = conv(dilation_channels, residual_channels, 1, bias=bias)
        self.conv_skip = conv(dilation_channels, skip_channels, 1, bias=bias)
        self.conv_cond = conv(cond_channels, 2 * dilation_channels, 1, bias=bias) if cond_channels else None
        self.conv_input = (
            conv(in_channels, residual_channels, 1, bias=bias) if in_channels != residual_channels else None
        )
        self.dropout = nn.Dropout1d(dropout) if ndim == 1 else nn.Dropout3d(dropout)

    def forward(
        self, x: torch.Tensor, cond: torch.Tensor | None = None, *, causal_pad: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`causal_pad=False` leaves out the zero left padding: the outputs are the last `T - causal_left_pad`
        steps (a streaming step feeds `causal_left_pad + 1` inputs for one output)."""
        h = self.conv_dilation(F.pad(x, (self.causal_left_pad, 0)) if causal_pad else x)
        if self.conv_cond is not None:
            if cond is None:
                raise ValueError("this model is conditioned: pass `condition`")
            h = h + self.conv_cond(cond)[..., -h.shape[-1] :]
        gated = torch.tanh(h[:, : self.dilation_channels]) * torch.sigmoid(h[:, self.dilation_channels :])
        residual = x if self.conv_input is None else self.conv_input(x)
        if not causal_pad:
            residual = residual[..., -h.shape[-1] :]
        return self.dropout(residual + self.conv_res(gated)), self.conv_skip(gated)


class LogitsHead(nn.Module):
    """Sum of skips -> LeakyReLU -> 1x1 conv -> LeakyReLU -> 1x1 conv to Q logits (non-linearity first)."""

    def __init__(
        self, ndim: int, skip_channels: int, head_channels: int, out_channels: int, dropout: float, bias: bool
    ):
        super().__init__()
        conv = nn.Conv1d if ndim == 1 else nn.Conv3d
        drop = nn.Dropout1d if ndim == 1 else nn.Dropout3d
        # Indices 2 and 5 hold the convs, as in the reference state dict.
        self.transform = nn.Sequential(
            drop(dropout),
            nn.LeakyReLU(),
            conv(skip_channels, head_channels, 1, bias=bias),
            drop(dropout),
            nn.LeakyReLU(),
            conv(head_channels, out_channels, 1, bias=bias),
        )

    def forward(self, skips: list[torch.Tensor]) -> torch.Tensor:
        return self.transform(sum(skips))


def _build_layers(config, ndim: int, cond_channels: int | None, spatial_kernel=(1, 1), spatial_dilation=(1, 1)):
    common = dict(
        ndim=ndim,
        residual_channels=config.residual_channels,
        dilation_channels=config.dilation_channels,
        skip_channels=config.skip_channels,
        cond_channels=cond_channels,
        dropout=config.p_drop,
        bias=config.bias,
    )
    # A 1x1 input layer lifts the embedding to the residual width, then one layer per dilation.
    layers = [GatedResidualLayer(in_channels=config.quant_emb, kernel_size=1, dilation=1, **common)]
    layers += [
        GatedResidualLayer(
            in_channels=config.residual_channels,
            kernel_size=config.kernel_size,
            dilation=d,
            spatial_kernel=spatial_kernel,
            spatial_dilation=spatial_dilation,
            **common,
        )
        for d in config.dilations
    ]
    return nn.ModuleList(layers)


def _token_loss(logits: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor | None:
    if labels is None:
        return None
    labels = check_labels(labels, num_classes=logits.shape[-1])
    if labels.shape != logits.shape[:-1]:
        raise ValueError(
            f"labels must have shape {tuple(logits.shape[:-1])} (aligned with the logits: position t "
            f"holds the token at t+1), got {tuple(labels.shape)}"
        )
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=-100)


def _channels_to_layer(states: torch.Tensor) -> torch.Tensor:
    """`(B, C, T, D)` -> `(B*C, D, T)`, the 1-D layers' layout (a view when `states` came from that layout)."""
    batch, channels, steps, width = states.shape
    return states.transpose(2, 3).reshape(batch * channels, width, steps)


class _WavenetPreTrainedModel(BrainGenPreTrainedModel):
    main_input_name = "input_ids"
    # The gated layers are `GradientCheckpointingLayer`s.
    supports_gradient_checkpointing = True
    _no_split_modules = ["GatedResidualLayer"]

    def _init_module(self, module: nn.Module) -> None:
        # The reference's init: Xavier-uniform conv weights, biases ~ N(1e-3, 1e-2).
        if isinstance(module, (nn.Conv1d, nn.Conv3d)):
            init.xavier_uniform_(module.weight)
            if module.bias is not None:
                init.normal_(module.bias, mean=1e-3, std=1e-2)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight)


class WavenetFullChannelModel(ForecastMixin, _WavenetPreTrainedModel):
    """WaveNet over C channels of mu-law tokens, each channel with its own embedding table.

    `forward(input_ids (B, C, T))` -> logits `(B, C, T, Q)`; position t predicts the token at t+1.
    Layers are chained (receptive field `config.receptive_field`); `config.parallel_layers` reproduces the
    reference's unchained wiring for converted checkpoints. `forecast` rolls a signal out sample by sample.
    """

    config_class = WavenetFullChannelConfig

    def __init__(self, config: WavenetFullChannelConfig):
        super().__init__(config)
        # One (Q, E) table per channel, stacked in one nn.Embedding: row `c * quant_levels + q` embeds token q of
        # channel c (so transformers' embedding accessors see a plain table).
        self.quant_emb = nn.Embedding(config.in_channels * config.quant_levels, config.quant_emb)
        self.cond_emb = nn.Embedding(config.num_classes, config.class_emb) if config.num_classes else None
        self.layers = _build_layers(config, ndim=1, cond_channels=config.class_emb or None)
        self.logits = LogitsHead(
            1, config.skip_channels, config.head_channels, config.quant_levels, config.p_drop, config.bias
        )
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        """The stacked per-channel table `(in_channels * quant_levels, quant_emb)`."""
        return self.quant_emb

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.quant_emb = value

    def _embed_tokens(self, input_ids: torch.Tensor) -> torch.Tensor:
        """`(B, C, T)` ids -> `(B, C, T, E)` embeddings (channel c reads its own table)."""
        channels = input_ids.shape[1]
        offsets = torch.arange(channels, device=input_ids.device).view(1, channels, 1) * self.config.quant_levels
        return self.quant_emb(input_ids + offsets)

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """`(B, C, T)` ids -> `(B*C, E, T)` embeddings, the layers' layout (channel c uses table c)."""
        return _channels_to_layer(self._embed_tokens(input_ids))

    def _condition(self, condition: torch.Tensor | None, num_channels: int) -> torch.Tensor | None:
        if self.cond_emb is None:
            if condition is not None:
                raise ValueError("`condition` was given but the model has no class conditioning (num_classes=0)")
            return None
        if condition is None:
            raise ValueError("this model is class-conditioned: pass `condition` of shape (B, 1, T)")
        ids = self.check_tokens(condition, vocab_size=self.config.num_classes, name="condition", ndim=3)
        cond = self.cond_emb(ids[:, 0]) * (ids[:, 0] > 0).unsqueeze(-1)  # id 0 means "no condition"
        cond = cond.permute(0, 2, 1)  # (B, class_emb, T)
        return cond.repeat_interleave(num_channels, dim=0)

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor,
        labels: torch.Tensor | None = None,
        condition: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        channel_names: list[str] | None = None,
        **kwargs,
    ) -> TokenPredictionOutput:
        r"""
        Next-token logits of every channel at every step.

        Args:
            input_ids (`torch.LongTensor` of shape `(B, C, T)`): mu-law tokens in `[0, quant_levels)`, C =
                `config.in_channels`.
            labels (`torch.LongTensor` of shape `(B, C, T)`, *optional*): the token at t+1 for position t (-100 is
                ignored); `loss` is their cross-entropy (in float32).
            condition (`torch.LongTensor` of shape `(B, 1, T)`, *optional*): class id of every step (0 = none);
                required exactly when the model is class-conditioned (`config.num_classes > 0`).
            output_hidden_states (`bool`, *optional*): also return the embeddings `(B, C, T, quant_emb)` and every
                layer's residual output `(B, C, T, residual_channels)`.
            channel_names (`list[str]`, *optional*): must equal `config.channel_names` when the config has names.
            return_dict (`bool`, *optional*): `False` returns a tuple of the non-None fields.

        Returns:
            `TokenPredictionOutput` with `logits (B, C, T, quant_levels)`, `embeddings (B*C, quant_emb, T)` (what
            the first layer reads), `loss` and `hidden_states`. `output_attentions` is accepted and ignored (WaveNet
            has no attention). Unknown keywords raise `TypeError`.
        """
        reject_unknown_kwargs(kwargs, COMMON_FORWARD_KWARGS, f"{type(self).__name__}.forward")
        cfg = self.config
        self.check_tokens(input_ids, vocab_size=cfg.quant_levels, ndim=3, num_channels=cfg.in_channels)
        if channel_names is not None:
            cfg.check_signal_metadata(channel_names=channel_names, num_channels=input_ids.shape[1])
        B, C, T = input_ids.shape
        keep_hidden = output_hidden_states if output_hidden_states is not None else cfg.output_hidden_states
        states = self._embed_tokens(input_ids)  # (B, C, T, E)
        embeddings = _channels_to_layer(states)
        cond = self._condition(condition, C)
        hidden, skips, all_hidden = embeddings, [], [states]
        for layer in self.layers:
            out, skip = layer(embeddings if cfg.parallel_layers else hidden, cond)
            skips.append(skip)
            # The (B, C, T, R) view is what the next layer reads, so a hidden state's gradient is the real one.
            state = out.reshape(B, C, -1, T).transpose(2, 3)
            all_hidden.append(state)
            hidden = _channels_to_layer(state)
        logits = self.logits(skips)  # (B*C, Q, T)
        logits = logits.reshape(B, C, cfg.quant_levels, T).permute(0, 1, 3, 2)
        return TokenPredictionOutput(
            loss=_token_loss(logits, labels),
            logits=logits,
            embeddings=embeddings,
            hidden_states=tuple(all_hidden) if keep_hidden else None,
        )

    def _forecast(
        self,
        input_values: torch.Tensor,
        horizon: int,
        generation_config,
        logits_processor,
        *,
        progress: bool | None,
        condition: torch.Tensor | None = None,
        channel_names: list[str] | None = None,
    ) -> ForecastOutput:
        """Forecast `horizon` samples of every channel after `input_values (B, C, T)`, one sample at a time.

        `input_values` is the normalised signal the model was trained on; it is mu-law encoded with
        `mu = quant_levels - 1` after dividing by `config.mulaw_max_value`, as the training collator does.
        Each step sees only the receptive field, through a streaming cache of every layer's last inputs
        (`generation_config.use_cache=False` recomputes the receptive field with `forward` instead).
        `condition (B, 1, T + horizon)`: the class id of every sample, context and forecast (class-conditioned
        models only). Returns `values (B, C, horizon)` (the decoded bins, in training units) and
        `codes (B, C, horizon)` (the chosen bins).
        """
        cfg = self.config
        signal = self.check_signal(
            input_values, name="input_values", ndim=3, num_channels=cfg.in_channels, channel_names=channel_names
        )
        batch, channels, steps = signal.shape
        if self.cond_emb is not None and condition is None:
            raise ValueError(
                "this model is class-conditioned: pass `condition` (B, 1, T + horizon), the class id of "
                "every sample of the context and of the forecast"
            )
        cond = self._condition(condition, channels)  # (B*C, class_emb, T + horizon) or None
        if condition is not None:
            _check_condition_steps(condition, (batch, 1, steps + horizon), "(B, 1, T + horizon)")
        window = cfg.receptive_field
        stream = None
        if generation_config.use_cache is not False:
            stream = WavenetStream(
                self.layers, self.logits, parallel_layers=cfg.parallel_layers, receptive_field=window
            )

        def next_logits(ids: torch.Tensor) -> torch.Tensor:
            """`ids (B, C, t)` -> logits `(B, C, Q)` of sample t."""
            t = ids.shape[-1]
            if stream is None:  # recompute the receptive field
                start = max(0, t - window)
                cond_ids = None if condition is None else condition[..., start:t]
                return self(ids[..., start:], condition=cond_ids).logits[:, :, -1]
            if t == steps:
                logits = stream.prime(self.embed(ids[..., -window:]), None if cond is None else cond[..., :t])
            else:  # the stream has seen up to sample t - 2: feed sample t - 1
                logits = stream.step(self.embed(ids[..., -1:]), None if cond is None else cond[..., t - 1 : t])
            return logits.view(batch, channels, cfg.quant_levels)

        ids = torch.empty(batch, channels, steps + horizon, dtype=torch.long, device=signal.device)
        ids[..., :steps] = signal_to_mulaw(signal, cfg.quant_levels, cfg.mulaw_max_value)
        with forecast_progress(horizon, f"{type(self).__name__} forecast", progress) as bar:
            for t in range(steps, steps + horizon):
                ids[..., t] = choose_next(next_logits(ids[..., :t]), generation_config, logits_processor)
                bar.update(1)
        codes = ids[..., steps:]
        values = mulaw_to_signal(codes, cfg.quant_levels, cfg.mulaw_max_value).to(signal.dtype)
        return ForecastOutput(values=values, codes=codes)


def _image_to_layer(states: torch.Tensor) -> torch.Tensor:
    """`(B, H, W, T, D)` -> `(B, D, H, W, T)`, the 3-D layers' layout (a view)."""
    return states.permute(0, 4, 1, 2, 3)


def _check_condition_steps(condition: torch.Tensor, shape: tuple[int, ...], layout: str) -> None:
    """A forecast's condition covers the context and the forecast: one entry per sample of both."""
    if tuple(condition.shape) != shape:
        raise ValueError(
            f"`condition` must have shape {layout} = {shape} for this forecast (one entry per sample of "
            f"the context and of the forecast), got {tuple(condition.shape)}"
        )


class Wavenet3DModel(ForecastMixin, _WavenetPreTrainedModel):
    """WaveNet over token images: `forward(input_ids (B, H, W, T))` -> logits `(B, H, W, T, Q)`.

    `forecast` maps a `(B, C, T)` signal onto the image (`config.row_idx`/`col_idx` or its own) and rolls it out
    frame by frame.
    """

    config_class = Wavenet3DConfig

    def __init__(self, config: Wavenet3DConfig):
        super().__init__(config)
        self.embedding = nn.Embedding(config.quant_levels, config.quant_emb)
        self.layers = _build_layers(
            config,
            ndim=3,
            cond_channels=config.cond_channels,
            spatial_kernel=tuple(config.spatial_kernel_size),
            spatial_dilation=tuple(config.spatial_dilation),
        )
        self.logits = LogitsHead(
            3, config.skip_channels, config.head_channels, config.quant_levels, config.p_drop, config.bias
        )
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embedding

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embedding = value

    def _embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """`(B, H, W, T)` ids -> `(B, E, H, W, T)` embeddings."""
        return _image_to_layer(self.embedding(input_ids))

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor,
        labels: torch.Tensor | None = None,
        condition: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        **kwargs,
    ) -> TokenPredictionOutput:
        r"""
        Next-token logits of every pixel at every step.

        Args:
            input_ids (`torch.LongTensor` of shape `(B, H, W, T)`): token images in `[0, quant_levels)` (H x W =
                `config.image_size` when set).
            labels (`torch.LongTensor` of shape `(B, H, W, T)`, *optional*): the token at t+1 for position t (-100
                is ignored, e.g. pixels without a sensor); `loss` is their cross-entropy (in float32).
            condition (`torch.Tensor` of shape `(B, cond_channels, H, W, T)`, *optional*): dense float condition,
                required exactly when `config.cond_channels` is set.
            output_hidden_states (`bool`, *optional*): also return the embeddings `(B, H, W, T, quant_emb)` and
                every layer's residual output `(B, H, W, T, residual_channels)`.
            return_dict (`bool`, *optional*): `False` returns a tuple of the non-None fields.

        Returns:
            `TokenPredictionOutput` with `logits (B, H, W, T, quant_levels)`, `embeddings (B, quant_emb, H, W, T)`
            (what the first layer reads), `loss` and `hidden_states`. `output_attentions` is accepted and ignored
            (WaveNet has no attention). Unknown keywords raise `TypeError`.
        """
        reject_unknown_kwargs(kwargs, COMMON_FORWARD_KWARGS, f"{type(self).__name__}.forward")
        cfg = self.config
        keep_hidden = output_hidden_states if output_hidden_states is not None else cfg.output_hidden_states
        self.check_tokens(input_ids, vocab_size=cfg.quant_levels, ndim=4)
        if cfg.image_size is not None and list(input_ids.shape[1:3]) != cfg.image_size:
            raise ValueError(
                f"token image must be {cfg.image_size[0]}x{cfg.image_size[1]}, got {tuple(input_ids.shape[1:3])}"
            )
        if (condition is None) != (cfg.cond_channels is None):
            raise ValueError("pass `condition` exactly when the model has `cond_channels`")
        if condition is not None:  # a float map (B, cond_channels, H, W, T), in the model's dtype
            condition = self.check_signal(condition, name="condition", ndim=5, num_channels=cfg.cond_channels)
        states = self.embedding(input_ids)  # (B, H, W, T, E)
        embeddings = _image_to_layer(states)
        hidden, skips, all_hidden = embeddings, [], [states]
        for layer in self.layers:
            out, skip = layer(hidden, condition)
            skips.append(skip)
            # The (B, H, W, T, R) view is what the next layer reads, so a hidden state's gradient is the real one.
            state = out.permute(0, 2, 3, 4, 1)
            all_hidden.append(state)
            hidden = _image_to_layer(state)
        logits = self.logits(skips).permute(0, 2, 3, 4, 1)  # (B, H, W, T, Q)
        return TokenPredictionOutput(
            loss=_token_loss(logits, labels),
            logits=logits,
            embeddings=embeddings,
            hidden_states=tuple(all_hidden) if keep_hidden else None,
        )

    def _forecast(
        self,
        input_values: torch.Tensor,
        horizon: int,
        generation_config,
        logits_processor,
        *,
        progress: bool | None,
        row_idx=None,
        col_idx=None,
        condition: torch.Tensor | None = None,
        channel_names: list[str] | None = None,
    ) -> ForecastOutput:
        """Forecast `horizon` samples of every channel after `input_values (B, C, T)`, one image frame at a time.

        Channel c sits at pixel `(row_idx[c], col_idx[c])` (given here, else `config.row_idx`/`col_idx`; both
        need `config.image_size`), the other pixels hold `config.fill_token`. The signal is mu-law encoded with
        `mu = quant_levels - 1` after dividing by `config.mulaw_max_value`. Each frame sees only the receptive
        field, through a streaming cache (`generation_config.use_cache=False` recomputes it with `forward`).
        `condition (B, cond_channels, H, W, T + horizon)`: the dense condition of every frame, context and
        forecast (models with `cond_channels` only). Returns `values (B, C, horizon)` in training units and
        `codes (B, C, horizon)`, the bins chosen at each channel's pixel.
        """
        cfg = self.config
        signal = self.check_signal(input_values, name="input_values", ndim=3, channel_names=channel_names)
        batch, _, steps = signal.shape
        image = SensorImage.for_forecast(cfg, cfg.image_size, signal, row_idx, col_idx, image_hw_name="image_size")
        if (condition is None) != (cfg.cond_channels is None):
            raise ValueError(
                "pass `condition` (B, cond_channels, H, W, T + horizon) exactly when the model has `cond_channels`"
            )
        if condition is not None:
            condition = self.check_signal(condition, name="condition", ndim=5, num_channels=cfg.cond_channels)
            _check_condition_steps(
                condition,
                (batch, cfg.cond_channels, *cfg.image_size, steps + horizon),
                "(B, cond_channels, H, W, T + horizon)",
            )
        window = cfg.receptive_field
        stream = None
        if generation_config.use_cache is not False:
            stream = WavenetStream(self.layers, self.logits, parallel_layers=False, receptive_field=window)

        def next_logits(images: torch.Tensor) -> torch.Tensor:
            """`images (B, H, W, t)` -> logits `(B, H, W, Q)` of frame t."""
            t = images.shape[-1]
            if stream is None:  # recompute the receptive field
                start = max(0, t - window)
                cond = None if condition is None else condition[..., start:t]
                return self(images[..., start:], condition=cond).logits[..., -1, :]
            if t == steps:
                logits = stream.prime(
                    self._embed(images[..., -window:]), None if condition is None else condition[..., :t]
                )
            else:  # the stream has seen up to frame t - 2: feed frame t - 1
                logits = stream.step(
                    self._embed(images[..., -1:]), None if condition is None else condition[..., t - 1 : t]
                )
            return logits[..., -1].permute(0, 2, 3, 1)

        tokens = signal_to_mulaw(signal, cfg.quant_levels, cfg.mulaw_max_value)
        codes = roll_out_frames(
            image,
            image.to_image(tokens),
            horizon,
            next_logits,
            generation_config,
            logits_processor,
            progress=progress,
            desc=f"{type(self).__name__} forecast",
        )
        values = mulaw_to_signal(codes, cfg.quant_levels, cfg.mulaw_max_value).to(signal.dtype)
        return ForecastOutput(values=values, codes=codes)
