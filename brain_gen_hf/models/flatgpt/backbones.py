"""FlatGPT backbones: a transformers decoder built from `backbone_config`, fed with FlatGPT's own positions.

`FlatGPTBackbone` is the family's base model (every LM's `transformer`, its `base_model`); `FlatGPTPreTrainedModel`
holds what the backbone and the LMs share (init rules, attention and checkpointing support).

The decoder itself is never vendored. What FlatGPT adds around it:

* the decoder is `AutoModel.from_config(backbone_config)`: any registered transformers decoder that takes
  `inputs_embeds` (`decoder_kinds.py` reads what FlatGPT needs to know about it off its config and signature);
* positions by kind: 3-D (t, h, w) ids of the flattened reduced grid for the Qwen video decoders
  (`grid_position_ids`), plain 1-D ids for the text decoders, none for recurrent ones; with a cache the offset is
  the cache length;
* the decoder's own cache type (`decoder_caches.py`): dynamic, sliding-window, hybrid Mamba/attention,
  MiniMax's, recurrent states, xLSTM's;
* for the Qwen decoders, the decoder's `rotary_emb` submodule is replaced by `GridRotaryEmbedding`, which
  reproduces what brain-gen's trained checkpoints depend on (integer `mrope_section`, cos/sin rounded to bf16);
  a RoPE change (`resize_context`) updates the decoder config and builds a fresh rotary module from it;
* a block-causal mask when `block_size > 1` (sliding-window layers get the sliding-window block-causal mask), built
  with transformers' own mask functions; the config refuses block prediction for decoders with recurrent layers.

Every step, prefill or cached decode, goes through the transformers text model's own forward.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoModel
from transformers import initialization as init
from transformers.cache_utils import Cache, DynamicCache
from transformers.masking_utils import create_causal_mask, create_sliding_window_causal_mask
from transformers.modeling_outputs import BaseModelOutputWithPast

from ...compat import CACHE_KWARG
from ...modeling_utils import BrainGenPreTrainedModel
from .configuration_flatgpt import FlatGPTBaseConfig, FlatGPTConfig
from .decoder_caches import RecurrentStateCache, SizedOnFirstStepxLSTMCache, cache_class
from .decoder_caches import new_cache as new_decoder_cache
from .decoder_kinds import decoder_kind
from .sensor_layout_positions import layout_position_ids, sensor_rows_cols
from .sparse_attention import sparse_attention_mask


def grid_position_ids(
    grid: tuple[int, int, int], start: int, length: int, batch_size: int, device: torch.device | None = None
) -> torch.Tensor:
    """`(3, B, length)` (t, h, w) ids of flattened grid cells `[start, start + length)` (row-major t, h, w)."""
    T, H, W = grid
    if start < 0 or start + length > T * H * W:
        raise ValueError(
            f"positions {start}:{start + length} exceed the {T * H * W} cells of the token grid "
            f"{tuple(grid)}; shorten the context or enlarge it with `resize_context()`"
        )
    if length == 1:
        # A cached decode step: the same integer ids from Python ints, one op instead of six.
        ids = torch.tensor([[start // (H * W)], [(start // W) % H], [start % W]], device=device)
    else:
        index = torch.arange(start, start + length, device=device)
        ids = torch.stack([index // (H * W), (index // W) % H, index % W])
    return ids.unsqueeze(1).expand(3, batch_size, length)


def default_inv_freq(theta: float, head_dim: int, device=None) -> torch.Tensor:
    return 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64, device=device).float() / head_dim))


class GridRotaryEmbedding(nn.Module):
    """Multimodal RoPE over (t, h, w) position ids, with brain-gen's numerics.

    Each axis gets standard RoPE angles `pos * inv_freq`; the head dimension is then divided among the axes:

    * `mrope_section` as an **int** s (every brain-gen config): the duplicated (head_dim wide) angle table is cut
      into contiguous chunks of 2s and chunk i takes axis i mod 3. Rotate-half then pairs dims j and
      j + head_dim/2, which can belong to different axes, so this is not a rotation; trained weights rely on it.
    * as a **list** [s_t, s_h, s_w]: the standard Qwen2.5-VL layout (sections of each half).
    * `interleaved=True` (Qwen3-VL): frequency f takes H when f % 3 == 1 and f < 3 s_h, W when f % 3 == 2 and
      f < 3 s_w, T otherwise.

    cos/sin are rounded to `rope_dtype` (bf16 in brain-gen) and promote back when multiplied with fp32 q/k. With
    float16 activations they are cast to float16 (exact but for magnitudes below float16's smallest subnormal:
    bf16's 8-bit mantissa fits float16's 10), so q, k and v keep one dtype.
    """

    def __init__(
        self,
        head_dim: int,
        rope_theta: float,
        mrope_section,
        interleaved: bool = False,
        rope_dtype: torch.dtype | None = torch.bfloat16,
    ):
        super().__init__()
        self.head_dim = head_dim
        self.rope_theta = float(rope_theta)
        self.mrope_section = mrope_section
        self.interleaved = interleaved
        self.rope_dtype = rope_dtype
        # (device, per-column inv_freq, per-column axis): plain attributes, not buffers (see below)
        self._columns = None

    # Computed on use rather than stored: a non-persistent buffer inside a transformers sub-model is re-created
    # empty by `from_pretrained`.
    @property
    def inv_freq(self) -> torch.Tensor:
        return default_inv_freq(self.rope_theta, self.head_dim)

    def axis_tables(self, x: torch.Tensor, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-axis `(3, B, L, head_dim)` cos/sin (before the axes are merged), in the rounding dtype."""
        freqs = position_ids[..., None].float() * self.inv_freq.to(x.device)
        emb = torch.cat((freqs, freqs), dim=-1)
        return self._round(emb.cos(), x), self._round(emb.sin(), x)

    def forward(self, x: torch.Tensor, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if position_ids.ndim == 2:
            position_ids = position_ids.unsqueeze(0).expand(3, -1, -1)
        # Same angles as `_merge_axes(position_ids[..., None].float() * inv_freq)`: merging only moves elements of
        # the (3, B, L, hd/2) product, so each merged angle is the same single fp32 product pos * inv_freq, and
        # computing just the kept ones is bit-identical. This runs on every decode step, where the ~20 small ops
        # of the full table were a noticeable share of a small model's step. `contiguous()` keeps cos/sin on the
        # same memory layout (hence the same vectorised kernels) as the merged table had.
        inv_freq, axis = self._column_tables(x.device)
        emb = (position_ids.float().permute(1, 2, 0)[..., axis] * inv_freq).contiguous()  # (B, L, hd)
        return self._for_activations(self._round(emb.cos(), x), x), self._for_activations(self._round(emb.sin(), x), x)

    def _column_tables(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Per merged column: its inverse frequency and the axis (0 t, 1 h, 2 w) its position comes from.

        Derived by running `_merge_axes` on a tagged table, so the layout has one definition. Cached per device
        (a new `rope_theta` comes with a new module, see `FlatGPTBackbone.set_rope`).
        """
        cached = self._columns
        if cached is not None and cached[0] == device:
            return cached[1], cached[2]
        inv_freq = self.inv_freq
        half = inv_freq.shape[0]
        tags = torch.arange(3 * half, dtype=torch.float64).view(3, 1, 1, half)  # axis * half + frequency
        merged = self._merge_axes(tags).view(-1).long()
        axis, frequency = merged // half, merged % half
        tables = (inv_freq[frequency].to(device), axis.to(device))
        self._columns = (device, *tables)
        return tables

    def _merge_axes(self, freqs: torch.Tensor) -> torch.Tensor:
        if self.interleaved:
            merged = freqs[0].clone()
            for axis in (1, 2):
                stop = self.mrope_section[axis] * 3
                merged[..., axis:stop:3] = freqs[axis, ..., axis:stop:3]
            return torch.cat((merged, merged), dim=-1)
        emb = torch.cat((freqs, freqs), dim=-1)  # (3, B, L, hd)
        if isinstance(self.mrope_section, int):
            sizes = 2 * self.mrope_section
        else:
            sizes = list(self.mrope_section) * 2
        return torch.cat([chunk[i % 3] for i, chunk in enumerate(emb.split(sizes, dim=-1))], dim=-1)

    def _round(self, table: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return table.to(self.rope_dtype if self.rope_dtype is not None else x.dtype)

    @staticmethod
    def _for_activations(table: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        # fp32 activations promote the rounded table themselves (brain-gen's numerics). Half-precision activations of
        # the other kind (float16 with bf16 tables) would promote q and k to float32 while v stays half: cast instead.
        if table.dtype != x.dtype and x.dtype in (torch.float16, torch.bfloat16):
            return table.to(x.dtype)
        return table


def block_causal_mask(block_size: int, past_length: int, length: int, device=None) -> torch.Tensor:
    """`(1, 1, L, past + L)` boolean mask: token q sees token k iff k // block <= q // block."""
    q = torch.arange(past_length, past_length + length, device=device)[:, None] // block_size
    k = torch.arange(past_length + length, device=device)[None, :] // block_size
    return (k <= q)[None, None]


def same_block(block_size: int):
    """A transformers mask function (`or_mask_function`): q and k lie in the same block. Causal OR same block is
    block-causal (k // block <= q // block); with a sliding window, the window also bounds the earlier blocks."""

    def in_same_block(batch_idx, head_idx, q_idx, kv_idx):
        return q_idx // block_size == kv_idx // block_size

    return in_same_block


class FlatGPTPreTrainedModel(BrainGenPreTrainedModel):
    config_class = FlatGPTConfig
    # Every FlatGPT LM keeps its backbone (`FlatGPTBackbone`, the base model) under `transformer`.
    base_model_prefix = "transformer"
    main_input_name = "input_ids"
    # The backbones' decoder layers are transformers' checkpointable layers.
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = False
    _supports_flex_attn = False
    _can_compile_fullgraph = False

    def _init_module(self, module: nn.Module) -> None:
        # transformers' decoder init (what brain-gen's backbones and FlatGPT tables used): N(0, 0.02).
        # Decoders without the field (xLSTM on transformers < 5.24) get transformers' usual 0.02.
        std = getattr(self.config.backbone_config, "initializer_range", 0.02)
        reset = getattr(module, "reset_brain_gen_parameters", None)
        if reset is not None:
            reset()
        elif isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=std)
        elif "RMSNorm" in type(module).__name__ and getattr(module, "weight", None) is not None:
            init.ones_(module.weight)
        elif "RotaryEmbedding" in type(module).__name__ and hasattr(module, "compute_default_rope_parameters"):
            inv_freq, _ = module.compute_default_rope_parameters(module.config)
            init.copy_(module.inv_freq, inv_freq)
            init.copy_(module.original_inv_freq, inv_freq)


class FlatGPTBackbone(FlatGPTPreTrainedModel):
    """A transformers decoder (`self.model`, key names as in brain-gen: `transformer.model.*`) plus positions.

    `forward(inputs_embeds, cache, use_cache, output_attentions, output_hidden_states)` -> the decoder's
    `BaseModelOutputWithPast` (`last_hidden_state`, the cache, `hidden_states`, `attentions`).
    """

    # Built from any variant's config (the amplitude and the RVQ LMs share it).
    config_class = FlatGPTBaseConfig
    main_input_name = "inputs_embeds"

    def __init__(self, config: FlatGPTBaseConfig, keep_token_embedding: bool = True):
        super().__init__(config)
        backbone_config = config.backbone_config
        self.kind = decoder_kind(backbone_config)
        self.model = AutoModel.from_config(backbone_config)
        self.block_size = config.block_size
        self.grid = tuple(config.rope_grid) if config.uses_video_rope else None
        self.rope_dtype = getattr(torch, config.rope_dtype) if config.rope_dtype else None
        # brain-gen's `sparse: true` and `layout_path` (sparse_attention.py, sensor_layout_positions.py)
        self.sparse_attention = config.sparse_attention
        self.sensor_layout = None
        if config.rope_layout_positions is not None:
            self.sensor_layout = sensor_rows_cols(config.rope_layout_positions, config.rope_layout_grid_size)
        if not keep_token_embedding:
            # The variant embeds tokens itself: do not keep a dead (V, hidden) table, nor its tensor-parallel entry.
            table = self.model.get_input_embeddings()
            name = next(name for name, module in self.model.named_children() if module is table)
            setattr(self.model, name, None)
            self.model.tp_plan = {k: v for k, v in (self.model.tp_plan or {}).items() if k.split(".")[0] != name}
        if self.grid is not None:
            # The Qwen decoders' own rotary module cannot express brain-gen's numerics (see GridRotaryEmbedding),
            # so it is replaced, as a submodule, by one that does.
            self.model.rotary_emb = self.build_rotary()
        # To transformers' loader FlatGPT is custom code, and it then initialises only the modules that hold a
        # tensor it did not load. Some decoders fill non-persistent buffers from their model-level init (Falcon-H1's
        # `mup_vector`); this empty buffer makes the loader reach `reset_brain_gen_parameters`, which runs it.
        self.register_buffer("decoder_init_marker", torch.empty(0), persistent=False)
        self.post_init()

    def reset_brain_gen_parameters(self) -> None:
        """The decoder's own model-level init (its buffers); its parameters are initialised by its own rules."""
        self.model._init_weights(self.model)

    def build_rotary(self) -> nn.Module:
        """A rotary module built from the decoder's current config: ours for grid positions, else the decoder's own
        class (SmolLM3's), constructed as transformers constructs it."""
        config = self.model.config
        if self.grid is None:
            return type(self.model.rotary_emb)(config)
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        return GridRotaryEmbedding(
            head_dim,
            config.rope_parameters["rope_theta"],
            config.rope_parameters["mrope_section"],
            interleaved=config.model_type == "qwen3_vl_text",
            rope_dtype=self.rope_dtype,
        )

    @property
    def max_positions(self) -> int | None:
        """Positions the decoder can address (`None`: unbounded, a recurrent decoder without position ids)."""
        if self.grid is not None:
            return self.grid[0] * self.grid[1] * self.grid[2]
        return getattr(self.model.config, "max_position_embeddings", None)

    def position_ids(self, start: int, length: int, batch_size: int, device) -> torch.Tensor:
        if self.grid is not None and self.sensor_layout is not None:
            return layout_position_ids(*self.sensor_layout, self.grid, start, length, batch_size, device)
        if self.grid is not None:
            return grid_position_ids(self.grid, start, length, batch_size, device)
        if self.max_positions is not None and start + length > self.max_positions:
            raise ValueError(
                f"positions {start}:{start + length} exceed the backbone's max_position_embeddings "
                f"({self.max_positions}); shorten the context or use `resize_context()`"
            )
        return torch.arange(start, start + length, device=device).unsqueeze(0).expand(batch_size, length)

    def forward(
        self,
        inputs_embeds: torch.Tensor,
        cache: Cache | None = None,
        use_cache: bool = False,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> BaseModelOutputWithPast:
        """`inputs_embeds (B, L, hidden)` at sequence offset `cache_length(cache)` -> the decoder's output
        (`last_hidden_state (B, L, hidden)`, the cache under the installed release's name)."""
        batch, length = inputs_embeds.shape[:2]
        cache = self.decoder_cache(cache, use_cache, inputs_embeds)
        past = self.cache_length(cache)
        decoder_kwargs = {}
        if self.kind.positions != "none":
            decoder_kwargs["position_ids"] = self.position_ids(past, length, batch, inputs_embeds.device)
        mask = self.attention_mask(inputs_embeds, cache, past, length)
        if mask is not None:
            decoder_kwargs["attention_mask"] = mask
        if output_attentions:
            decoder_kwargs["output_attentions"] = output_attentions
        out = self.model(
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            output_hidden_states=output_hidden_states,
            **{self.kind.cache_keyword: cache},
            **decoder_kwargs,
        )
        if isinstance(cache, RecurrentStateCache):
            cache.advance(length)
        if self.kind.cache_keyword == CACHE_KWARG:
            return out
        # Recurrent decoders name the cache `cache_params` on older releases: hand it on under the usual name.
        return BaseModelOutputWithPast(
            last_hidden_state=out.last_hidden_state,
            hidden_states=getattr(out, "hidden_states", None),
            attentions=getattr(out, "attentions", None),
            **{CACHE_KWARG: cache if use_cache else None},
        )

    # ---------------------------------------------------------------- caches and masks
    def new_cache(self) -> Cache:
        """An empty cache of the decoder's own type (see `decoder_caches.py`)."""
        return new_decoder_cache(self.kind, self.model.config)

    @property
    def has_own_cache_type(self) -> bool:
        """The decoder caches in something other than a `DynamicCache` (what `generate()` would start it with)."""
        return cache_class(self.kind) is not DynamicCache

    def decoder_cache(self, cache, use_cache: bool, inputs_embeds: torch.Tensor):
        """The cache this step runs with: the caller's (checked to be of the decoder's type), or a new one."""
        if cache is None:
            if not use_cache:
                return None
            cache = self.new_cache()
        elif not isinstance(cache, cache_class(self.kind)):
            raise ValueError(
                f"backbone {self.kind.model_type!r} caches its state in a {cache_class(self.kind).__name__}, got a "
                f"{type(cache).__name__}; start from `model.new_cache()` (or pass no cache)"
            )
        if isinstance(cache, SizedOnFirstStepxLSTMCache) and not cache.is_allocated:
            cache.allocate(inputs_embeds.shape[0], inputs_embeds.dtype, inputs_embeds.device)
        return cache

    def cache_length(self, cache) -> int:
        """Tokens held by `cache` (0 for none)."""
        return 0 if cache is None else cache.get_seq_length()

    def attention_mask(self, inputs_embeds: torch.Tensor, cache, past: int, length: int):
        """The mask the decoder attends with: `None` (its own causal masks), block-causal, or sparse."""
        mask = None
        if self.block_size > 1:
            mask = self.block_causal_masks(inputs_embeds, cache)
        if self.sparse_attention is not None:  # the config rules out combining it with block_size > 1
            mask = sparse_attention_mask(
                self.sparse_attention,
                self.model.config.num_attention_heads,
                past,
                length,
                attn_implementation=self.model.config._attn_implementation,
                dtype=inputs_embeds.dtype,
                device=inputs_embeds.device,
            )
            if self.kind.declares_layer_types:
                mask = {layer_type: mask for layer_type in set(self.kind.layer_types)}
        return mask

    def block_causal_masks(self, inputs_embeds: torch.Tensor, cache):
        """Block-causal masks built by transformers' mask functions (so they match the decoder's attention
        implementation and, for sliding-window layers, the keys its cache keeps): one per layer type for decoders
        that declare layer types, else one mask."""
        builders = {"full_attention": create_causal_mask, "sliding_attention": create_sliding_window_causal_mask}
        config, block = self.model.config, same_block(self.block_size)
        # Positional: the cache argument is named `cache` from transformers 5.24, `past_key_values` before.
        masks = {
            layer_type: builders[layer_type](config, inputs_embeds, None, cache, None, or_mask_function=block)
            for layer_type in set(self.kind.layer_types)
        }
        return masks if self.kind.declares_layer_types else masks["full_attention"]

    # ---------------------------------------------------------------- context resizing
    def set_grid(self, grid: tuple[int, int, int]) -> None:
        if self.grid is not None:
            self.grid = tuple(grid)

    def set_rope(self, rope_theta: float | None = None, max_position_embeddings: int | None = None) -> None:
        """Update the decoder config's RoPE fields and rebuild the rotary module from it (nothing inside a
        transformers module is edited; a fresh one replaces it)."""
        config = self.model.config
        if max_position_embeddings is not None:
            config.max_position_embeddings = int(max_position_embeddings)
        if rope_theta is not None:
            rope = getattr(config, "rope_parameters", None)
            if not isinstance(rope, dict) or "rope_theta" not in rope or not hasattr(self.model, "rotary_emb"):
                raise ValueError(
                    f"backbone {config.model_type!r} has no single RoPE theta to retune (rope_parameters: {rope!r}); "
                    "resize its context without `rope_theta`, or set the RoPE in `backbone_config`"
                )
            rope["rope_theta"] = float(rope_theta)
        if (rope_theta is not None or max_position_embeddings is not None) and hasattr(self.model, "rotary_emb"):
            device = next(self.parameters()).device
            self.model.rotary_emb = self.build_rotary().to(device)
