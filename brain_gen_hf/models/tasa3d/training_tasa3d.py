"""How TASA3D is trained: every window as a mu-law token image `(B, H, W, T)` (each channel on its pixel of the
`input_hw` grid), the next frame as labels at the sensor pixels (reference `ChunkDatasetImageQuantized`)."""

from __future__ import annotations

from ...training.contract import DataContract, signal_fields
from ...training.image_contract import place_sensors, token_image_collator


def build_tasa3d(model_args, data, fields: dict):
    """A fresh TASA3D whose config places every channel of the data on its image (`row_idx`/`col_idx`)."""
    from transformers import AutoConfig, AutoModel

    image_hw = AutoConfig.for_model("tasa3d", **fields).input_hw
    return AutoModel.from_config(AutoConfig.for_model("tasa3d", **place_sensors(data, image_hw, fields)))


def tasa3d_collator(data, model):
    return token_image_collator(data, model.config, model.config, model.config.input_hw)


TASA3D_TRAINING = DataContract(
    task="tasa3d",
    model_types=("tasa3d",),
    inputs=("input_ids", "labels"),
    make_collator=tasa3d_collator,
    data_fields=signal_fields,
    build=build_tasa3d,
)
