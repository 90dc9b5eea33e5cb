"""How WaveNet is trained: mu-law tokens of every channel in, the next token of every channel as labels."""

from __future__ import annotations

from ...training.contract import DataContract, signal_fields


def wavenet_collator(data, model):
    from ...data.collators import MuLawCollator

    # mu-law with mu = Q - 1 maps the signal onto exactly the model's Q token ids; `forecast` encodes alike.
    return MuLawCollator(mu=model.config.quant_levels - 1, max_value=model.config.mulaw_max_value, shift=True)


WAVENET_TRAINING = DataContract(
    task="wavenet",
    model_types=("wavenet_full_channel",),
    inputs=("input_ids", "labels"),
    make_collator=wavenet_collator,
    data_fields=lambda data: {**signal_fields(data), "in_channels": len(data.layout.names)},
)
