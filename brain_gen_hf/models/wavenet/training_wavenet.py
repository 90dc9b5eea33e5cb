"""How the WaveNets are trained.

- `wavenet` (WavenetFullChannel): mu-law tokens of every channel in, the next token of every channel as labels.
- `wavenet3d` (Wavenet3D): every window as a mu-law token image `(B, H, W, T)` (each channel on its pixel of the
  `image_size` grid), the next frame as labels at the sensor pixels (reference `ChunkDatasetImageQuantized`).
"""

from __future__ import annotations

from ...training.contract import DataContract, signal_fields
from ...training.image_contract import place_sensors, token_image_collator

# The reference image datasets' grid (`image_size=32`), for a Wavenet3D config that does not fix its own.
DEFAULT_IMAGE_SIZE = [32, 32]


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


def build_wavenet3d(model_args, data, fields: dict):
    """A fresh Wavenet3D whose config fixes its image size and places every channel of the data on it."""
    from transformers import AutoConfig, AutoModel

    fields = {**fields, "image_size": fields.get("image_size") or DEFAULT_IMAGE_SIZE}
    image_hw = AutoConfig.for_model("wavenet3d", **fields).image_size
    return AutoModel.from_config(AutoConfig.for_model("wavenet3d", **place_sensors(data, image_hw, fields)))


def wavenet3d_collator(data, model):
    config = model.config
    if config.image_size is None:
        raise ValueError("the Wavenet3D config has no `image_size`: set the (H, W) of its token images to train it")
    return token_image_collator(data, config, config, config.image_size)


WAVENET3D_TRAINING = DataContract(
    task="wavenet3d",
    model_types=("wavenet3d",),
    inputs=("input_ids", "labels"),
    make_collator=wavenet3d_collator,
    data_fields=signal_fields,
    build=build_wavenet3d,
)
