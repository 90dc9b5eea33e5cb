"""TASA3D (brain-gen): temporal-only attention with a spatial autoencoder over token images.

Each block compresses every frame with strided 2-D convolutions, lets the flattened bottleneck frames
attend causally over time, and decodes back to full resolution. Only the attention mixes time steps,
and it is causal, so logits at time t see tokens up to t.

Submodule names (`token`, `blocks.{i}.downs/ups/attn/token_ffn/norm_full/mlp_full/out_proj`, `norm`,
`head`) follow the reference so converted checkpoints load without renaming.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.utils.generic import can_return_tuple

from ...forecasting import ForecastMixin, ForecastOutput
from ...layers.attention import MultiHeadAttention
from ...layers.mulaw_signal import mulaw_to_signal, signal_to_mulaw
from ...layers.sensor_image import SensorImage, roll_out_frames
from ...modeling_outputs import TokenPredictionOutput
from ...modeling_utils import (
    COMMON_FORWARD_KWARGS,
    BrainGenPreTrainedModel,
    check_labels,
    reject_unknown_kwargs,
)
from .configuration_tasa3d import TASA3DConfig
from .conv3d import DownStage3D, UpStage3D, time_group_norm


class TASA3DBlock(GradientCheckpointingLayer):
    """Spatial encoder -> causal temporal attention + token MLP on the bottleneck -> spatial decoder.

    Input and output are `(B, E, T, H, W)`; the block is residual around the whole autoencoder.
    There is no normalisation before the attention or the token MLP (as in the reference). After
    `model.gradient_checkpointing_enable()` its activations are recomputed in the backward pass.
    """

    def __init__(self, config: TASA3DConfig):
        super().__init__()
        self.config = config  # read at call time: `attn_implementation` can change after construction
        channels = [config.emb_dim * config.channel_grow**i for i in range(config.num_down + 1)]
        self.bottleneck_hw = config.bottleneck_hw
        self.downs = nn.ModuleList(DownStage3D(channels[i], channels[i + 1]) for i in range(config.num_down))
        self.ups = nn.ModuleList(UpStage3D(channels[i], channels[i - 1]) for i in range(config.num_down, 0, -1))
        if config.spatial_emb:
            self.spatial_emb = nn.Parameter(torch.randn(1, channels[-1], 1, *config.bottleneck_hw))
        else:
            self.register_parameter("spatial_emb", None)

        width = config.attention_dim
        hidden = int(width * config.token_mlp_ratio)
        self.attn = MultiHeadAttention(width, config.heads, dropout=config.drop, rope=config.rope)
        # Indices 0 and 3 hold the linears, as in the reference state dict.
        self.token_ffn = nn.Sequential(
            nn.Linear(width, hidden),
            nn.GELU(),
            nn.Dropout(config.drop),
            nn.Linear(hidden, width),
            nn.Dropout(config.drop),
        )

        emb = config.emb_dim
        self.norm_full = nn.GroupNorm(1, emb)
        self.mlp_full = nn.Sequential(
            nn.Conv3d(emb, 4 * emb, 1), nn.GELU(), nn.Conv3d(4 * emb, emb, 1), nn.Dropout(config.drop)
        )
        self.out_proj = nn.Conv3d(emb, emb, kernel_size=1, bias=False)

    def reset_brain_gen_parameters(self) -> None:
        if self.spatial_emb is not None:
            init.normal_(self.spatial_emb)

    def forward(
        self, x: torch.Tensor, output_attentions: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """`(B, E, T, H, W)` -> same shape; with `output_attentions=True` also the temporal attention weights
        `(B, heads, T, T)`."""
        h = x
        for down in self.downs:
            h = down(h)
        if self.spatial_emb is not None:
            h = h + self.spatial_emb
        height, width = self.bottleneck_hw
        # One token per time step: the whole bottleneck frame, channel-major.
        tokens = rearrange(h, "b c t h w -> b t (c h w)")
        attended = self.attn(
            tokens,
            is_causal=True,
            output_attentions=output_attentions,
            attn_implementation=self.config._attn_implementation,
        )
        weights = None
        if output_attentions:
            attended, weights = attended
        tokens = tokens + attended
        tokens = tokens + self.token_ffn(tokens)
        h = rearrange(tokens, "b t (c h w) -> b c t h w", h=height, w=width).contiguous()
        for up in self.ups:
            h = up(h)
        h = h + self.mlp_full(time_group_norm(self.norm_full, h))
        out = self.out_proj(h) + x
        return (out, weights) if output_attentions else out


class TASA3DPreTrainedModel(BrainGenPreTrainedModel):
    config_class = TASA3DConfig
    main_input_name = "input_ids"
    # The blocks are `GradientCheckpointingLayer`s.
    supports_gradient_checkpointing = True
    _no_split_modules = ["TASA3DBlock"]


class TASA3DModel(ForecastMixin, TASA3DPreTrainedModel):
    """TASA3D over mu-law token images.

    `forward(input_ids (B, H, W, T))` -> `TokenPredictionOutput` with `logits (B, H, W, T, Q)` (position t
    predicts the token at t+1; this layout is what classifier heads read) and `embeddings (B, H, W, T, E)`,
    the embedded tokens (or `inputs_embeds`), before any condition embedding is added. `forecast` maps a
    `(B, C, T)` signal onto the image (`config.row_idx`/`col_idx` or its own) and rolls it out frame by frame.
    """

    def __init__(self, config: TASA3DConfig):
        super().__init__(config)
        self.token = nn.Embedding(config.quant_levels, config.emb_dim)
        self.emb_tok = nn.Embedding(config.n_cond_tok, config.emb_dim) if config.n_cond_tok else None
        self.blocks = nn.ModuleList(TASA3DBlock(config) for _ in range(config.depth))
        self.norm = nn.GroupNorm(1, config.emb_dim)
        self.head = nn.Conv3d(config.emb_dim, config.quant_levels, 1)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.token

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.token = value

    def _embed(self, input_ids: torch.Tensor | None, inputs_embeds: torch.Tensor | None) -> torch.Tensor:
        cfg = self.config
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of `input_ids` (B, H, W, T) and `inputs_embeds` (B, H, W, T, E)")
        if inputs_embeds is not None:
            embeddings = self.check_signal(
                inputs_embeds, name="inputs_embeds", ndim=5, num_channels=cfg.emb_dim, channel_dim=-1
            )
            image = inputs_embeds.shape[1:3]
        else:
            self.check_tokens(input_ids, vocab_size=cfg.quant_levels, ndim=4)
            embeddings, image = self.token(input_ids), input_ids.shape[1:3]
        if list(image) != cfg.input_hw:
            raise ValueError(
                f"token image must be {cfg.input_hw[0]}x{cfg.input_hw[1]} (config.input_hw), got {image[0]}x{image[1]}"
            )
        return embeddings

    def _condition(self, condition: torch.Tensor | None, embeddings: torch.Tensor) -> torch.Tensor | None:
        if condition is None:
            return None
        if self.emb_tok is None:
            raise ValueError("`condition` was given but the model has no condition embedding (n_cond_tok=0)")
        batch, _, _, steps, _ = embeddings.shape
        self.check_tokens(condition, vocab_size=self.config.n_cond_tok, name="condition", ndim=4)
        if tuple(condition.shape) != (batch, 1, 1, steps):
            raise ValueError(
                f"`condition` must have shape {(batch, 1, 1, steps)} (one id per time step), got "
                f"{tuple(condition.shape)}"
            )
        return self.emb_tok(condition)  # (B, 1, 1, T, E), broadcast over the image

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        condition: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> TokenPredictionOutput:
        r"""
        Next-token logits of every pixel at every step.

        Args:
            input_ids (`torch.LongTensor` of shape `(B, H, W, T)`): token images in `[0, quant_levels)`, H x W =
                `config.input_hw`. Pass this or `inputs_embeds`.
            labels (`torch.LongTensor` of shape `(B, H, W, T)`, *optional*): the token at t+1 for position t (-100
                marks pixels without a sensor); `loss` is their mean cross-entropy (in float32).
            condition (`torch.LongTensor` of shape `(B, 1, 1, T)`, *optional*): condition id of every step, added
                to every pixel (models with `config.n_cond_tok > 0`; optional there).
            inputs_embeds (`torch.Tensor` of shape `(B, H, W, T, emb_dim)`, *optional*): embedded tokens instead
                of `input_ids`; any float dtype is cast to the model's.
            output_hidden_states (`bool`, *optional*): also return the first block's input (embeddings plus
                condition) and every block's output, `(B, H, W, T, emb_dim)` each.
            output_attentions (`bool`, *optional*): also return every block's temporal attention weights
                `(B, heads, T, T)`.
            return_dict (`bool`, *optional*): `False` returns a tuple of the non-None fields.

        Returns:
            `TokenPredictionOutput` with `logits (B, H, W, T, quant_levels)`, `embeddings (B, H, W, T, emb_dim)`,
            `loss`, `hidden_states`, `attentions`. Unknown keywords raise `TypeError`.
        """
        reject_unknown_kwargs(kwargs, COMMON_FORWARD_KWARGS, f"{type(self).__name__}.forward")
        cfg = self.config
        keep_hidden = output_hidden_states if output_hidden_states is not None else cfg.output_hidden_states
        keep_attentions = output_attentions if output_attentions is not None else cfg.output_attentions
        embeddings = self._embed(input_ids, inputs_embeds)
        state = embeddings
        cond = self._condition(condition, embeddings)
        if cond is not None:
            state = state + cond
        all_hidden, all_attentions = [state], []
        for block in self.blocks:
            # The block reads the (B, H, W, T, E) state, so a hidden state's gradient is the real one.
            out = block(rearrange(state, "b h w t e -> b e t h w").contiguous(), output_attentions=keep_attentions)
            if keep_attentions:
                out, weights = out
                all_attentions.append(weights)
            state = rearrange(out, "b e t h w -> b h w t e")
            all_hidden.append(state)
        hidden = rearrange(state, "b h w t e -> b e t h w").contiguous()
        logits = self.head(time_group_norm(self.norm, hidden))
        logits = rearrange(logits, "b q t h w -> b h w t q")
        return TokenPredictionOutput(
            loss=self._loss(logits, labels),
            logits=logits,
            embeddings=embeddings,
            hidden_states=tuple(all_hidden) if keep_hidden else None,
            attentions=tuple(all_attentions) if keep_attentions else None,
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

        Channel c sits at pixel `(row_idx[c], col_idx[c])` (given here, else `config.row_idx`/`col_idx`), the
        other pixels hold `config.fill_token`. The signal is mu-law encoded with `mu = quant_levels - 1` after
        dividing by `config.mulaw_max_value`. The attention sees every frame so far, so each step runs `forward`
        over the context and the frames forecast before it (no cache). `condition (B, 1, 1, T + horizon)`: the
        condition id of every frame, context and forecast (optional, models with `n_cond_tok` only). Returns
        `values (B, C, horizon)` in training units and `codes (B, C, horizon)`, the bins chosen at each
        channel's pixel.
        """
        cfg = self.config
        signal = self.check_signal(input_values, name="input_values", ndim=3, channel_names=channel_names)
        batch, _, steps = signal.shape
        image = SensorImage.for_forecast(cfg, cfg.input_hw, signal, row_idx, col_idx, image_hw_name="input_hw")
        if condition is not None:
            if self.emb_tok is None:
                raise ValueError("`condition` was given but the model has no condition embedding (n_cond_tok=0)")
            self.check_tokens(condition, vocab_size=cfg.n_cond_tok, name="condition", ndim=4)
            if tuple(condition.shape) != (batch, 1, 1, steps + horizon):
                raise ValueError(
                    f"`condition` must have shape (B, 1, 1, T + horizon) = "
                    f"{(batch, 1, 1, steps + horizon)} for this forecast (one id per frame of the context "
                    f"and of the forecast), got {tuple(condition.shape)}"
                )

        def next_logits(images: torch.Tensor) -> torch.Tensor:
            """`images (B, H, W, t)` -> logits `(B, H, W, Q)` of frame t."""
            cond = None if condition is None else condition[..., : images.shape[-1]]
            return self(images, condition=cond).logits[..., -1, :]

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

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor | None:
        if labels is None:
            return None
        labels = check_labels(labels, num_classes=logits.shape[-1])
        if labels.shape != logits.shape[:-1]:
            raise ValueError(
                f"labels must have shape {tuple(logits.shape[:-1])} (position t holds the token at t+1), "
                f"got {tuple(labels.shape)}"
            )
        # Mean over every pixel; -100 marks pixels without a sensor.
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=-100)
