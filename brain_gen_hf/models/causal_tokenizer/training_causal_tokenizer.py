"""How the causal RVQ brain tokenizers (BrainTokMix, BrainOmni) are trained: continuous windows with their sensor
metadata in, the reconstruction objective of `BrainTokenizerOutput` out."""

from __future__ import annotations

from ...training.contract import DataContract, signal_fields
from ...training.metrics import reconstruction_metrics


def tokenizer_collator(data, tokenizer):
    """Windows as a brain tokenizer reads them; also used by the models that hold one (FlatGPT RVQ, BrainOmni
    forecaster), with their `tokenizer`."""
    from ...data.collators import ContinuousCollator

    # BrainOmni's sensor embedding reads 3-D positions + orientations; BrainTokMix ignores sensor metadata.
    positions = "3d" if getattr(tokenizer.config, "sensor_space", "sensor") == "sensor" else "2d"
    return ContinuousCollator(data.layout, positions=positions)


BRAIN_TOKENIZER_TRAINING = DataContract(
    task="brain_tokenizer",
    model_types=("braintokmix", "brainomni_causal_tokenizer"),
    inputs=("input_values", "pos", "sensor_type"),
    make_collator=tokenizer_collator,
    data_fields=lambda data: {**signal_fields(data), "num_sensors": len(data.layout.names)},
    metrics=reconstruction_metrics,
)
