"""How STGPT2MEG is trained: mu-law tokens of every channel in, the next token of every channel as labels
(the reference's ChunkDataset: inputs `q[..., :-1]`, targets `q[..., 1:]`)."""

from __future__ import annotations

import torch

from ...training.contract import DataContract, signal_fields


def stgpt2meg_collator(data, model):
    from ...data.collators import MuLawCollator

    # mu-law with mu = Q - 1 maps the signal onto exactly the model's Q token ids; `forecast` encodes alike.
    return MuLawCollator(mu=model.config.vocab_size - 1, max_value=model.config.mulaw_max_value, shift=True)


def build_stgpt2meg(model_args, data, fields: dict):
    """A fresh STGPT2MEG; an STConvBlock model gets the grid cell of every channel of the data's layout."""
    from transformers import AutoConfig, AutoModel

    from ...training.image_contract import place_sensors
    from .configuration_stgpt2meg import STGPT2MEGConfig

    if fields.get("block_type") == "STConvBlock":
        size = fields.get("image_size", STGPT2MEGConfig.image_size)
        fields = place_sensors(data, (size, size), fields)
    return AutoModel.from_config(AutoConfig.for_model("stgpt2meg", **fields))


def step_accuracy(model, batch: dict, outputs) -> dict[str, torch.Tensor]:
    """Fraction of next-step tokens the argmax of the logits gets right (labels are already shifted; -100 skipped)."""
    logits, labels = getattr(outputs, "logits", None), batch.get("labels")
    if logits is None or labels is None or logits.shape[:-1] != labels.shape:
        return {}
    kept = labels != -100
    if not bool(kept.any()):
        return {}
    return {"accuracy": (logits.argmax(-1) == labels)[kept].float().mean()}


STGPT2MEG_TRAINING = DataContract(
    task="stgpt2meg",
    model_types=("stgpt2meg",),
    inputs=("input_ids", "labels"),
    make_collator=stgpt2meg_collator,
    data_fields=lambda data: {**signal_fields(data), "num_channels": len(data.layout.names)},
    build=build_stgpt2meg,
    metrics=step_accuracy,
)
