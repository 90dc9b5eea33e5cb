"""How the BrainOmni forecaster is trained: continuous windows in (its tokenizer reads them), next-step codes as
the target. A trained `tokenizer` (folder or Hub repo) is copied into a fresh model."""

from __future__ import annotations

from ...training.contract import DataContract, sampling_rate_field
from ..causal_tokenizer.training_causal_tokenizer import tokenizer_collator


def build_brainomni_forecast(model_args, data, fields: dict):
    from transformers import AutoConfig, AutoModel

    from ...registration import model_class_for

    # The channels are the tokenizer's contract, not fields of the forecaster's own config.
    fields = {k: v for k, v in fields.items() if k not in ("channel_names", "channel_types")}
    model_class = model_class_for(model_args.model_type or BRAINOMNI_FORECAST_TRAINING.default_model_type)
    if model_args.tokenizer is None:
        return model_class(AutoConfig.for_model(model_class.config_class.model_type, **fields))
    tokenizer = AutoModel.from_pretrained(model_args.tokenizer)
    model = model_class(model_class.config_class(tokenizer_config=tokenizer.config.to_dict(), **fields))
    model.tokenizer.load_state_dict(tokenizer.state_dict(), strict=True)
    return model


BRAINOMNI_FORECAST_TRAINING = DataContract(
    task="brainomni_forecast",
    model_types=("brainomni_causal_forecast",),
    inputs=("input_values", "pos", "sensor_type"),
    make_collator=lambda data, model: tokenizer_collator(data, model.tokenizer),
    data_fields=sampling_rate_field,
    build=build_brainomni_forecast,
)
