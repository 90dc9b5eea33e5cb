"""Reference (brain-gen) FlatGPT checkpoints -> brain_gen_hf configs and state dicts.

brain-gen builds FlatGPT as `FlatGPT(trf_class, trf_args, hidden_size, vocab_size, input_shape, ...)`; the
backbone kwargs become our `backbone_config`, the flat tokenizer our `tokenizer_config`. Weights keep their
names; tied copies (`head.*`) and the backbone's unused token table are dropped after checking them.
"""

from __future__ import annotations

import torch

from .configuration_flatgpt import FlatGPTConfig, FlatGPTEmbedsConfig, FlatGPTMixConfig
from .convert_sparse_layout import attention_layout_from_reference

# brain-gen `trf_class` -> the transformers decoder it builds (brain-gen's llm.py adapters pass trf_args to its config)
_BACKBONES = {
    "Qwen2_5_Video": "qwen2_5_vl_text",
    "Qwen3_Video": "qwen3_vl_text",
    "SmoLLM3": "smollm3",
    "MiniMax": "minimax",
    "Gemma3": "gemma3_text",
    "FalconH1": "falcon_h1",
    "FalconMamba": "falcon_mamba",
    "xLSTM": "xlstm",
}
# brain-gen backbones that are not one transformers decoder over embeddings, and why.
_UNCONVERTIBLE = {
    "BLT": (
        "BLT is a byte latent transformer (patcher, local encoder, global transformer, local decoder): its entropy "
        "patcher and hash n-gram embeddings read token ids and its output is the local decoder's, so it is not one "
        "decoder over FlatGPT's embeddings (brain-gen could not build it either: llm.py never imports BltConfig)"
    ),
    "Qwen2_5_Video_TASA3D": (
        "Qwen2_5_Video_TASA3D wraps the Qwen decoder in brain-gen's own TASA3D down/up-sampling stages, which are not "
        "a transformers decoder (brain-gen's flatgpt.py never imports it); see the tasa3d family for TASA3D"
    ),
}
_TOKENIZERS = {
    "AmplitudeTokenizer": "AmplitudeTokenizer",
    "AmplitudeTokenizerMix": "AmplitudeMixTokenizer",
    "DelimitedTokenizer": "DelimitedTokenizer",
}
_CONFIGS = {"FlatGPT": FlatGPTConfig, "FlatGPTEmbeds": FlatGPTEmbedsConfig, "FlatGPTMix": FlatGPTMixConfig}
# Runtime-only reference kwargs with no effect on the weights.
_IGNORED = ("input_type", "train_tokenizer")
# Backbone kwargs that are runtime choices, not architecture.
_IGNORED_BACKBONE = ("_attn_implementation", "use_cache", "torch_dtype")
# Per decoder, reference kwargs dropped on conversion:
# * MiniMax: fields of MiniMax-Text-01's own (remote-code) config that transformers' MiniMaxConfig never reads. The
#   reference passed them and transformers ignored them: its models ran with MiniMaxConfig's default alternating
#   `layer_types` (not `attn_type_list`), full rotary and unit residual factors, so the converted config keeps those
#   defaults (the trained weights depend on them) instead of carrying fields that disagree with them.
# * xLSTM: kernel and execution-mode choices (Triton kernels, `train_with_padding`, which transformers refuses with
#   `return_last_states`); transformers' defaults run the same cell with its native kernels.
_IGNORED_DECODER_FIELDS = {
    "minimax": (
        "attn_type_list",
        "rotary_dim",
        "postnorm",
        "layernorm_full_attention_alpha",
        "layernorm_full_attention_beta",
        "layernorm_linear_attention_alpha",
        "layernorm_linear_attention_beta",
        "layernorm_mlp_alpha",
        "layernorm_mlp_beta",
        "shared_intermediate_size",
        "shared_moe_mode",
    ),
    "xlstm": (
        "mode",
        "chunkwise_kernel",
        "sequence_kernel",
        "step_kernel",
        "autocast_kernel_dtype",
        "return_last_states",
    ),
}


def backbone_config_from_reference(trf_class: str, trf_args: dict) -> tuple[dict, int, list | None]:
    if trf_class in _UNCONVERTIBLE:
        raise ValueError(f"reference backbone {trf_class!r} cannot be converted: {_UNCONVERTIBLE[trf_class]}")
    if trf_class not in _BACKBONES:
        raise ValueError(f"reference backbone {trf_class!r} cannot be converted; supported: {sorted(_BACKBONES)}")
    model_type = _BACKBONES[trf_class]
    args = dict(trf_args)
    given_type = args.pop("model_type", model_type)
    if given_type != model_type:
        raise ValueError(f"reference trf_args.model_type {given_type!r} disagrees with trf_class {trf_class!r}")
    for key in _IGNORED_DECODER_FIELDS.get(model_type, ()):
        args.pop(key, None)
    if model_type == "xlstm" and "num_blocks" in args:
        # xLSTM builds `num_blocks` blocks; its cache sizes itself by `num_hidden_layers` (default 32): one count.
        args.setdefault("num_hidden_layers", args["num_blocks"])
    # config fields, not backbone kwargs: see convert_sparse_layout.attention_layout_from_reference
    args.pop("layout_path", None)
    args.pop("sparse", None)
    block_size = int(args.pop("block_size", 1))
    reduced_shape = args.pop("reduced_shape", None)
    for key in _IGNORED_BACKBONE:
        args.pop(key, None)
    return {"model_type": model_type, **args}, block_size, reduced_shape


def config_from_reference(reference_name: str, kwargs: dict, **overrides):
    if reference_name not in _CONFIGS:
        raise ValueError(f"no FlatGPT converter for {reference_name!r}")
    if kwargs.get("trf_class") == "Qwen2_5_VideoText" or kwargs.get("tok_class") == "BPETokenizer":
        from .convert_flatgpt_text import config_from_reference as text_config_from_reference

        return text_config_from_reference(reference_name, kwargs, **overrides)
    kwargs = {k: v for k, v in kwargs.items() if k not in _IGNORED}
    if kwargs.pop("tokenizer_path", None) is not None:
        raise ValueError(
            "reference `tokenizer_path` points to a Lightning tokenizer checkpoint; convert the tokenizer "
            "separately and pass its folder"
        )
    layout = attention_layout_from_reference(kwargs["trf_class"], kwargs["trf_args"])
    backbone, block_size, reduced_shape = backbone_config_from_reference(
        kwargs.pop("trf_class"), kwargs.pop("trf_args")
    )
    backbone.pop("hidden_size", None)
    backbone.pop("vocab_size", None)
    tok_class = kwargs.pop("tok_class", "AmplitudeTokenizer")
    if tok_class not in _TOKENIZERS:
        raise ValueError(
            f"reference tokenizer {tok_class!r} is not a convertible flat tokenizer ({sorted(_TOKENIZERS)})"
        )
    tokenizer_config = {"tokenizer_class": _TOKENIZERS[tok_class]}
    tok_args = dict(kwargs.pop("tok_args", None) or {})
    if "delimiter_id" in tok_args:
        tokenizer_config["delimiter_id"] = tok_args.pop("delimiter_id")
    if tok_class == "DelimitedTokenizer":
        tokenizer_config.setdefault("delimiter_id", 256)
    corruption = kwargs.pop("token_corruption_cfg", None)
    if corruption:
        # brain-gen's default step is 32 tokens whatever the grid; keep it for converted training runs.
        corruption = {
            k: v
            for k, v in dict(corruption).items()
            if k in ("enabled", "p_start", "p_end", "block_len_steps", "tokens_per_step")
        }
        corruption.setdefault("tokens_per_step", 32)
    spatial = kwargs.pop("spatial_reduction", 1)
    config = _CONFIGS[reference_name](
        backbone_config=backbone,
        tokenizer_config=tokenizer_config,
        block_size=block_size,
        token_corruption=corruption,
        spatial_reduction=list(spatial) if isinstance(spatial, (list, tuple)) else spatial,
        input_shape=list(kwargs.pop("input_shape")),
        **layout,
        **kwargs,
        **overrides,
    )
    if reduced_shape is not None and config.uses_video_rope and tuple(reduced_shape) != tuple(config.rope_grid):
        raise ValueError(
            f"reference trf_args.reduced_shape {tuple(reduced_shape)} does not match the token layout's "
            f"RoPE grid {config.rope_grid}"
        )
    return config


def _pop_tied(state: dict, key: str, source: str) -> None:
    tied = state.pop(key)
    if not torch.equal(tied, state[source]):
        raise ValueError(f"reference weight {key} should be tied to {source} but differs")


# Decoders whose token table is not `embed_tokens`.
_TOKEN_TABLES = {"xlstm": "embeddings", "falcon_mamba": "embeddings"}


def token_table_key(config) -> str:
    """State-dict key of the backbone decoder's token table."""
    return f"transformer.model.{_TOKEN_TABLES.get(config.backbone_type, 'embed_tokens')}.weight"


def state_dict_from_reference(reference_name: str, state: dict, config) -> dict:
    state = {k: v for k, v in state.items() if not k.endswith("rotary_emb.inv_freq")}
    table = token_table_key(config)
    if reference_name == "FlatGPT":
        _pop_tied(state, "head.weight", table)
    elif reference_name == "FlatGPTEmbeds":
        n = config.num_slots
        for i in range(n):
            _pop_tied(state, f"head.layers.{i}.weight", f"pre_embedding.emb.{(i + 1) % n}.weight")
        state.pop(table, None)  # allocated but never used by the reference
    elif reference_name == "FlatGPTMix":
        _pop_tied(state, "head.proj.weight", "pre_embedding.emb.quant_emb.weight")
        state.pop(table, None)
    return state
