"""FlatGPT backbones: a transformers decoder built from `backbone_config`, fed with FlatGPT's own positions.

`FlatGPTBackbone` is the family's base model (every LM's `transformer`, its `base_model`); `FlatGPTPreTrainedModel`
holds what the backbone and the LMs share (init rules, attention and checkpointing support).

The decoder itself is never vendored. What FlatGPT adds around it:

* positions: 3-D (t, h, w) ids of the flattened reduced grid for the Qwen video decoders (`grid_position_ids`),
  plain 1-D ids for SmolLM3; with a KV cache the offset is the cache length;
* for the Qwen decoders, the decoder's `rotary_emb` submodule is replaced by `GridRotaryEmbedding`, which
  reproduces what brain-gen's trained checkpoints depend on (integer `mrope_section`, cos/sin rounded to bf16);
  a RoPE change (`resize_context`) updates the decoder config and builds a fresh rotary module from it;
* a block-causal mask when `block_size > 1`.

Every step, prefill or cached decode, goes through the transformers text model's own forward.
"""

from __future__ import annotations

import importlib

import torch
from torch import nn
from transformers import initialization as init
from transformers.cache_utils import Cache
from transformers.modeling_outputs import BaseModelOutputWithPast

from ...compat import CACHE_KWARG
from ...modeling_utils import BrainGenPreTrainedModel
from .configuration_flatgpt import FlatGPTBaseConfig, FlatGPTConfig

# model_type -> (module, decoder class) of the transformers implementation
_DECODERS = {
    "qwen2_5_vl_text": ("transformers.models.qwen2_5_vl.modeling_qwen2_5_vl", "Qwen2_5_VLTextModel"),
    "qwen3_vl_text": ("transformers.models.qwen3_vl.modeling_qwen3_vl", "Qwen3VLTextModel"),
    "smollm3": ("transformers.models.smollm3.modeling_smollm3", "SmolLM3Model"),
}


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
        std = self.config.backbone_config.initializer_range
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
        module, name = _DECODERS[backbone_config.model_type]
        decoder_class = getattr(importlib.import_module(module), name)
        self.model = decoder_class(backbone_config)
        self.block_size = config.block_size
        self.grid = tuple(config.rope_grid) if config.uses_video_rope else None
        self.rope_dtype = getattr(torch, config.rope_dtype) if config.rope_dtype else None
        if not keep_token_embedding:
            # The variant embeds tokens itself: do not keep a dead (V, hidden) table, nor its tensor-parallel entry.
            self.model.embed_tokens = None
            self.model.tp_plan = {k: v for k, v in self.model.tp_plan.items() if k.split(".")[0] != "embed_tokens"}
        if self.grid is not None:
            # The Qwen decoders' own rotary module cannot express brain-gen's numerics (see GridRotaryEmbedding),
            # so it is replaced, as a submodule, by one that does.
            self.model.rotary_emb = self.build_rotary()
        self.post_init()

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
    def max_positions(self) -> int:
        if self.grid is not None:
            return self.grid[0] * self.grid[1] * self.grid[2]
        return self.model.config.max_position_embeddings

    def position_ids(self, start: int, length: int, batch_size: int, device) -> torch.Tensor:
        if self.grid is not None:
            return grid_position_ids(self.grid, start, length, batch_size, device)
        if start + length > self.max_positions:
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
        """`inputs_embeds (B, L, hidden)` at sequence offset `cache.get_seq_length()` -> the decoder's output
        (`last_hidden_state (B, L, hidden)`)."""
        batch, length = inputs_embeds.shape[:2]
        past = cache.get_seq_length() if cache is not None else 0
        position_ids = self.position_ids(past, length, batch, inputs_embeds.device)
        mask = None
        if self.block_size > 1:
            mask = block_causal_mask(self.block_size, past, length, inputs_embeds.device)
            mask = {layer_type: mask for layer_type in set(self.model.config.layer_types)}
        out = self.model(
            inputs_embeds=inputs_embeds,
            position_ids=position_ids,
            attention_mask=mask,
            use_cache=use_cache,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            **{CACHE_KWARG: cache},
        )
        return out

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
            config.rope_parameters["rope_theta"] = float(rope_theta)
        if rope_theta is not None or max_position_embeddings is not None:
            device = next(self.parameters()).device
            self.model.rotary_emb = self.build_rotary().to(device)
