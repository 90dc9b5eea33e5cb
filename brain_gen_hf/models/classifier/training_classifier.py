"""How the classifiers are trained: the base's inputs plus `labels`, the class index of each window's segment
(`label_column` of the run config: subject, session, task or dataset)."""

from __future__ import annotations

from ...training.contract import DataContract, sampling_rate_field

# The base reads the data's layout: BENDR its channels and window, WaveNet its channels.
BASE_DATA_FIELDS = {
    "bendr_forecast": lambda data: {"channels": len(data.layout.names), "samples": data.window_length},
    "wavenet_full_channel": lambda data: {"in_channels": len(data.layout.names)},
}


def build_classifier(model_args, data, fields: dict):
    from transformers import AutoConfig

    from ...registration import config_class_for, model_class_for
    from ...training.model_building import check_config_keys

    if data.classes is None:
        raise ValueError("task 'classifier' needs `label_column` (e.g. subject, session, task or dataset)")
    model_type = model_args.model_type or CLASSIFIER_TRAINING.default_model_type
    base = dict(fields.pop("base_config", None) or {"model_type": "bendr_forecast"})
    base_type = base.pop("model_type")
    data_fields = BASE_DATA_FIELDS.get(base_type, lambda data: {})(data)
    check_config_keys(base_type, base)
    base_config = AutoConfig.for_model(base_type, **{**data_fields, **base, "sampling_rate": data.sampling_rate})
    config = config_class_for(model_type)(
        base_config=base_config, num_classes=len(data.classes), id2label=dict(enumerate(data.classes)), **fields
    )
    return model_class_for(model_type)(config)


def classifier_collator(data, model):
    from ...data.collators import ClassLabelCollator, ContinuousCollator, MuLawCollator

    if model.config.model_type == "classifier_quantized":
        # mu-law with mu = Q - 1 maps the signal onto exactly the base's Q token ids.
        base = model.base_model.config
        inputs = MuLawCollator(mu=base.quant_levels - 1, max_value=base.mulaw_max_value, shift=False, labels=False)
    else:
        inputs = ContinuousCollator(data.layout, positions=None)
    return ClassLabelCollator(inputs)


CLASSIFIER_TRAINING = DataContract(
    task="classifier",
    model_types=("classifier_continuous", "classifier_quantized"),
    inputs=("input_values", "input_ids", "labels"),
    make_collator=classifier_collator,
    data_fields=sampling_rate_field,
    build=build_classifier,
)
