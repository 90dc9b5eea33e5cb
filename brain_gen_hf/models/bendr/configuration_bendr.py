"""Config of BENDRForecast. Field names follow the reference constructor; the reference's free-form
`attn_args` / `mlp_args` dicts become typed `attn_*` / `mlp_*` fields (`convert_bendr` maps them)."""

from __future__ import annotations

import math

from ...configuration_utils import BrainGenConfig, require, require_int_list, require_positive_int


class BENDRForecastConfig(BrainGenConfig):
    r"""
    BENDR forecaster: strided convolutional encoder -> causal transformer contextualiser -> transposed
    convolutional decoder back to the signal channels.

    Args:
        channels (`int`): number of signal channels C.
        samples (`int`): training window in samples; the model reads the first
            `context_length = (samples // downsampling - 1) * downsampling` samples of an input.
        encoder_h (`int`): width h of the convolutional features (even, divisible by `position_groups`).
        enc_width (`list[int]`): kernel size of every encoder stage.
        enc_downsample (`list[int]`): stride of every encoder stage (`enc_width[i] >= enc_downsample[i]`).
        transformer_layers (`int`): number of transformer blocks.
        dropout (`float`): dropout of the encoder stages and the contextualiser input.
        d_model (`int`, *optional*): transformer width, default `3 * encoder_h`.
        attn_heads (`int`): attention heads.
        attn_dropout (`float`): attention dropout.
        attn_bias (`bool`): biases in the attention projections.
        attn_rope (`bool`): adjacent-pair rotary embedding in the attention (off in brain-gen's BENDR).
        mlp_d_ff (`int`, *optional*): hidden width of the transformer MLP, default `4 * d_model`.
        mlp_dropout (`float`): MLP dropout.
        position_encoder (`int`): kernel of the convolutional position encoding (0 disables it).
        position_groups (`int`): groups of that convolution.
        start_token (`float`): value of the constant start token prepended to the transformer input.
        layer_drop (`float`): probability of skipping a transformer block while training.
        encoder_norm (`str`): `"causal"` (default): the encoder's GroupNorms use cumulative statistics (steps
            <= t only); `"reference"`: brain-gen's GroupNorm over the whole window, which lets every output see
            the end of the window (non-causal; for reproducing brain-gen encoder features only).
    """

    model_type = "bendr_forecast"
    # transformers' common names for the transformer's width, depth and heads.
    attribute_map = {
        "hidden_size": "d_model",
        "num_hidden_layers": "transformer_layers",
        "num_attention_heads": "attn_heads",
    }

    channels: int = 1
    samples: int = 256
    encoder_h: int = 512
    enc_width: list[int] | None = None
    enc_downsample: list[int] | None = None
    transformer_layers: int = 8
    dropout: float = 0.15
    d_model: int | None = None
    attn_heads: int = 8
    attn_dropout: float = 0.0
    attn_bias: bool = True
    attn_rope: bool = False
    mlp_d_ff: int | None = None
    mlp_dropout: float = 0.0
    position_encoder: int = 25
    position_groups: int = 16
    start_token: float = -5.0
    layer_drop: float = 0.0
    encoder_norm: str = "causal"

    def __post_init__(self, **kwargs):
        self.enc_width = list(self.enc_width if self.enc_width is not None else [3, 2, 2, 2, 2, 2])
        self.enc_downsample = list(self.enc_downsample if self.enc_downsample is not None else [2, 2, 2, 1, 1, 1])
        if self.d_model is None:
            self.d_model = 3 * self.encoder_h if isinstance(self.encoder_h, int) else None
        for name in (
            "channels",
            "samples",
            "encoder_h",
            "transformer_layers",
            "d_model",
            "attn_heads",
            "position_groups",
        ):
            require_positive_int(name, getattr(self, name))
        require_positive_int("position_encoder", self.position_encoder, allow_zero=True)
        if self.mlp_d_ff is not None:
            require_positive_int("mlp_d_ff", self.mlp_d_ff)
        require_int_list("enc_width", self.enc_width)
        require_int_list("enc_downsample", self.enc_downsample)
        require(
            len(self.enc_width) == len(self.enc_downsample),
            f"`enc_width` {self.enc_width} and `enc_downsample` {self.enc_downsample} need one entry per stage",
        )
        require(
            all(w >= s for w, s in zip(self.enc_width, self.enc_downsample)),
            f"every encoder kernel must be at least its stride, got widths {self.enc_width} and strides "
            f"{self.enc_downsample}",
        )
        require(self.encoder_h % 2 == 0, f"`encoder_h` must be even (GroupNorm of h/2 groups), got {self.encoder_h}")
        require(
            self.encoder_h % self.position_groups == 0,
            f"`encoder_h` ({self.encoder_h}) must be divisible by `position_groups` ({self.position_groups})",
        )
        require(
            self.d_model % self.attn_heads == 0,
            f"`d_model` ({self.d_model}) must be divisible by `attn_heads` ({self.attn_heads})",
        )
        require(
            self.samples // self.downsampling >= 2,
            f"`samples` ({self.samples}) must cover at least two encoder steps of {self.downsampling} samples",
        )
        for name in ("dropout", "attn_dropout", "mlp_dropout", "layer_drop"):
            require(0.0 <= float(getattr(self, name)) < 1.0, f"`{name}` must be in [0, 1), got {getattr(self, name)}")
        require(
            self.encoder_norm in ("causal", "reference"),
            f"`encoder_norm` must be 'causal' or 'reference', got {self.encoder_norm!r}",
        )
        require(math.isfinite(float(self.start_token)), f"`start_token` must be finite, got {self.start_token}")
        super().__post_init__(**kwargs)
        n = self.contract_num_channels
        require(
            n is None or n == self.channels, f"the signal contract lists {n} channels but `channels` is {self.channels}"
        )

    @property
    def downsampling(self) -> int:
        """Samples per encoder step (the product of the strides)."""
        return math.prod(self.enc_downsample)

    @property
    def context_length(self) -> int:
        """Samples of an input the model reads (the reference's `receptive_field`)."""
        return (self.samples // self.downsampling - 1) * self.downsampling
