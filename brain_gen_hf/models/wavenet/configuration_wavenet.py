"""Configs of the WaveNet family. Field names follow the reference constructors so old YAMLs load."""

from __future__ import annotations

from ...configuration_utils import BrainGenConfig, require, require_int_list, require_positive_int
from ...layers.mulaw_token_config import check_fill_token, check_mulaw_max_value, check_sensor_pixels


class _WavenetConfigBase(BrainGenConfig):
    r"""
    Shared WaveNet hyper-parameters.

    Args:
        quant_levels (`int`): vocabulary size Q (mu-law bins, 256 for mu=255).
        quant_emb (`int`): token embedding width E.
        head_channels (`int`): hidden width of the logits head.
        kernel_size (`int`): temporal kernel of the dilated layers.
        dilations (`list[int]`): one dilated gated layer per entry (after a 1x1 input layer).
        residual_channels, dilation_channels, skip_channels (`int`): widths of the residual stream, the
            gated activations and the skip connections.
        p_drop (`float`): channel dropout after every layer and in the head.
        bias (`bool`): convolutions use biases.
        mulaw_max_value (`float`): the signal amplitude at the edge of the mu-law range: the tokens are
            `mulaw_encode(signal / mulaw_max_value, mu=quant_levels - 1)` (the training collators' and the
            reference data's 5.0). `forecast` encodes its input and decodes its output with it.
    """

    quant_levels: int = 256
    quant_emb: int = 16
    head_channels: int = 16
    kernel_size: int = 2
    dilations: list[int] | None = None
    residual_channels: int = 16
    dilation_channels: int = 16
    skip_channels: int = 16
    p_drop: float = 0.0
    bias: bool = True
    mulaw_max_value: float = 5.0

    def __post_init__(self, **kwargs):
        check_mulaw_max_value(self.mulaw_max_value)
        self.mulaw_max_value = float(self.mulaw_max_value)
        if self.dilations is None:
            self.dilations = [1, 2, 4, 8]
        self.dilations = list(self.dilations)
        for name in (
            "quant_levels",
            "quant_emb",
            "head_channels",
            "kernel_size",
            "residual_channels",
            "dilation_channels",
            "skip_channels",
        ):
            require_positive_int(name, getattr(self, name))
        require_int_list("dilations", self.dilations)
        require(
            self.quant_levels >= 2,
            f"`quant_levels` must be at least 2 (one level predicts nothing), got {self.quant_levels}",
        )
        require(0.0 <= float(self.p_drop) < 1.0, f"`p_drop` must be in [0, 1), got {self.p_drop}")
        super().__post_init__(**kwargs)

    @property
    def vocab_size(self) -> int:
        return self.quant_levels

    @property
    def hidden_size(self) -> int:
        """transformers' name for the width of the hidden states: the residual stream."""
        return self.residual_channels

    @property
    def num_hidden_layers(self) -> int:
        """The 1x1 input layer plus one gated layer per dilation."""
        return 1 + len(self.dilations)

    @property
    def receptive_field(self) -> int:
        """Samples of past context one output sees (chained layers)."""
        return 1 + (self.kernel_size - 1) * sum(self.dilations)


class WavenetFullChannelConfig(_WavenetConfigBase):
    r"""
    WaveNet over C independent token streams with one embedding table per channel.

    Args:
        in_channels (`int`): number of signal channels C (each has its own `(Q, E)` embedding table).
        num_classes (`int`): >0 enables a per-timestep class condition `(B, 1, T)` (id 0 = no condition).
        class_emb (`int`): width of the class-condition embedding.
        parallel_layers (`bool`): reproduce the reference wiring in which every layer reads the embedded
            input instead of the previous layer's output (reference BUG, see
            docs/reference-differences.md). Set only for checkpoints converted from brain-gen, whose
            weights were trained that way; new models chain their layers.
    """

    model_type = "wavenet_full_channel"

    in_channels: int = 1
    num_classes: int = 0
    class_emb: int = 0
    parallel_layers: bool = False

    def __post_init__(self, **kwargs):
        require_positive_int("in_channels", self.in_channels)
        require_positive_int("num_classes", self.num_classes, allow_zero=True)
        require_positive_int("class_emb", self.class_emb, allow_zero=True)
        require(
            (self.num_classes > 0) == (self.class_emb > 0),
            f"`num_classes` ({self.num_classes}) and `class_emb` ({self.class_emb}) must both be 0 "
            "(no conditioning) or both positive",
        )
        if self.parallel_layers:
            require(
                self.quant_emb == self.residual_channels,
                "`parallel_layers=True` (reference wiring) needs `quant_emb == residual_channels`, got "
                f"{self.quant_emb} and {self.residual_channels}",
            )
        super().__post_init__(**kwargs)
        n = self.contract_num_channels
        require(
            n is None or n == self.in_channels,
            f"the signal contract lists {n} channels but `in_channels` is {self.in_channels}",
        )


class Wavenet3DConfig(_WavenetConfigBase):
    r"""
    WaveNet over token images `(B, H, W, T)`: causal dilated convolutions in time, small spatial kernels.

    Args:
        spatial_kernel_size (`list[int]`): `(kH, kW)` of the dilated layers (odd sizes keep the image size).
        spatial_dilation (`list[int]`): `(dH, dW)` of the dilated layers.
        cond_channels (`int`, *optional*): channels of a dense condition `(B, Cc, H, W, T)` added in every layer.
        image_size (`list[int]`, *optional*): `(H, W)` of the token image, checked on input when set.
        row_idx, col_idx (`list[int]`, *optional*): image row and column of every channel (C entries each, as
            `brain_gen_hf.data.grid_indices` places them); `forecast` maps signals to images with them unless
            it is given its own. Need `image_size`.
        fill_token (`int`, *optional*): token of the pixels without a sensor; `None` means the bin of a zero
            signal (what `ImageCollator` writes there).
    """

    model_type = "wavenet3d"

    spatial_kernel_size: list[int] | None = None
    spatial_dilation: list[int] | None = None
    cond_channels: int | None = None
    image_size: list[int] | None = None
    row_idx: list[int] | None = None
    col_idx: list[int] | None = None
    fill_token: int | None = None

    def __post_init__(self, **kwargs):
        self.spatial_kernel_size = _pair("spatial_kernel_size", self.spatial_kernel_size)
        self.spatial_dilation = _pair("spatial_dilation", self.spatial_dilation)
        for k in self.spatial_kernel_size:
            require(
                k % 2 == 1,
                f"`spatial_kernel_size` entries must be odd to keep the image size, got {self.spatial_kernel_size}",
            )
        if self.cond_channels is not None:
            require_positive_int("cond_channels", self.cond_channels)
        if self.image_size is not None:
            self.image_size = _pair("image_size", self.image_size)
        if self.row_idx is not None or self.col_idx is not None:
            require(self.image_size is not None, "`row_idx`/`col_idx` need `image_size` (the (H, W) they index)")
            self.row_idx, self.col_idx = check_sensor_pixels(self.row_idx, self.col_idx, self.image_size)
        super().__post_init__(**kwargs)
        check_fill_token(self.fill_token, self.quant_levels)
        n = self.contract_num_channels
        require(
            n is None or self.row_idx is None or n == len(self.row_idx),
            f"the signal contract lists {n} channels but `row_idx` places {len(self.row_idx or [])}",
        )


def _pair(name, value) -> list[int]:
    if value is None:
        return [1, 1]
    if isinstance(value, int):
        value = [value, value]
    require_int_list(name, value, min_len=2)
    require(len(value) == 2, f"`{name}` must be an int or a pair, got {value!r}")
    return list(value)
