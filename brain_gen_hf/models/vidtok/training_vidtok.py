"""How Vidtok and VidtokRVQ are trained: windows of channel signals become Gaussian-interpolated sensor-image videos
(made as the model's config says), the model reconstructs them and minimises its own objective.

The FSQ entropy annealing follows the trainer's step: the trainer calls `model.set_training_step(step)` before every
training forward.
"""

from __future__ import annotations

from ...training.contract import DataContract, signal_fields


def sensor_image_collator(data, model):
    from ...data.gaussian_sensor_images import GaussianSensorImageCollator

    cfg = model.config
    return GaussianSensorImageCollator(
        data.layout,
        image_size=cfg.image_size,
        sigma_scale=cfg.image_sigma_scale,
        r_max_factor=cfg.image_r_max_factor,
        normalize=cfg.image_normalize,
    )


VIDTOK_TRAINING = DataContract(
    task="vidtok",
    model_types=("vidtok", "vidtok_rvq"),
    inputs=("input_values",),
    make_collator=sensor_image_collator,
    data_fields=signal_fields,
)
