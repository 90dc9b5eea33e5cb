"""BrainTokMix (the paper tokenizer) as a transformers model.

API (shared with BrainOmni, see `models/causal_tokenizer/modeling_causal_tokenizer.py`); what token LMs such as
FlatGPT*RVQ use:

* `encode(x (B, C, T), pos=None, sensor_type=None)` -> `BrainTokenizerEncoding`: `codes (B, n_neuro, W, Q)`
  int64 and quantised `embeddings (B, n_neuro, W, token_dim)`; W = T / hop. `pos`/`sensor_type` are optional
  (BrainTokMix has no sensor embedding); when given they must describe the input's channels.
* `decode(codes)` -> signal `(B, num_sensors, ceil(W / Tw) * window_length)`; `codes` is `(B, n_neuro, W, Q)`
  or flat `(B, W * n_neuro * Q)`. A partial last window repeats the last token step: crop to `W * hop`.
* `flatten_codes(codes)` / `unflatten_codes(flat)`: the reference's flat order (time, latent, level), level
  fastest: flat index = (w * n_neuro + c) * Q + q.
* `codebook_embeddings()` -> `(Q, K, token_dim)`: level q's codewords, e.g. to initialise embedding tables.
* `forward(x)` -> `BrainTokenizerOutput` with the training objective and each term.
* `init_codebooks(batch, seed=...)` (k-means, explicit) and `encode_stream(chunk, state=...)` (chunked encoding
  equal to whole-recording encoding).
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from ..causal_tokenizer.modeling_causal_tokenizer import CausalRVQTokenizerModel, build_quantizer
from ..causal_tokenizer.seanet import SEANetDecoder, SEANetEncoder
from .configuration_braintokmix import BrainTokMixConfig


class ZeroSensorEmbedding(nn.Module):
    """BrainTokMix has no sensor embedding: the shared pipeline gets zeros `(B, C, token_dim)`."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, pos: torch.Tensor, sensor_type: torch.Tensor | None = None) -> torch.Tensor:
        return torch.zeros(*pos.shape[:2], self.dim, device=pos.device, dtype=pos.dtype)


class ChannelMixEncoder(nn.Module):
    """All channels into one causal SEANet; its features split into `n_neuro` tokens (feature = c * d + j)."""

    def __init__(self, config: BrainTokMixConfig):
        super().__init__()
        self.n_neuro = config.n_neuro
        self.seanet_encoder = SEANetEncoder(
            config.num_sensors,
            config.n_dim,
            config.n_filters,
            config.ratios,
            config.kernel_size,
            config.last_kernel_size,
            config.n_residual_layers,
            config.lstm_layers,
        )

    def forward(
        self,
        windows: torch.Tensor,
        sensor_embedding: torch.Tensor | None = None,
        state: dict | None = None,
        hidden_states: list | None = None,
        attentions: list | None = None,
    ) -> torch.Tensor:
        """`(B, C, N, L)` -> latents `(B, n_neuro, N, Tw, token_dim)`; appends to `hidden_states` the SEANet stages
        `(B, N * T_stage, width)` (its last output is the latents themselves). No attention: `attentions` unused."""
        B, _, N, _ = windows.shape

        def record_stage(stage: torch.Tensor) -> torch.Tensor:
            view = rearrange(stage, "(B N) D T -> B (N T) D", B=B)
            hidden_states.append(view)
            return rearrange(view, "B (N T) D -> (B N) D T", N=N)  # what the next layer reads: the same values

        stage_hook = record_stage if hidden_states is not None else None
        features = self.seanet_encoder(rearrange(windows, "B C N L -> (B N) C L"), state, stage_hook)
        return rearrange(features, "(B N) (C D) T -> B C N T D", B=B, N=N, C=self.n_neuro)


class ChannelMixDecoder(nn.Module):
    """Latent tokens concatenated back to `n_dim` features -> causal SEANet decoder -> all channels."""

    def __init__(self, config: BrainTokMixConfig):
        super().__init__()
        self.seanet_decoder = SEANetDecoder(
            config.num_sensors,
            config.n_dim,
            config.n_filters,
            config.ratios,
            config.kernel_size,
            config.last_kernel_size,
            config.n_residual_layers,
            config.lstm_layers,
        )

    def forward(
        self, latents: torch.Tensor, sensor_embedding: torch.Tensor | None = None, attentions: list | None = None
    ) -> torch.Tensor:
        """`(B, n_neuro, N, Tw, d)` -> windows `(B, C, N, L)`."""
        B, _, N, _, _ = latents.shape
        signal = self.seanet_decoder(rearrange(latents, "B C N T D -> (B N) (C D) T"))
        return rearrange(signal, "(B N) C L -> B C N L", B=B, N=N)


class BrainTokMixModel(CausalRVQTokenizerModel):
    """BrainTokMix tokenizer (see the module docstring for the API).

    Submodule names match brain-gen's `BrainOmniCausalTokenizerSEANetChannelMix` (`encoder.seanet_encoder`,
    `quantizer.rvq`, `decoder.seanet_decoder`), so converted state dicts load as they are.
    """

    config_class = BrainTokMixConfig

    def __init__(self, config: BrainTokMixConfig):
        super().__init__(config)
        self.sensor_embed = ZeroSensorEmbedding(config.token_dim)
        self.encoder = ChannelMixEncoder(config)
        self.quantizer = build_quantizer(config)
        self.decoder = ChannelMixDecoder(config)
        self.post_init()

    def _sensor_inputs(
        self,
        x: torch.Tensor | None,
        pos: torch.Tensor | None,
        sensor_type: torch.Tensor | None,
        batch: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Only the channel count matters; optional metadata must agree with it."""
        cfg = self.config
        batch = x.shape[0] if x is not None else batch
        if x is not None and x.shape[1] != cfg.num_sensors:
            raise ValueError(
                f"input_values has {x.shape[1]} channels, BrainTokMix expects `num_sensors` = {cfg.num_sensors}"
            )
        for name, value in (("pos", pos), ("sensor_type", sensor_type)):
            if value is not None and (
                not isinstance(value, torch.Tensor)
                or value.ndim < 2
                or tuple(value.shape[:2]) != (batch, cfg.num_sensors)
            ):
                raise ValueError(
                    f"`{name}` must describe ({batch}, {cfg.num_sensors}) channels, got shape "
                    f"{tuple(getattr(value, 'shape', ()))}"
                )
        device = x.device if x is not None else self.device
        dtype = x.dtype if x is not None else torch.float32
        return torch.zeros(batch, cfg.num_sensors, 0, device=device, dtype=dtype), None
