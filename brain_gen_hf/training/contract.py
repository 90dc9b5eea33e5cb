"""A family's training data contract: what the trainer feeds its model and what it reads back.

Each trainable family declares one `DataContract` next to its model (`models/<family>/training_<family>.py`);
`training/tasks.py` only looks them up. This module imports nothing heavy (no torch, datasets or mne), so a
model folder may import it where only the model's own dependencies are installed; collators are imported
inside the `make_collator` functions, when a run builds them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class DataInfo:
    """What the trainer learned about the data, handed to a contract's `build`, `data_fields` and `make_collator`."""

    layout: object | None  # ChannelLayout of window data; None for pretokenized data
    sampling_rate: float
    window_length: int  # samples per training example
    pretokenized: bool = False
    classes: list[str] | None = None  # class names, for classifier training (`label_column`)
    units: str | None = None  # physical unit(s) of the signal before normalisation, e.g. "T (mag), T/m (grad)"
    normalization: dict | None = None  # how the windows were normalised (from the dataset)


@dataclass(frozen=True)
class DataContract:
    """How one family is trained.

    Args:
        task: the run config's `task` name.
        model_types: the `model_type`s trained this way; the first is the task's default.
        inputs: every batch key the family's collators may emit: each one is an argument of the model's
            `forward` (labels included), so a batch goes to `model(**batch)` as it is.
        make_collator: `(data: DataInfo, model) -> collator`; a collator turns a list of window items into a
            batch and names its keys in `collator.model_inputs`.
        data_fields: `(data: DataInfo) -> dict` of config fields the data fixes (layout, sampling rate, ...):
            a fresh model is built with them and a pretrained one must already have them.
        build: `(model_args, data, fields) -> model` where a fresh model needs more than
            `AutoModel.from_config(AutoConfig.for_model(model_type, **fields))` (a frozen tokenizer, a base model).
        loss: the output field the trainer minimises and reports as the validation loss.
        metrics: `(model, batch, outputs) -> {name: 0-d tensor}` logged next to the loss (`train/<name>`,
            `val/<name>`), e.g. `training.metrics.next_token_accuracy`; None logs the loss only.
    """

    task: str
    model_types: tuple[str, ...]
    inputs: tuple[str, ...]
    make_collator: Callable
    data_fields: Callable
    build: Callable | None = None
    loss: str = "loss"
    metrics: Callable | None = None

    @property
    def default_model_type(self) -> str:
        return self.model_types[0]


def signal_fields(data: DataInfo) -> dict:
    """The signal contract a window dataset fixes: sampling rate, channel layout, units and normalisation."""
    fields = {"sampling_rate": float(data.sampling_rate)}
    if data.layout is not None:
        fields.update(channel_names=list(data.layout.names), channel_types=list(data.layout.types))
    if data.units is not None:
        fields["units"] = data.units
    if data.normalization is not None:
        fields["normalization"] = data.normalization
    return fields


def sampling_rate_field(data: DataInfo) -> dict:
    """Only the sampling rate: families whose channel contract comes from another model (a tokenizer, a base)."""
    return {"sampling_rate": float(data.sampling_rate)}
