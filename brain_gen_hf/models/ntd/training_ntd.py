"""How NTD is trained: the diffusion objective on signal windows. The model draws its own steps, noise and
observed prefixes (from torch's global RNG, which the trainer's checkpoints restore), so a batch is the windows."""

from __future__ import annotations

from ...training.contract import DataContract, signal_fields


def ntd_collator(data, model):
    from ...data.collators import ContinuousCollator

    return ContinuousCollator(data.layout, positions=None, labels=False)


NTD_TRAINING = DataContract(
    task="ntd",
    model_types=("ntd",),
    inputs=("input_values",),
    make_collator=ntd_collator,
    data_fields=lambda data: {
        **signal_fields(data),
        "signal_channel": len(data.layout.names),
        "signal_length": data.window_length,
    },
)
