"""Reference (brain-gen) STGPT2MEG checkpoints -> brain_gen_hf configs and state dicts.

The reference nests the block options in `trf_args` (`attn_args`, `mlp_args`, `attn_type`, `mlp_type`, conv options);
they map onto the config's flat fields. State dict keys are unchanged, except STConvBlock's grid indices: the
reference saves them as buffers (`blocks.{i}.cb1.row_idx/col_idx`, read from its `tmp/img_inds.npy`), here they
are config fields (`row_idx`, `col_idx`); pass them as overrides, they are checked against the checkpoint's.
"""

from __future__ import annotations

from .configuration_stgpt2meg import STGPT2MEGConfig

_ATTENTION_FIELDS = {
    "standard": {
        "nheads": "num_heads",
        "dropout": "attention_dropout",
        "bias": "attention_bias",
        "rope": "rope",
        "rope_base": "rope_base",
    },
    "gpt_oss": {
        "head_dim": "head_dim",
        "num_attention_heads": "num_heads",
        "num_key_value_heads": "num_key_value_heads",
        "dropout": "attention_dropout",
        "sliding_window": "sliding_window",
        "rope_theta": "rope_theta",
        "rope_scaling_factor": "rope_scaling_factor",
        "rope_ntk_alpha": "rope_ntk_alpha",
        "rope_ntk_beta": "rope_ntk_beta",
        "initial_context_length": "initial_context_length",
        "layer_idx": "attention_layer_idx",
    },
}
_ATTENTION_FIELDS["conditioned"] = {
    **_ATTENTION_FIELDS["standard"],
    "n_cond_tok": "n_cond_tok",
    "d_tok_emb": "d_tok_emb",
    "bias_rank": "bias_rank",
}
_MLP_FIELDS = {
    "standard": {"d_ff": "d_ff", "dropout": "mlp_dropout"},
    "moe": {
        "num_experts": "num_experts",
        "experts_per_token": "experts_per_token",
        "swiglu_limit": "swiglu_limit",
        "intermediate_size": "moe_intermediate_size",
    },
}
_CONV_FIELDS = {"image_size": "image_size", "conv_kernel": "conv_kernel", "dropout": "conv_dropout"}
_EMBEDDING_FIELDS = ("num_classes", "class_emb", "subjects", "sub_emb")
_IGNORED = ("device",)


def _take(options: dict, mapping: dict, where: str) -> dict:
    unknown = sorted(set(options) - set(mapping) - set(_IGNORED) - {"d_model"})
    if unknown:
        raise ValueError(f"reference STGPT2MEG {where} has options this port does not know: {unknown}")
    return {mapping[k]: v for k, v in options.items() if k in mapping and v is not None}


def config_from_reference(reference_name: str, kwargs: dict, **overrides) -> STGPT2MEGConfig:
    kwargs = dict(kwargs)
    d_model = kwargs.get("d_model")
    trf = dict(kwargs.pop("trf_args", None) or {})
    block_type = kwargs.pop("trf_block", "STGPTBlock")
    attn_type = trf.pop("attn_type", "standard")
    attn_args = dict(trf.pop("attn_args", None) or {})
    mlp_args = dict(trf.pop("mlp_args", None) or {})
    mlp_type = trf.pop("mlp_type", None)
    for name, args in (("attn_args", attn_args), ("mlp_args", mlp_args)):
        if args.get("d_model", d_model) != d_model:
            raise ValueError(f"reference trf_args.{name}.d_model ({args['d_model']}) must equal d_model ({d_model})")
    for name in ("E_q", "E_k", "E_v"):
        if attn_args.pop(name, None) not in (None, d_model):
            raise ValueError(f"reference attn_args.{name} other than d_model cannot be converted (self-attention only)")
    if attn_args.pop("skip_input_proj", False):
        raise ValueError("reference attn_args.skip_input_proj=True cannot be converted (the blocks need projections)")
    if attn_type not in _ATTENTION_FIELDS:
        raise ValueError(f"reference attn_type {attn_type!r} is not one of {sorted(_ATTENTION_FIELDS)}")
    fields = _take(attn_args, _ATTENTION_FIELDS[attn_type], "attn_args")
    resolved_mlp = mlp_type or ("moe" if block_type in ("STGPTBlock", "STGPTBlockParallel") else "standard")
    if resolved_mlp not in _MLP_FIELDS:
        raise ValueError(f"reference mlp_type {resolved_mlp!r} is not one of {sorted(_MLP_FIELDS)}")
    fields.update(_take(mlp_args, _MLP_FIELDS[resolved_mlp], "mlp_args"))
    for name in ("row_idx", "col_idx"):
        if trf.pop(name, None) is not None:
            raise ValueError(
                f"reference trf_args.{name} is ignored by the reference (it reads tmp/img_inds.npy); pass the grid "
                "as the `row_idx` / `col_idx` overrides"
            )
    fields.update(_take(trf, _CONV_FIELDS, "trf_args"))
    embedding_args = dict(kwargs.pop("embedding_args", None) or {})
    unknown = sorted(set(embedding_args) - set(_EMBEDDING_FIELDS))
    if unknown:
        raise ValueError(f"reference embedding_args has options this port does not know: {unknown}")
    kwargs = {k: v for k, v in kwargs.items() if k not in _IGNORED}
    return STGPT2MEGConfig(
        **kwargs,
        **embedding_args,
        **fields,
        block_type=block_type,
        attn_type=attn_type,
        mlp_type=mlp_type,
        **overrides,
    )


def state_dict_from_reference(reference_name: str, state: dict, config: STGPT2MEGConfig) -> dict:
    state = dict(state)
    for key in [k for k in state if k.endswith((".cb1.row_idx", ".cb1.col_idx"))]:
        saved = state.pop(key)
        expected = config.row_idx if key.endswith("row_idx") else config.col_idx
        if expected is None or [int(v) for v in saved.tolist()] != list(expected):
            raise ValueError(
                f"the checkpoint's {key} does not match config.{key.rsplit('.', 1)[-1]}: convert with the grid the "
                "model was trained on (row_idx / col_idx overrides equal to the checkpoint's buffers)"
            )
    return state
