"""Reference (brain-gen) FlatGPTRVQ / FlatGPTMixRVQ / FlatGPTEmbedsRVQ checkpoints -> brain_gen_hf.

brain-gen attaches the brain tokenizer through `tokenizer_path` (a Lightning checkpoint); its kwargs are not in the
LM's YAML. Convert the tokenizer's config first and pass it::

    tok = config_from_reference("BrainOmniCausalTokenizerSEANetChannelMix", tokenizer_yaml_kwargs)
    model = convert_reference_checkpoint("FlatGPTEmbedsRVQ", lm_yaml_kwargs, state, tokenizer_config=tok)

The LM checkpoint holds the tokenizer's weights under `tokenizer.*`; they go through the tokenizer's converter.
Tied copies (`head.layers.*`, `head.heads.*`, `pre_embedding.embedding.emb.*`, `pre_embedding.embeddings.*` of the
Mix embedding) and the backbone's unused token table are dropped after checking them.
"""

from __future__ import annotations

import importlib

from .configuration_flatgpt_rvq import FlatGPTEmbedsRVQConfig, FlatGPTMixRVQConfig, FlatGPTRVQConfig
from .convert_flatgpt import _pop_tied, backbone_config_from_reference, token_table_key
from .convert_sparse_layout import attention_layout_from_reference

_CONFIGS = {
    "FlatGPTRVQ": FlatGPTRVQConfig,
    "FlatGPTMixRVQ": FlatGPTMixRVQConfig,
    "FlatGPTEmbedsRVQ": FlatGPTEmbedsRVQConfig,
}
# Reference names of the tokenizer families (for the `tokenizer.*` weights).
_TOKENIZER_REFERENCE_NAMES = {
    "braintokmix": "BrainOmniCausalTokenizerSEANetChannelMix",
    "brainomni_causal_tokenizer": "BrainOmniCausalTokenizer",
}
# The placeholder flat tokenizer brain-gen builds before `tokenizer_path` replaces it, and runtime-only kwargs.
_IGNORED = ("tok_class", "tok_args", "tokenizer_path", "input_type")
_FIELDS = ("quantizer_head", "quantizer_levels", "quantizer_embed_dim", "mix_method", "corrupt", "train_tokenizer")


def config_from_reference(reference_name: str, kwargs: dict, tokenizer_config=None, **overrides):
    if reference_name not in _CONFIGS:
        raise ValueError(f"no RVQ FlatGPT converter for {reference_name!r}")
    if tokenizer_config is None:
        raise ValueError(
            f"{reference_name} checkpoints hold a brain tokenizer (brain-gen's `tokenizer_path`): convert "
            "its config with brain_gen_hf.conversion.config_from_reference(<tokenizer model name>, "
            "<its kwargs>) and pass it as `tokenizer_config=`"
        )
    kwargs = {k: v for k, v in kwargs.items() if k not in _IGNORED}
    layout = attention_layout_from_reference(kwargs["trf_class"], kwargs["trf_args"])
    backbone, block_size, reduced_shape = backbone_config_from_reference(
        kwargs.pop("trf_class"), kwargs.pop("trf_args")
    )
    backbone.pop("hidden_size", None)
    backbone.pop("vocab_size", None)
    corruption = kwargs.pop("token_corruption_cfg", None)
    if corruption:
        # brain-gen's default step is 32 tokens whatever the grid; keep it for converted training runs.
        corruption = {
            k: v
            for k, v in dict(corruption).items()
            if k in ("enabled", "p_start", "p_end", "block_len_steps", "tokens_per_step")
        }
        corruption.setdefault("tokens_per_step", 32)
    fields = {k: kwargs.pop(k) for k in _FIELDS if k in kwargs}
    spatial = kwargs.pop("spatial_reduction", 1)
    config = _CONFIGS[reference_name](
        backbone_config=backbone,
        tokenizer_config=tokenizer_config,
        block_size=block_size,
        token_corruption=corruption,
        input_shape=list(kwargs.pop("input_shape")),
        spatial_reduction=list(spatial) if isinstance(spatial, (list, tuple)) else spatial,
        **fields,
        **layout,
        **kwargs,
        **overrides,
    )
    if reduced_shape is not None and config.uses_video_rope and tuple(reduced_shape) != tuple(config.rope_grid):
        raise ValueError(
            f"reference trf_args.reduced_shape {tuple(reduced_shape)} does not match the RoPE grid {config.rope_grid}"
        )
    return config


def state_dict_from_reference(reference_name: str, state: dict, config) -> dict:
    state = {k: v for k, v in state.items() if not k.endswith("rotary_emb.inv_freq")}
    state.pop(token_table_key(config), None)  # allocated but never used by the reference
    levels = config.num_levels
    if reference_name == "FlatGPTEmbedsRVQ":
        for i in range(levels):
            _pop_tied(state, f"head.layers.{i}.weight", f"pre_embedding.emb.{(i + 1) % levels}.weight")
            if config.corrupt:
                _pop_tied(state, f"pre_embedding.embedding.emb.{i}.weight", f"pre_embedding.emb.{i}.weight")
    elif reference_name == "FlatGPTRVQ" and config.quantizer_head == "tied":
        for q in range(levels):
            _pop_tied(state, f"head.heads.{q}.weight", f"pre_embedding.embeddings.{q}.weight")
    elif reference_name == "FlatGPTMixRVQ":
        for q in range(levels):
            _pop_tied(state, f"pre_embedding.embeddings.{q}.weight", f"pre_embedding.quantizer.embeddings.{q}.weight")
            if config.quantizer_head == "tied":
                _pop_tied(state, f"head.head.heads.{q}.weight", f"pre_embedding.quantizer.embeddings.{q}.weight")
    tokenizer_name = _TOKENIZER_REFERENCE_NAMES[config.tokenizer_config.model_type]
    from ...conversion import REFERENCE_CONVERTERS

    converter = importlib.import_module(REFERENCE_CONVERTERS[tokenizer_name])
    prefix = "tokenizer."
    tokenizer_state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    state = {k: v for k, v in state.items() if not k.startswith(prefix)}
    tokenizer_state = converter.state_dict_from_reference(tokenizer_name, tokenizer_state, config.tokenizer_config)
    state.update({prefix + k: v for k, v in tokenizer_state.items()})
    return state
