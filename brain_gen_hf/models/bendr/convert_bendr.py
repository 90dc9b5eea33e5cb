"""Reference (brain-gen) BENDRForecast checkpoints -> brain_gen_hf configs and state dicts.

The reference passes free-form `attn_args` / `mlp_args` dicts to its transformer blocks; they map to
the typed `attn_*` / `mlp_*` config fields. State-dict keys are unchanged.
"""

from __future__ import annotations

from .configuration_bendr import BENDRForecastConfig

_ATTN_FIELDS = {"nheads": "attn_heads", "dropout": "attn_dropout", "bias": "attn_bias", "rope": "attn_rope"}
_MLP_FIELDS = {"d_ff": "mlp_d_ff", "dropout": "mlp_dropout"}


def _typed_args(kind: str, args: dict, fields: dict[str, str], d_model: int | None) -> dict:
    args = dict(args or {})
    given = args.pop("d_model", None)
    if given is not None and d_model is not None and given != d_model:
        raise ValueError(f"reference {kind}_args d_model {given} disagrees with the other block's {d_model}")
    if kind == "attn":
        for key in ("E_q", "E_k", "E_v"):
            if args.get(key, given) not in (None, given):
                raise ValueError(f"reference attn_args {key}={args[key]} (cross-width attention) is not supported")
            args.pop(key, None)
        if args.pop("rope_base", 10000.0) != 10000.0 or args.pop("skip_input_proj", False):
            raise ValueError("reference attn_args rope_base / skip_input_proj are not supported")
    if kind == "mlp" and args.pop("act_layer", None) is not None:
        raise ValueError("reference mlp_args act_layer is not supported (GELU only)")
    unknown = sorted(set(args) - set(fields))
    if unknown:
        raise ValueError(f"unsupported reference {kind}_args keys: {unknown}")
    typed = {fields[k]: v for k, v in args.items()}
    if given is not None:
        typed["d_model"] = given
    return typed


def config_from_reference(reference_name: str, kwargs: dict, **overrides) -> BENDRForecastConfig:
    kwargs = dict(kwargs)
    for key in ("attn_type", "mlp_type"):
        if kwargs.pop(key, "standard") != "standard":
            raise ValueError(f"reference BENDRForecast `{key}` other than 'standard' is not supported")
    attn = _typed_args("attn", kwargs.pop("attn_args", {}), _ATTN_FIELDS, None)
    mlp = _typed_args("mlp", kwargs.pop("mlp_args", {}), _MLP_FIELDS, attn.get("d_model"))
    return BENDRForecastConfig(**{**kwargs, **attn, **mlp, **overrides})


def state_dict_from_reference(reference_name: str, state: dict, config: BENDRForecastConfig) -> dict:
    return dict(state)
