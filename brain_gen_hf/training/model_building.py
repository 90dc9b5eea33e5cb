"""A model for a run: built fresh from `model_type` + `model_config` (or the contract's `build`), or loaded from
`pretrained`; either way checked against the signal contract the data fixes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from .contract import DataContract, DataInfo


def build_model(contract: DataContract, model_args, data: DataInfo):
    from transformers import AutoConfig, AutoModel

    import brain_gen_hf  # noqa: F401  (Auto registration)

    model_type = model_args.model_type or contract.default_model_type
    data_fields = contract.data_fields(data)
    check_config_keys(model_type, model_args.model_config or {})
    if model_args.pretrained:
        check_model_source(model_args.pretrained, "pretrained model")
        model = AutoModel.from_pretrained(model_args.pretrained)
        check_pretrained_is_trained_by(contract, model.config.model_type)
        check_data_matches_model(model.config, data_fields)
        return model
    fields = {**data_fields, **(model_args.model_config or {})}
    if contract.build is not None:
        model = contract.build(model_args, data, fields)
    else:
        model = AutoModel.from_config(AutoConfig.for_model(model_type, **fields))
    check_data_matches_model(model.config, data_fields)
    return model


def check_pretrained_is_trained_by(contract: DataContract, model_type: str) -> None:
    """A `pretrained` folder of another family would fail deep in the first step (its inputs have another
    shape); name the task that trains it instead."""
    if model_type in contract.model_types:
        return
    from .tasks import contract_for_model_type

    try:
        hint = f"; use task {contract_for_model_type(model_type).task!r}"
    except ValueError:
        hint = " (no task trains it)"
    raise ValueError(
        f"the pretrained model is a {model_type}, but task {contract.task!r} trains {list(contract.model_types)}{hint}"
    )


def check_model_source(name_or_path: str, what: str) -> None:
    """A path that does not exist would reach the Hub as a malformed repo id ('Repo id must be in the form
    ...'); say what is missing instead."""
    looks_like_path = name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1
    if looks_like_path and not Path(name_or_path).expanduser().exists():
        raise FileNotFoundError(
            f"{what} {name_or_path} does not exist (not a folder, and not a Hub repo id 'org/name')"
        )


def check_config_keys(model_type: str, fields: dict) -> None:
    """transformers configs accept unknown keys silently; a training run must not (a typo would be ignored)."""
    from ..registration import config_class_for

    config_class = config_class_for(model_type)
    known = {f.name for f in dataclasses.fields(config_class)} | set(getattr(config_class, "attribute_map", {}))
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ValueError(f"unknown `model_config` keys {unknown} for {model_type}; valid keys: {sorted(known)}")


def check_data_matches_model(config, data_fields: dict) -> None:
    """The dataset's layout, sampling rate and units must be the model's signal contract."""
    for key, have in data_fields.items():
        want = getattr(config, key, None)
        # Normalisation is recorded for the model card, not enforced: its statistics are per recording anyway.
        if key == "normalization" or want is None or have is None or want == have:
            continue
        if key == "channel_names":
            raise ValueError(
                f"the dataset's channels ({len(have)}: {have[:4]}...) do not match the model's "
                f"({len(want)}: {want[:4]}...); rebuild the dataset with the model's layout"
            )
        raise ValueError(f"the dataset's {key} is {have} but the model expects {want}")


def check_batch_reaches_forward(model, collator, contract: DataContract) -> None:
    """Every key a collator emits is an argument of `model.forward`: batches go to `model(**batch)` as they are,
    so a key the model does not take would fail at the first step (or, caught by `**kwargs`, be ignored)."""
    import inspect

    emitted = tuple(collator.model_inputs)
    undeclared = sorted(set(emitted) - set(contract.inputs))
    parameters = inspect.signature(model.forward).parameters
    unknown = sorted(key for key in emitted if key not in parameters)
    if undeclared or unknown:
        raise ValueError(
            f"the {contract.task} collator {type(collator).__name__} emits {list(emitted)}, but "
            + (
                f"{undeclared} are not in the contract's inputs {list(contract.inputs)}"
                if undeclared
                else f"{type(model).__name__}.forward takes no {unknown}"
            )
        )
