"""BrainOmni causal forecaster: next-step RVQ codes of every latent channel, rolled out with a KV cache.

The model holds its tokenizer (`self.tokenizer`, a `BrainOmniCausalTokenizerModel` built from
`config.tokenizer_config`), so one `save_pretrained` folder carries both.

* `forward(x, pos, sensor_type)` -> `BrainOmniForecastOutput`: codes of the input, logits `(B, C', W-1, Qu, K)`
  for steps 1..W-1 from steps 0..W-2, cross-entropy (+ the tokenizer's commitment loss when trained jointly).
* `logits_from_embeddings(embeddings (B, C', W, D), cache=None)` -> `(B, C', W, Qu, K)`: the transformer alone.
* `forecast(x, horizon, generation_config=None, pos=..., sensor_type=...)` -> `BrainOmniForecastResult`: the
  next `horizon` samples decoded from whole token steps, greedy or sampled per the `GenerationConfig`, with a
  `DynamicCache` over the temporal attention (`GenerationConfig(use_cache=False)` recomputes).

Differences from brain-gen's `BrainOmniCausalForecast` are listed in docs/reference-differences.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from transformers import DynamicCache, GenerationConfig, LogitsProcessorList
from transformers.utils import ModelOutput
from transformers.utils.generic import can_return_tuple

from ...forecasting import ForecastMixin, ForecastOutput, choose_next, forecast_progress
from ...modeling_utils import (
    COMMON_FORWARD_KWARGS,
    BrainGenPreTrainedModel,
    reject_unknown_kwargs,
    sub_model_from_config,
)
from .configuration_brainomni_forecast import BrainOmniCausalForecastConfig
from .spatiotemporal_attention import SpatialTemporalAttentionBlock


@dataclass
class BrainOmniForecastOutput(ModelOutput):
    """loss: `cross_entropy` (+ `commitment_loss` when the tokenizer is trained jointly).

    logits: `(B, C', W-1, Qu, K)`; position t predicts the codes of step t+1. targets: `(B, C', W-1, Qu)`.
    accuracy: argmax accuracy (a metric); codes: `(B, C', W, Q)` codes of the input.
    hidden_states: with `output_hidden_states=True`, the transformer's input (projected latent embeddings) then each
        block's output, `(B, C', W-1, lm_dim)`.
    attentions: with `output_attentions=True`, each block's causal attention over time `(B * C', lm_head / 2, W-1,
        W-1)`; spatial_attentions: each block's attention over the latents `(B * (W-1), lm_head / 2, C', C')`.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    targets: torch.Tensor | None = None
    cross_entropy: torch.Tensor | None = None
    commitment_loss: torch.Tensor | None = None
    accuracy: torch.Tensor | None = None
    codes: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None
    spatial_attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class BrainOmniForecastResult(ForecastOutput):
    """`forecast`: `values` `(B, C, horizon)`; `codes` `(B, C', ceil(horizon / hop), Q)` the generated steps
    (levels not predicted carried over from the last context step); `context_reconstruction` `(B, C, W * hop)`
    the decoded context codes, continuous with `values`; `context_codes` `(B, C', W, Q)` the codes of the input."""

    context_reconstruction: torch.Tensor | None = None
    context_codes: torch.Tensor | None = None


class BrainOmniCausalForecastModel(ForecastMixin, BrainGenPreTrainedModel):
    """Autoregressive spatial/temporal transformer over BrainOmni tokenizer codes (see the module docstring).

    `output_hidden_states`/`output_attentions`/`return_dict` follow transformers (see `BrainOmniForecastOutput`);
    `gradient_checkpointing_enable()` recomputes the transformer blocks (and the tokenizer's residual blocks). The
    model reads continuous signals: it has no input token table (`get_input_embeddings()` returns `None`).
    """

    config_class = BrainOmniCausalForecastConfig
    main_input_name = "input_values"
    supports_gradient_checkpointing = True
    _no_split_modules = ["SpatialTemporalAttentionBlock"]

    def __init__(self, config: BrainOmniCausalForecastConfig):
        super().__init__(config)
        tok = config.tokenizer_config
        self.tokenizer = sub_model_from_config(tok)
        self.projection = nn.Linear(tok.n_dim, config.lm_dim) if tok.n_dim != config.lm_dim else nn.Identity()
        self.blocks = nn.ModuleList(
            [
                SpatialTemporalAttentionBlock(config.lm_dim, config.lm_head, config.lm_dropout, causal=True)
                for _ in range(config.lm_depth)
            ]
        )
        self.predict_head = nn.Linear(config.lm_dim, config.num_quantizers_used * tok.codebook_size)
        self.post_init()

    def get_input_embeddings(self) -> None:
        """`None`: the forecaster reads continuous signals (through its tokenizer), it has no input token table."""
        return None

    def set_input_embeddings(self, value: nn.Module) -> None:
        raise ValueError(f"{type(self).__name__} reads continuous signals: it has no input token table to replace")

    # -------------------------------------------------------------- pieces
    def embed_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """`(B, C', W, Qu)` -> `(B, C', W, D)`: sum of the codewords of the levels the model predicts."""
        layers = self.tokenizer.quantizer.rvq.layers
        out = layers[0].decode(codes[..., 0])
        for q in range(1, codes.shape[-1]):
            out = out + layers[q].decode(codes[..., q])
        return out

    def logits_from_embeddings(self, embeddings: torch.Tensor, cache: DynamicCache | None = None) -> torch.Tensor:
        """Latent embeddings `(B, C', W, D)` -> next-step logits `(B, C', W, Qu, K)` (causal in W).

        With `cache`, the W steps continue the cached sequence (positions and keys of earlier steps).
        """
        return self._transformer(embeddings, cache)[0]

    def _transformer(
        self,
        embeddings: torch.Tensor,
        cache: DynamicCache | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, tuple | None, tuple | None, tuple | None]:
        """`(logits, hidden_states, temporal attentions, spatial attentions)`, the last three `None` unless asked."""
        if cache is not None and self.training and self.is_gradient_checkpointing:
            raise ValueError(
                "a KV cache cannot be filled under gradient checkpointing in training mode (the backward pass would "
                "write it again): call model.eval() or model.gradient_checkpointing_disable() first"
            )
        latent_bias = self.tokenizer.encoder.neuros.detach().type_as(embeddings)[None, :, None, :]
        x = self.projection(embeddings + latent_bias)
        hidden_states = [x] if output_hidden_states else None
        temporal, spatial = ([], []) if output_attentions else (None, None)
        implementation = self.config._attn_implementation
        for i, block in enumerate(self.blocks):
            x, temporal_weights, spatial_weights = block(
                x, cache=cache, layer_idx=i, implementation=implementation, output_attentions=output_attentions
            )
            if output_hidden_states:
                hidden_states.append(x)
            if output_attentions:
                temporal.append(temporal_weights)
                spatial.append(spatial_weights)
        logits = rearrange(self.predict_head(x), "B C W (Q K) -> B C W Q K", Q=self.config.num_quantizers_used)
        return logits, _as_tuple(hidden_states), _as_tuple(temporal), _as_tuple(spatial)

    def _tokenize(self, x, pos, sensor_type, **kwargs):
        if self.config.freeze_tokenizer:
            was_training = self.tokenizer.training
            self.tokenizer.eval()
            try:
                with torch.no_grad():
                    return self.tokenizer.encode(x, pos, sensor_type, **kwargs)
            finally:
                self.tokenizer.train(was_training)
        return self.tokenizer.encode(x, pos, sensor_type, **kwargs)

    # ------------------------------------------------------------- forward
    @can_return_tuple
    def forward(
        self,
        input_values: torch.Tensor,
        pos: torch.Tensor | None = None,
        sensor_type: torch.Tensor | None = None,
        *,
        sampling_rate: float | None = None,
        channel_names: list[str] | None = None,
        allow_shorter_windows: bool = False,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> BrainOmniForecastOutput:
        """Tokenize a signal and predict each token step's codes from the steps before it.

        Args:
            input_values: `(B, C, T)` float signal in whole tokenizer windows, at least 2 token steps (W = T / hop);
                any float dtype (cast to the model's).
            pos, sensor_type: the tokenizer's sensor metadata `(B, C, n_pos)` / `(B, C)` (optional where the
                tokenizer config's signal contract provides them).
            sampling_rate, channel_names, allow_shorter_windows: as in the tokenizer's `encode`.
            output_hidden_states, output_attentions: the transformer's states / attention maps (see
                `BrainOmniForecastOutput`); default: the config's values.
            return_dict: `False` returns a tuple of the non-`None` fields.

        Returns:
            `BrainOmniForecastOutput`: `logits (B, C', W-1, Qu, K)`, `targets (B, C', W-1, Qu)`, the cross-entropy
            `loss` (+ the tokenizer's commitment loss when trained jointly), `codes (B, C', W, Q)`. Inputs are
            checked as in the tokenizer's `encode`; unknown keywords raise `TypeError`.
        """
        reject_unknown_kwargs(kwargs, COMMON_FORWARD_KWARGS, f"{type(self).__name__}.forward")
        cfg = self.config
        if output_hidden_states is None:
            output_hidden_states = cfg.output_hidden_states
        if output_attentions is None:
            output_attentions = cfg.output_attentions
        encoding = self._tokenize(
            input_values,
            pos,
            sensor_type,
            sampling_rate=sampling_rate,
            channel_names=channel_names,
            allow_shorter_windows=allow_shorter_windows,
        )
        codes = encoding.codes
        if codes.shape[2] < 2:
            raise ValueError(
                f"the input gives {codes.shape[2]} token step(s); next-step prediction needs at least 2 "
                f"(at least {2 * self.tokenizer.hop_length} samples in whole windows)"
            )
        used = cfg.num_quantizers_used
        if used == cfg.tokenizer_config.num_quantizers and not cfg.freeze_tokenizer:
            embeddings = encoding.embeddings  # joint training: gradients reach the tokenizer
        else:
            embeddings = self.embed_codes(codes[..., :used])
        logits, hidden_states, attentions, spatial_attentions = self._transformer(
            embeddings[:, :, :-1], output_hidden_states=output_hidden_states, output_attentions=output_attentions
        )
        targets = codes[:, :, 1:, :used]
        cross_entropy = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1))
        loss, commitment = cross_entropy, None
        if not cfg.freeze_tokenizer:
            commitment = encoding.commitment_loss
            loss = loss + commitment
        accuracy = (logits.detach().argmax(-1) == targets).float().mean()
        return BrainOmniForecastOutput(
            loss=loss,
            logits=logits,
            targets=targets,
            cross_entropy=cross_entropy,
            commitment_loss=commitment,
            accuracy=accuracy,
            codes=codes,
            hidden_states=hidden_states,
            attentions=attentions,
            spatial_attentions=spatial_attentions,
        )

    # ------------------------------------------------------------ forecast
    def _forecast(
        self,
        input_values: torch.Tensor,
        horizon: int,
        generation_config: GenerationConfig,
        logits_processor: LogitsProcessorList,
        *,
        progress: bool | None = None,
        pos: torch.Tensor | None = None,
        sensor_type: torch.Tensor | None = None,
        sampling_rate: float | None = None,
        channel_names: list[str] | None = None,
        allow_shorter_windows: bool = False,
    ) -> BrainOmniForecastResult:
        """Roll the latent sequence out by whole token steps and decode it to signal space.

        The rollout covers `ceil(horizon / hop)` token steps (the tokenizer's hop: `tokenizer.hop_length`
        samples per step); `values` are the first `horizon` decoded samples after the context, so a horizon
        that is not a multiple of the hop costs one step more and drops its tail. Each step chooses the codes of
        every latent channel and predicted RVQ level at once (`choose_next` over the codebook); levels the model
        does not predict are carried over from the last context step. `generation_config.use_cache=False`
        recomputes the whole sequence at every step instead of extending a `DynamicCache` (same codes). Runs in
        eval mode, so the tokenizer's codebooks are never updated. The context is checked as in `forward`.
        """
        hop = self.tokenizer.hop_length
        steps = -(-horizon // hop)
        encoding = self.tokenizer.encode(
            input_values,
            pos,
            sensor_type,
            sampling_rate=sampling_rate,
            channel_names=channel_names,
            allow_shorter_windows=allow_shorter_windows,
        )
        codes = encoding.codes
        used = codes[..., : self.config.num_quantizers_used]
        cache = DynamicCache() if generation_config.use_cache is not False else None
        logits = self.logits_from_embeddings(self.embed_codes(used), cache)
        new = []
        with forecast_progress(steps, f"{type(self).__name__} rollout", progress) as bar:
            for step in range(steps):
                new.append(choose_next(logits[:, :, -1], generation_config, logits_processor).unsqueeze(2))
                bar.update(1)
                if step + 1 < steps:
                    if cache is not None:
                        logits = self.logits_from_embeddings(self.embed_codes(new[-1]), cache)
                    else:
                        logits = self.logits_from_embeddings(self.embed_codes(torch.cat([used, *new], dim=2)))
        generated = torch.cat(new, dim=2)  # (B, C', steps, Qu)
        carried = codes[:, :, -1:, generated.shape[-1] :].expand(-1, -1, steps, -1)
        generated = torch.cat([generated, carried], dim=-1)
        all_codes = torch.cat([codes, generated], dim=2)
        context_len = codes.shape[2] * hop
        signal = self.tokenizer.decode(all_codes, pos, sensor_type)
        return BrainOmniForecastResult(
            values=signal[..., context_len : context_len + horizon],
            codes=generated,
            context_reconstruction=signal[..., :context_len],
            context_codes=codes,
        )


def _as_tuple(items: list | None) -> tuple | None:
    return tuple(items) if items is not None else None
