"""Config of the BrainOmni causal tokenizer."""

from __future__ import annotations

from ...configuration_utils import require, require_int_list
from ..causal_tokenizer.configuration_causal_tokenizer import CausalRVQTokenizerConfig

SENSOR_SPACES = ("source", "sensor")
NUM_SENSOR_TYPES = 3  # the reference's sensor-type embedding table size


class BrainOmniCausalTokenizerConfig(CausalRVQTokenizerConfig):
    r"""
    BrainOmni causal tokenizer (arXiv 2505.18185, brain-gen's causal variant): every sensor is encoded by
    the same 1-channel causal SEANet, `n_neuro` learned latent queries attend over the sensors at every token
    step, the latents are RVQ-quantised, and sensor embeddings attend back over them before a per-sensor
    SEANet decoder. See `CausalRVQTokenizerConfig` for the shared fields.

    Args:
        n_dim (`int`): width of the per-sensor features and of the latent tokens D (divisible by `n_head`).
        lstm_layers (`int`, defaults to 2): LSTM layers in the SEANet bottlenecks.
        sensor_space (`str`): `"source"` (one learned embedding per channel slot; inputs may have at most
            `num_sensors` channels) or `"sensor"` (embedding from sensor positions/orientations `(B, C, 6)`
            and sensor types `(B, C)`).
        sensor_type_ids (`list[int]`, *optional*): per-channel sensor-type ids in `[0, 3)` used when
            `sensor_type` is not passed (with `sensor_positions`/`sensor_orientations` of the signal contract).
    """

    model_type = "brainomni_causal_tokenizer"

    lstm_layers: int = 2
    sensor_space: str = "source"
    sensor_type_ids: list[int] | None = None

    def __post_init__(self, **kwargs):
        require(
            self.sensor_space in SENSOR_SPACES,
            f"`sensor_space` must be one of {SENSOR_SPACES}, got {self.sensor_space!r}",
        )
        require(self.n_dim % self.n_head == 0, f"`n_dim` ({self.n_dim}) must be divisible by `n_head` ({self.n_head})")
        if self.sensor_type_ids is not None:
            require_int_list("sensor_type_ids", self.sensor_type_ids, allow_zero=True)
            require(
                max(self.sensor_type_ids) < NUM_SENSOR_TYPES,
                f"`sensor_type_ids` must be in [0, {NUM_SENSOR_TYPES}), got {self.sensor_type_ids}",
            )
            self.sensor_type_ids = list(self.sensor_type_ids)
        super().__post_init__(**kwargs)
        n = self.contract_num_channels
        if self.sensor_space == "source":
            require(
                n is None or n <= self.num_sensors,
                f"the signal contract lists {n} channels but the source-space embedding has only "
                f"`num_sensors` = {self.num_sensors} slots",
            )
        if self.sensor_type_ids is not None:
            require(
                n is None or n == len(self.sensor_type_ids),
                f"`sensor_type_ids` has {len(self.sensor_type_ids)} entries for {n} channels",
            )
