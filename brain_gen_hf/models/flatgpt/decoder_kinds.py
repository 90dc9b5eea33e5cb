"""What FlatGPT needs to know about a transformers decoder, read off its config and its forward signature.

Any decoder registered with `AutoModel` (and with `AutoModelForCausalLM`, so it is causal) whose forward takes
`inputs_embeds` can be a FlatGPT backbone. Its kind decides how FlatGPT drives it:

* positions: `"grid"` (3-D (t, h, w) ids, the Qwen video-RoPE decoders), `"sequence"` (1-D ids, every decoder
  whose forward takes `position_ids`) or `"none"` (recurrent decoders: Mamba, xLSTM, which count steps themselves);
* the keyword its forward takes the cache under (`cache`, `past_key_values` or `cache_params`, by release);
* its layer types, and so whether a block-causal mask can reach every layer: only softmax-attention layers
  (`full_attention`, `sliding_attention`) read a 4-D mask; a recurrent state (Mamba, linear attention, xLSTM)
  mixes the whole past into each step, so it cannot see a block's later tokens.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from transformers import PreTrainedConfig

# Decoders whose positions are FlatGPT's 3-D token grid (multimodal RoPE over (t, h, w)).
VIDEO_ROPE_BACKBONES = ("qwen2_5_vl_text", "qwen3_vl_text")
# Layer types that attend through a mask FlatGPT can build (block-causal, sliding-window block-causal).
MASKABLE_LAYER_TYPES = ("full_attention", "sliding_attention")
_CACHE_KEYWORDS = ("cache", "past_key_values", "cache_params")


@dataclass(frozen=True)
class DecoderKind:
    model_type: str
    decoder_class: type
    positions: str
    cache_keyword: str | None
    layer_types: tuple[str, ...]
    declares_layer_types: bool
    takes_attention_mask: bool

    @property
    def accepts_block_masks(self) -> bool:
        """Every layer reads a custom 4-D mask (so a block-causal mask reaches the whole model)."""
        return self.takes_attention_mask and set(self.layer_types) <= set(MASKABLE_LAYER_TYPES)

    @property
    def attention_layer_index(self) -> int | None:
        """The first softmax-attention layer: the one whose cache counts the tokens seen."""
        for index, layer_type in enumerate(self.layer_types):
            if layer_type in MASKABLE_LAYER_TYPES or layer_type == "hybrid":
                return index
        return None


def _decoder_class(config: PreTrainedConfig) -> type:
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, MODEL_MAPPING

    model_type = config.model_type
    try:
        decoder_class = MODEL_MAPPING[type(config)]
    except KeyError:
        raise ValueError(
            f"`backbone_config.model_type` {model_type!r} has no base model registered with AutoModel; a FlatGPT "
            "backbone is a registered transformers decoder (e.g. llama, qwen3, gemma3_text, minimax, falcon_h1, "
            "falcon_mamba, xlstm, smollm3, qwen2_5_vl_text)"
        ) from None
    if model_type not in VIDEO_ROPE_BACKBONES and model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise ValueError(
            f"`backbone_config.model_type` {model_type!r} is not a causal decoder (it has no AutoModelForCausalLM "
            "class); FlatGPT predicts the next token and needs one"
        )
    if getattr(config, "is_decoder", True) is False:
        raise ValueError(
            f"`backbone_config.model_type` {model_type!r} is an encoder unless `is_decoder=True` (its attention is "
            "bidirectional otherwise); set `is_decoder: true` in backbone_config"
        )
    if getattr(config, "is_encoder_decoder", False) or getattr(config, "sub_configs", None):
        raise ValueError(
            f"`backbone_config.model_type` {model_type!r} is a composite model ({type(config).__name__} nests "
            f"sub-configs {sorted(getattr(config, 'sub_configs', {}) or {})}), not one decoder over embeddings; pass "
            "its decoder config instead"
        )
    return decoder_class


def decoder_kind(config: PreTrainedConfig) -> DecoderKind:
    """The kind of the decoder `config` builds; `ValueError` when it cannot be a FlatGPT backbone."""
    decoder_class = _decoder_class(config)
    parameters = inspect.signature(decoder_class.forward).parameters
    if "inputs_embeds" not in parameters:
        raise ValueError(
            f"`backbone_config.model_type` {config.model_type!r} ({decoder_class.__name__}) does not take "
            "`inputs_embeds`; FlatGPT "
            "feeds its decoder embeddings, so it needs a decoder that accepts them"
        )
    cache_keyword = next((name for name in _CACHE_KEYWORDS if name in parameters), None)
    if config.model_type in VIDEO_ROPE_BACKBONES:
        positions = "grid"
    elif "position_ids" in parameters:
        positions = "sequence"
    else:
        positions = "none"
    takes_mask = "attention_mask" in parameters
    layer_types = getattr(config, "layer_types", None)
    declared = layer_types is not None
    if not declared:
        # No declared layer types: attention layers when the decoder takes masks and positions, else recurrent
        # ones (xLSTM).
        layer_type = "full_attention" if takes_mask and positions != "none" else "recurrent"
        layer_types = [layer_type] * (getattr(config, "num_hidden_layers", 1) or 1)
    return DecoderKind(
        model_type=config.model_type,
        decoder_class=decoder_class,
        positions=positions,
        cache_keyword=cache_keyword,
        layer_types=tuple(layer_types),
        declares_layer_types=declared,
        takes_attention_mask=takes_mask,
    )
