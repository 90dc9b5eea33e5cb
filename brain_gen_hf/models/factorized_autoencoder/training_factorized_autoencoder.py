"""How the factorized autoencoder is trained: every window in, its reconstruction scored against itself."""

from __future__ import annotations

from ...training.contract import DataContract, signal_fields


def factorized_autoencoder_collator(data, model):
    from ...data.collators import ContinuousCollator

    # No `labels`: the model's target defaults to its input, so the window is not sent twice.
    return ContinuousCollator(data.layout, positions=None)


FACTORIZED_AUTOENCODER_TRAINING = DataContract(
    task="factorized_autoencoder",
    model_types=("factorized_autoencoder",),
    inputs=("input_values",),
    make_collator=factorized_autoencoder_collator,
    data_fields=lambda data: {**signal_fields(data), "c_in": len(data.layout.names)},
)
