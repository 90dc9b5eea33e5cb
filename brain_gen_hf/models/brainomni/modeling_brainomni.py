"""BrainOmni causal tokenizer as a transformers model.

API (shared with BrainTokMix, see `models/causal_tokenizer/modeling_causal_tokenizer.py`):

* `encode(x (B, C, T), pos, sensor_type)` -> `BrainTokenizerEncoding(codes (B, C', W, Q), embeddings (B, C', W, D))`
  with C' = `n_neuro` latents, W = T / hop token steps, Q RVQ levels.
* `decode(codes, pos, sensor_type)` -> signal `(B, C, ceil(W / Tw) * L)`; codes `(B, C', W, Q)` or flat.
* `forward(x, pos, sensor_type)` -> `BrainTokenizerOutput` (loss and its terms, reconstruction, codes).
* `flatten_codes` / `unflatten_codes`: the reference's flat order (time, latent, level), level fastest.
* `codebook_embeddings()` -> `(Q, K, D)`; `init_codebooks(batch, ..., seed)`; `encode_stream(chunk, ..., state)`.

Sensor metadata: `pos (B, C, 6)` positions+orientations and `sensor_type (B, C)` ids. In "source" space only
the channel count matters (`pos` may be `(B, C, k)` for any k). When not passed they come from the config's
signal contract (`sensor_positions` + `sensor_orientations`, `sensor_type_ids`; in source space the channel
count of the contract suffices). Nothing is remembered between calls.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn
from transformers import initialization as init

from ...layers.brainomni_attention import BackwardSolution, FixedSensorEmbedding, ForwardSolution, SensorEmbedding
from ..causal_tokenizer.modeling_causal_tokenizer import CausalRVQTokenizerModel, build_quantizer
from ..causal_tokenizer.seanet import SEANetDecoder, SEANetEncoder
from .configuration_brainomni import NUM_SENSOR_TYPES, BrainOmniCausalTokenizerConfig


class BrainOmniCausalEncoder(nn.Module):
    """Per-sensor causal SEANet, then `n_neuro` latent queries attend over the sensors at every token step."""

    def __init__(self, config: BrainOmniCausalTokenizerConfig):
        super().__init__()
        self.config = config  # read at call time: `config._attn_implementation` follows `set_attn_implementation`
        self.seanet_encoder = SEANetEncoder(
            1,
            config.n_dim,
            config.n_filters,
            config.ratios,
            config.kernel_size,
            config.last_kernel_size,
            config.n_residual_layers,
            config.lstm_layers,
        )
        self.neuros = nn.Parameter(torch.zeros(config.n_neuro, config.n_dim))
        self.backwardsolution = BackwardSolution(config.n_dim, config.n_head, config.dropout)
        self.k_proj = nn.Linear(config.n_dim, config.n_dim)

    def reset_brain_gen_parameters(self) -> None:
        init.trunc_normal_(self.neuros, std=0.02)  # the reference's init of the latent queries

    def forward(
        self,
        windows: torch.Tensor,
        sensor_embedding: torch.Tensor,
        state: dict | None = None,
        hidden_states: list | None = None,
        attentions: list | None = None,
    ) -> torch.Tensor:
        """`(B, C, N, L)` windows, `(B, C, D)` sensor embedding -> latents `(B, n_neuro, N, Tw, D)`.

        Appends to `hidden_states` the SEANet stages `(B, C, N * T_stage, width)` and the per-sensor features
        `(B, C, W, D)`, to `attentions` the latents-over-sensors map `(B * W, heads, n_neuro, C)`.
        """
        B, C, N, _ = windows.shape

        def record_stage(stage: torch.Tensor) -> torch.Tensor:
            view = rearrange(stage, "(B C N) D T -> B C (N T) D", B=B, C=C)
            hidden_states.append(view)
            return rearrange(view, "B C (N T) D -> (B C N) D T", N=N)  # what the next layer reads: the same values

        stage_hook = record_stage if hidden_states is not None else None
        features = self.seanet_encoder(rearrange(windows, "B C N L -> (B C N) 1 L"), state, stage_hook)
        features = rearrange(features, "(B C N) D T -> B C (N T) D", B=B, C=C, N=N)
        if hidden_states is not None:
            hidden_states.append(features)
        keys = self.k_proj(rearrange(features + sensor_embedding.unsqueeze(2), "B C W D -> (B W) C D"))
        values = rearrange(features, "B C W D -> (B W) C D")
        queries = self.neuros.type_as(values).unsqueeze(0).expand(values.shape[0], -1, -1)
        latents, weights = self.backwardsolution(
            queries, keys, values, self.config._attn_implementation, output_attentions=attentions is not None
        )
        if attentions is not None:
            attentions.append(weights)
        return rearrange(latents, "(B N T) C D -> B C N T D", B=B, N=N)


class BrainOmniCausalDecoder(nn.Module):
    """Sensor embeddings attend over the latents at every token step, then a per-sensor causal SEANet decoder."""

    def __init__(self, config: BrainOmniCausalTokenizerConfig):
        super().__init__()
        self.config = config
        self.forwardsolution = ForwardSolution(config.n_dim, config.n_head, config.dropout)
        self.seanet_decoder = SEANetDecoder(
            1,
            config.n_dim,
            config.n_filters,
            config.ratios,
            config.kernel_size,
            config.last_kernel_size,
            config.n_residual_layers,
            config.lstm_layers,
        )

    def forward(
        self, latents: torch.Tensor, sensor_embedding: torch.Tensor, attentions: list | None = None
    ) -> torch.Tensor:
        """`(B, n_neuro, N, Tw, D)` latents -> windows `(B, C, N, L)`; appends to `attentions` the
        sensors-over-latents map `(B * W, heads, C, n_neuro)`."""
        B, _, N, T, _ = latents.shape
        queries = sensor_embedding[:, :, None, None].expand(-1, -1, N, T, -1)
        sensors, weights = self.forwardsolution(
            rearrange(queries, "B C N T D -> (B N T) C D"),
            rearrange(latents, "B C N T D -> (B N T) C D"),
            self.config._attn_implementation,
            output_attentions=attentions is not None,
        )
        if attentions is not None:
            attentions.append(weights)
        signal = self.seanet_decoder(rearrange(sensors, "(B N T) C D -> (B C N) D T", B=B, N=N, T=T))
        return rearrange(signal, "(B C N) 1 L -> B C N L", B=B, N=N)


class BrainOmniCausalTokenizerModel(CausalRVQTokenizerModel):
    """BrainOmni causal tokenizer (see the module docstring for the API).

    Submodule names match brain-gen's `BrainOmniCausalTokenizer` (`sensor_embed`, `encoder`, `quantizer.rvq`,
    `decoder`), so converted state dicts load as they are.
    """

    config_class = BrainOmniCausalTokenizerConfig

    def __init__(self, config: BrainOmniCausalTokenizerConfig):
        super().__init__(config)
        if config.sensor_space == "source":
            self.sensor_embed = FixedSensorEmbedding(config.n_dim, config.num_sensors)
        else:
            self.sensor_embed = SensorEmbedding(config.n_dim, n_type=NUM_SENSOR_TYPES)
        self.encoder = BrainOmniCausalEncoder(config)
        self.quantizer = build_quantizer(config)
        self.decoder = BrainOmniCausalDecoder(config)
        self.post_init()

    def _sensor_inputs(
        self,
        x: torch.Tensor | None,
        pos: torch.Tensor | None,
        sensor_type: torch.Tensor | None,
        batch: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Resolve `(pos, sensor_type)` from the arguments or the config, checked against the input."""
        cfg = self.config
        batch = x.shape[0] if x is not None else batch
        channels = x.shape[1] if x is not None else None
        device = x.device if x is not None else self.device
        source = cfg.sensor_space == "source"
        if pos is None:
            pos = self._contract_positions(source)
            if pos is not None:
                pos = pos.to(device).unsqueeze(0).expand(batch, -1, -1)
        if sensor_type is None and cfg.sensor_type_ids is not None:
            sensor_type = torch.tensor(cfg.sensor_type_ids, device=device).unsqueeze(0).expand(batch, -1)
        if pos is None or (sensor_type is None and not source):
            raise ValueError(
                "missing sensor metadata: pass `pos` (B, C, 6) and `sensor_type` (B, C), or set "
                "`sensor_positions`/`sensor_orientations`/`sensor_type_ids` (source space: any channel "
                "metadata) in the config"
            )
        if not isinstance(pos, torch.Tensor) or pos.ndim != 3 or not pos.is_floating_point():
            raise ValueError(f"`pos` must be a float tensor (B, C, n_pos), got {getattr(pos, 'shape', type(pos))}")
        channels = channels if channels is not None else pos.shape[1]
        if tuple(pos.shape[:2]) != (batch, channels):
            raise ValueError(
                f"`pos` describes {pos.shape[1]} channels (shape {tuple(pos.shape)}) but the input has "
                f"{channels} channels and batch {batch}"
            )
        if not torch.isfinite(pos).all():
            raise ValueError("`pos` contains NaN/inf values")
        pos = self._in_model_dtype(pos, "`pos`")  # float64 sensor geometry is cast like the signal
        if sensor_type is None:
            sensor_type = torch.zeros(batch, channels, dtype=torch.long, device=pos.device)
        self.check_tokens(sensor_type, vocab_size=NUM_SENSOR_TYPES, name="sensor_type", ndim=2)
        if tuple(sensor_type.shape) != (batch, channels):
            raise ValueError(
                f"`sensor_type` has shape {tuple(sensor_type.shape)}, expected ({batch}, {channels}): one "
                "type per channel"
            )
        if source and channels > cfg.num_sensors:
            raise ValueError(
                f"the input has {channels} channels but the source-space embedding has only "
                f"{cfg.num_sensors} slots (`num_sensors`)"
            )
        if not source and pos.shape[-1] != self.sensor_embed.n_pos:
            raise ValueError(
                f"`pos` must hold {self.sensor_embed.n_pos} numbers per sensor (position + orientation), "
                f"got {pos.shape[-1]}"
            )
        return pos, sensor_type

    def _contract_positions(self, source: bool) -> torch.Tensor | None:
        cfg = self.config
        if cfg.sensor_positions is not None and (source or cfg.sensor_orientations is not None):
            rows = (
                cfg.sensor_positions
                if source
                else [p + o for p, o in zip(cfg.sensor_positions, cfg.sensor_orientations)]
            )
            return torch.tensor(rows, dtype=torch.float32)
        if source and cfg.contract_num_channels is not None:
            return torch.zeros(cfg.contract_num_channels, 0)  # only the channel count matters
        return None
