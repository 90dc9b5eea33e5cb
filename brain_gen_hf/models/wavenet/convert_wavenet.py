"""Reference (brain-gen) WaveNet checkpoints -> brain_gen_hf configs and state dicts."""

from __future__ import annotations

from .configuration_wavenet import Wavenet3DConfig, WavenetFullChannelConfig

_DROPPED = ("device",)


def config_from_reference(reference_name: str, kwargs: dict, **overrides):
    kwargs = {k: v for k, v in kwargs.items() if k not in _DROPPED}
    if reference_name == "WavenetFullChannel":
        if kwargs.pop("cond_channels", None):
            raise ValueError(
                "reference WavenetFullChannel conditioning (cond_channels) was broken and cannot be "
                "converted; use num_classes/class_emb"
            )
        # Converted weights were trained with the reference's unchained layers.
        kwargs.setdefault("parallel_layers", True)
        return WavenetFullChannelConfig(**kwargs, **overrides)
    return Wavenet3DConfig(**kwargs, **overrides)


def state_dict_from_reference(reference_name: str, state: dict, config) -> dict:
    if reference_name == "WavenetFullChannel":
        state = {k.replace("embedding_layer.cond_emb", "cond_emb"): v for k, v in state.items()}
        # The reference's (C, Q, E) per-channel tables, stacked into one (C * Q, E) nn.Embedding. A state without
        # them goes on as it is: strict loading then names what is missing.
        tables = state.pop("embedding_layer.quant_emb", None)
        if tables is not None:
            state["quant_emb.weight"] = tables.reshape(-1, tables.shape[-1]) if hasattr(tables, "reshape") else tables
    return state
