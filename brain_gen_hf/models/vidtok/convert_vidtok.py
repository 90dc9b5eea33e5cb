"""Reference (brain-gen) `Vidtok` / `VidtokRVQ` checkpoints -> brain_gen_hf configs and state dicts.

The reference takes `Vidtok(encoder: dict, regularizer: dict)`; both dicts are flattened into one config. Its
objective (`VidtokLoss`) is configured apart in the YAML's loss section: turn that into config fields with
`loss_fields_from_reference(loss_kwargs)` and pass them as overrides::

    model = convert_reference_checkpoint("Vidtok", model_yaml, state, **loss_fields_from_reference(loss_yaml))

Module names are unchanged; the objective's learned log-variance (`loss.logvar` in a Lightning checkpoint) becomes
`reconstruction_loss.logvar`, or starts at `logvar_init` when the state dict has none.
"""

from __future__ import annotations

import torch

from .configuration_vidtok import VidtokConfig, VidtokRVQConfig

# Runtime-only (`use_checkpoint`: gradient checkpointing) or stored but unused by the reference (`scale`,
# `quantize_dropout*`).
ENCODER_DROPPED = ("use_checkpoint",)
FSQ_DROPPED = ("scale",)
RVQ_DROPPED = ("quantize_dropout", "quantize_dropout_cutoff_index", "quantize_dropout_multiple_of")
LOSS_KEYS = (
    "logvar_init",
    "temporal_pcc_weight",
    "temporal_freq_amp_weight",
    "temporal_freq_phase_weight",
    "temporal_cov_weight",
)
# No regulariser of these models reports a KL term: its weight has nothing to weigh.
UNUSED_REGULARIZATION_TERMS = ("kl_loss",)
LOGVAR_KEYS = ("loss.logvar", "logvar")


def _encoder_fields(encoder: dict) -> dict:
    fields = {k: v for k, v in encoder.items() if k not in ENCODER_DROPPED}
    if fields.pop("give_pre_end", False):
        raise ValueError("`give_pre_end=True` (the decoder returns features, not images) is not supported")
    return fields


def _same_dim(name: str, regularizer: dict, encoder: dict) -> None:
    dim = regularizer.pop("dim", None)
    if dim is not None and dim != encoder.get("z_channels"):
        raise ValueError(
            f"{name} `dim` ({dim}) must equal the encoder's `z_channels` ({encoder.get('z_channels')}): the "
            "quantiser reads the encoder's latent"
        )


def config_from_reference(reference_name: str, kwargs: dict, **overrides):
    unknown = set(kwargs) - {"encoder", "regularizer"}
    if unknown or "encoder" not in kwargs:
        raise ValueError(f"{reference_name} takes `encoder` and `regularizer` dicts, got keys {sorted(kwargs)}")
    encoder = _encoder_fields(dict(kwargs["encoder"]))
    regularizer = dict(kwargs.get("regularizer") or {})
    if reference_name == "VidtokRVQ":
        _same_dim("the RVQ", regularizer, encoder)
        regularizer = {k: v for k, v in regularizer.items() if k not in RVQ_DROPPED}
        return VidtokRVQConfig(**encoder, **regularizer, **overrides)
    _same_dim("the FSQ", regularizer, encoder)
    keep = regularizer.pop("keep_num_codebooks_dim", None)
    if keep is not None and keep != (regularizer.get("num_codebooks", 1) > 1):
        raise ValueError("`keep_num_codebooks_dim` must be left at its default (True exactly with several codebooks)")
    regularizer = {k: v for k, v in regularizer.items() if k not in FSQ_DROPPED}
    return VidtokConfig(**encoder, **regularizer, **overrides)


def loss_fields_from_reference(loss_kwargs: dict) -> dict:
    """Config fields for the reference's `VidtokLoss(**loss_kwargs)`.

    `learn_logvar` is dropped: the reference ignores it (its log-variance is always trained) and so does this model
    (freeze it with `model.reconstruction_loss.logvar.requires_grad_(False)`). `scale_input_to_tgt_size` must be
    False: reconstructions always have the input's size.
    """
    kwargs = dict(loss_kwargs)
    kwargs.pop("learn_logvar", None)
    if kwargs.pop("scale_input_to_tgt_size", False):
        raise ValueError("`scale_input_to_tgt_size=True` is not supported: reconstructions have the input's size")
    weights = dict(kwargs.pop("regularization_weights", None) or {})
    unknown = set(kwargs) - set(LOSS_KEYS)
    if unknown:
        raise ValueError(f"unknown VidtokLoss arguments {sorted(unknown)}; known: {sorted(LOSS_KEYS)}")
    fields = dict(kwargs)
    if "aux_loss" in weights:
        fields["aux_loss_weight"] = weights.pop("aux_loss")
    extra = set(weights) - set(UNUSED_REGULARIZATION_TERMS)
    if extra:
        raise ValueError(f"`regularization_weights` names terms the regularisers do not report: {sorted(extra)}")
    return fields


def state_dict_from_reference(reference_name: str, state: dict, config) -> dict:
    state = dict(state)
    logvar = next((state.pop(k) for k in LOGVAR_KEYS if k in state), None)
    state["reconstruction_loss.logvar"] = logvar if logvar is not None else torch.tensor(config.logvar_init)
    return state
