"""How BENDR is trained: next-sample forecasting, so the labels are the input window itself (its prediction at t
only sees samples before t)."""

from __future__ import annotations

from ...training.contract import DataContract, signal_fields


def bendr_collator(data, model):
    from ...data.collators import ContinuousCollator

    return ContinuousCollator(data.layout, positions=None, labels=True)


BENDR_TRAINING = DataContract(
    task="bendr",
    model_types=("bendr_forecast",),
    inputs=("input_values", "labels"),
    make_collator=bendr_collator,
    data_fields=lambda data: {**signal_fields(data), "channels": len(data.layout.names), "samples": data.window_length},
)
