"""How the classifiers are trained: the base's inputs plus `labels`, the class index of each window's segment
(`label_column` of the run config: subject, session, task or dataset)."""

from __future__ import annotations

from ...training.contract import DataContract, sampling_rate_field
from ...training.image_contract import place_sensors, token_image_collator
from ...training.metrics import classification_accuracy

# The base reads the data's layout: BENDR its channels and window, WaveNet its channels.
BASE_DATA_FIELDS = {
    "bendr_forecast": lambda data: {"channels": len(data.layout.names), "samples": data.window_length},
    "wavenet_full_channel": lambda data: {"in_channels": len(data.layout.names)},
}
# Token-image bases: the field holding their (H, W); the data's channels are placed on that grid.
IMAGE_SIZE_FIELDS = {"tasa3d": "input_hw", "wavenet3d": "image_size"}


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
    if base_type in IMAGE_SIZE_FIELDS:
        base = _with_sensor_pixels(data, base_type, base, fields.get("image_size"))
    base_config = AutoConfig.for_model(base_type, **{**data_fields, **base, "sampling_rate": data.sampling_rate})
    config = config_class_for(model_type)(
        base_config=base_config, num_classes=len(data.classes), id2label=dict(enumerate(data.classes)), **fields
    )
    return model_class_for(model_type)(config)


def _with_sensor_pixels(data, base_type: str, base: dict, image_size) -> dict:
    """An image base's fields with its size fixed (the classifier's `image_size` when the base leaves it open)
    and every channel of the data on its pixel: the classifier reads the base's pixels."""
    from transformers import AutoConfig

    size_field = IMAGE_SIZE_FIELDS[base_type]
    image_hw = base.get(size_field) or image_size or getattr(AutoConfig.for_model(base_type), size_field)
    if image_hw is None:
        raise ValueError(
            "the token image size is unknown: set `image_size` in `model_config` or in the base's `base_config`"
        )
    image_hw = [image_hw, image_hw] if isinstance(image_hw, int) else list(image_hw)
    return place_sensors(data, image_hw, {**base, size_field: image_hw})


def classifier_collator(data, model):
    from ...data.collators import ClassLabelCollator, ContinuousCollator, MuLawCollator

    if model.config.model_type == "classifier_quantized":
        # mu-law with mu = Q - 1 maps the signal onto exactly the base's Q token ids.
        base = model.base_model.config
        inputs = MuLawCollator(mu=base.quant_levels - 1, max_value=base.mulaw_max_value, shift=False, labels=False)
    elif model.config.model_type == "classifier_quantized_image":
        # The whole window as one token image, sensors where the classifier reads them.
        config = model.config
        inputs = token_image_collator(data, config, config.base_config, config.image_size, labels=False)
    else:
        inputs = ContinuousCollator(data.layout, positions=None)
    return ClassLabelCollator(inputs)


CLASSIFIER_TRAINING = DataContract(
    task="classifier",
    model_types=("classifier_continuous", "classifier_quantized", "classifier_quantized_image"),
    inputs=("input_values", "input_ids", "labels"),
    make_collator=classifier_collator,
    data_fields=sampling_rate_field,
    build=build_classifier,
    metrics=classification_accuracy,
)
