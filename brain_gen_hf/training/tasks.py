"""Which data contract trains a model: a lookup from the run config's `task`, or from a `model_type`, to the
`DataContract` its family declares next to its model (`models/<family>/training_<family>.py`).

The families' modules are imported only when a contract is asked for.
"""

from __future__ import annotations

import importlib

from .contract import DataContract

# task -> (module, attribute) of the family's contract
TASKS = {
    "bendr": ("brain_gen_hf.models.bendr.training_bendr", "BENDR_TRAINING"),
    "brain_tokenizer": ("brain_gen_hf.models.causal_tokenizer.training_causal_tokenizer", "BRAIN_TOKENIZER_TRAINING"),
    "brainomni_forecast": (
        "brain_gen_hf.models.brainomni_forecast.training_brainomni_forecast",
        "BRAINOMNI_FORECAST_TRAINING",
    ),
    "factorized_autoencoder": (
        "brain_gen_hf.models.factorized_autoencoder.training_factorized_autoencoder",
        "FACTORIZED_AUTOENCODER_TRAINING",
    ),
    "classifier": ("brain_gen_hf.models.classifier.training_classifier", "CLASSIFIER_TRAINING"),
    "flatgpt": ("brain_gen_hf.models.flatgpt.training_flatgpt", "FLATGPT_TRAINING"),
    "ntd": ("brain_gen_hf.models.ntd.training_ntd", "NTD_TRAINING"),
    "stgpt2meg": ("brain_gen_hf.models.stgpt2meg.training_stgpt2meg", "STGPT2MEG_TRAINING"),
    "vidtok": ("brain_gen_hf.models.vidtok.training_vidtok", "VIDTOK_TRAINING"),
    "wavenet": ("brain_gen_hf.models.wavenet.training_wavenet", "WAVENET_TRAINING"),
    "wavenet3d": ("brain_gen_hf.models.wavenet.training_wavenet", "WAVENET3D_TRAINING"),
    "tasa3d": ("brain_gen_hf.models.tasa3d.training_tasa3d", "TASA3D_TRAINING"),
}


def get_task(name: str) -> DataContract:
    """The contract of a run config's `task`."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; available: {sorted(TASKS)}")
    module, attribute = TASKS[name]
    return getattr(importlib.import_module(module), attribute)


def contract_for_model_type(model_type: str) -> DataContract:
    """The contract that trains `model_type`, or a ValueError listing the trainable ones."""
    trainable = {}
    for task in TASKS:
        contract = get_task(task)
        trainable.update(dict.fromkeys(contract.model_types, contract))
    if model_type not in trainable:
        raise ValueError(f"no training task trains model_type {model_type!r}; trainable: {sorted(trainable)}")
    return trainable[model_type]


def resolve_contract(task: str | None, model_type: str | None) -> DataContract:
    """The contract of a run: its `task`'s (which must train `model_type`, when both are given), else
    `model_type`'s."""
    if task is None:
        if model_type is None:
            raise ValueError(f"the run config needs `task` (one of {sorted(TASKS)}) or `model_type`")
        return contract_for_model_type(model_type)
    contract = get_task(task)
    if model_type is not None and model_type not in contract.model_types:
        try:
            hint = f"; {model_type} is trained by task {contract_for_model_type(model_type).task!r}"
        except ValueError:
            hint = ""
        raise ValueError(f"task {task!r} trains {list(contract.model_types)}, not model_type {model_type!r}{hint}")
    return contract
