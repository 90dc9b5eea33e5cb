"""Reference (brain-gen) FlatGPT checkpoints -> brain_gen_hf configs and state dicts.

brain-gen builds FlatGPT as `FlatGPT(trf_class, trf_args, hidden_size, vocab_size, input_shape, ...)`; the
backbone kwargs become our `backbone_config`, the flat tokenizer our `tokenizer_config`. Weights keep their
names; tied copies (`head.*`) and the backbone's unused token table are dropped after checking them.
"""

from __future__ import annotations

import torch

from .configuration_flatgpt import FlatGPTConfig, FlatGPTEmbedsConfig, FlatGPTMixConfig

_BACKBONES = {"Qwen2_5_Video": "qwen2_5_vl_text", "Qwen3_Video": "qwen3_vl_text", "SmoLLM3": "smollm3"}
_TOKENIZERS = {
    "AmplitudeTokenizer": "AmplitudeTokenizer",
    "AmplitudeTokenizerMix": "AmplitudeMixTokenizer",
    "DelimitedTokenizer": "DelimitedTokenizer",
}
_CONFIGS = {"FlatGPT": FlatGPTConfig, "FlatGPTEmbeds": FlatGPTEmbedsConfig, "FlatGPTMix": FlatGPTMixConfig}
# Runtime-only reference kwargs with no effect on the weights.
_IGNORED = ("input_type", "train_tokenizer")
# Backbone kwargs that are runtime choices, not architecture.
_IGNORED_BACKBONE = ("_attn_implementation", "use_cache")


def backbone_config_from_reference(trf_class: str, trf_args: dict) -> tuple[dict, int, list | None]:
    if trf_class not in _BACKBONES:
        raise ValueError(f"reference backbone {trf_class!r} cannot be converted; supported: {sorted(_BACKBONES)}")
    args = dict(trf_args)
    if args.pop("layout_path", None) is not None:
        raise ValueError("reference `layout_path` (sensor-layout H/W positions) is not supported")
    if args.pop("sparse", False):
        raise ValueError("reference `sparse: true` (flex sparse attention) is not supported")
    block_size = int(args.pop("block_size", 1))
    reduced_shape = args.pop("reduced_shape", None)
    for key in _IGNORED_BACKBONE:
        args.pop(key, None)
    return {"model_type": _BACKBONES[trf_class], **args}, block_size, reduced_shape


def config_from_reference(reference_name: str, kwargs: dict, **overrides):
    if reference_name not in _CONFIGS:
        raise ValueError(f"no FlatGPT converter for {reference_name!r}")
    kwargs = {k: v for k, v in kwargs.items() if k not in _IGNORED}
    if kwargs.pop("tokenizer_path", None) is not None:
        raise ValueError(
            "reference `tokenizer_path` points to a Lightning tokenizer checkpoint; convert the tokenizer "
            "separately and pass its folder"
        )
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


def state_dict_from_reference(reference_name: str, state: dict, config) -> dict:
    state = {k: v for k, v in state.items() if not k.endswith("rotary_emb.inv_freq")}
    if reference_name == "FlatGPT":
        _pop_tied(state, "head.weight", "transformer.model.embed_tokens.weight")
    elif reference_name == "FlatGPTEmbeds":
        n = config.num_slots
        for i in range(n):
            _pop_tied(state, f"head.layers.{i}.weight", f"pre_embedding.emb.{(i + 1) % n}.weight")
        state.pop("transformer.model.embed_tokens.weight", None)  # allocated but never used by the reference
    elif reference_name == "FlatGPTMix":
        _pop_tied(state, "head.proj.weight", "pre_embedding.emb.quant_emb.weight")
        state.pop("transformer.model.embed_tokens.weight", None)
    return state
