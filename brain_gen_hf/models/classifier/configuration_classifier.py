"""Configs of the classifier family: a classification head on top of a base model held as a sub-config.

The base model's config is nested as `base_config` (the way transformers nests `text_config`), so one
`config.json` describes base + head and `AutoModel.from_pretrained` rebuilds both.
"""

from __future__ import annotations

from typing import ClassVar

from transformers import AutoConfig, PreTrainedConfig

from ...configuration_utils import BrainGenConfig, require, require_positive_int, sub_config_class, sub_config_from


class _ClassifierConfigBase(BrainGenConfig):
    r"""
    Shared fields of the classifiers.

    Args:
        base_config (`PreTrainedConfig` or `dict`, *optional*): config of the base model; a dict must carry the
            base's `model_type` (it is resolved through `AutoConfig`). Default: the default config of the first
            base type this head reads (so `AutoConfig.for_model(model_type)` works).
        num_classes (`int`): number of classes (kept in sync with transformers' `num_labels`/`id2label`; passing
            `num_labels` or `id2label` instead works too).
        freeze_base (`bool`): the base model's parameters get `requires_grad=False` (train the head only).
        label_smoothing (`float`): label smoothing of the cross-entropy loss.
    """

    # Base model types this head knows how to read; subclasses set them.
    base_model_types: ClassVar[tuple[str, ...]] = ()
    # Declared a sub-config (a plain class attribute, as 5.17 reads it) so that `attn_implementation` and `dtype`
    # set on the head reach the base, as for transformers' composite configs.
    sub_configs: ClassVar[dict] = {"base_config": AutoConfig}

    base_config: dict | PreTrainedConfig | None = None
    num_classes: int | None = None
    freeze_base: bool = False
    label_smoothing: float = 0.0

    def __post_init__(self, **kwargs):
        if self.base_config is None:
            self.base_config = sub_config_class(self.base_model_types[0])()
        if isinstance(self.base_config, dict):
            require(
                "model_type" in self.base_config,
                f"`base_config` dict needs a `model_type` (one of {list(self.base_model_types)})",
            )
        # A plain field, not a `sub_configs_defaults` spec: config.json then holds the full base config.
        self.base_config = sub_config_from(self.base_config)
        self._resolve_num_classes(kwargs.pop("num_labels", None))
        require(
            0.0 <= float(self.label_smoothing) < 1.0, f"`label_smoothing` must be in [0, 1), got {self.label_smoothing}"
        )
        super().__post_init__(**kwargs)
        # transformers' classification convention: `num_labels` / `id2label` describe the classes.
        self.num_labels = self.num_classes
        require(
            self.base_config.model_type in self.base_model_types,
            f"{type(self).__name__} needs a base of type {list(self.base_model_types)}, got "
            f"{self.base_config.model_type!r}",
        )

    def to_diff_dict(self) -> dict:
        """`PreTrainedConfig.to_diff_dict` with the base config written in full on every supported release (5.17
        would write only its difference from `PreTrainedConfig`'s defaults, as it does for declared sub-configs)."""
        serialised = super().to_diff_dict()
        nested = self.base_config.to_dict()
        nested.pop("transformers_version", None)  # a nested config does not repeat it
        serialised["base_config"] = nested
        return serialised

    def _resolve_num_classes(self, num_labels: int | None) -> None:
        if self.num_classes is None:
            if num_labels is not None:
                self.num_classes = num_labels
            elif self.id2label is not None:
                self.num_classes = len(self.id2label)
            else:
                self.num_classes = 2  # transformers' default num_labels
        require_positive_int("num_classes", self.num_classes)
        require(self.num_classes >= 2, f"`num_classes` must be at least 2, got {self.num_classes}")
        require(
            num_labels is None or num_labels == self.num_classes,
            f"`num_labels` ({num_labels}) and `num_classes` ({self.num_classes}) disagree",
        )
        require(
            self.id2label is None or len(self.id2label) == self.num_classes,
            f"`id2label` has {len(self.id2label or {})} entries but `num_classes` is {self.num_classes}",
        )


class ClassifierContinuousConfig(_ClassifierConfigBase):
    r"""
    Classifier over a continuous signal: `Linear(base.output_dim -> num_classes)` on the last step of
    `base.encode(input_values)`. Base: BENDRForecast (the only base with `encode` and `output_dim`).
    """

    model_type = "classifier_continuous"
    base_model_types: ClassVar[tuple[str, ...]] = ("bendr_forecast",)


class ClassifierQuantizedConfig(_ClassifierConfigBase):
    r"""
    Classifier over C channels of tokens: the base's last hidden state `(B, C, T, d_model)` at the last
    step -> `Linear(d_model -> red_dim)` per channel -> flatten channels -> `Linear(C * red_dim -> num_classes)`.
    Base: WavenetFullChannel (d_model = its `residual_channels`).

    Args:
        red_dim (`int`): per-channel width after the reduction layer.
    """

    model_type = "classifier_quantized"
    base_model_types: ClassVar[tuple[str, ...]] = ("wavenet_full_channel",)

    red_dim: int = 16

    def __post_init__(self, **kwargs):
        require_positive_int("red_dim", self.red_dim)
        super().__post_init__(**kwargs)

    @property
    def num_channels(self) -> int:
        return self.base_config.in_channels

    @property
    def hidden_size(self) -> int:
        """Width of the base's hidden states (the WaveNet residual stream)."""
        return self.base_config.residual_channels


class ClassifierQuantizedImageConfig(_ClassifierConfigBase):
    r"""
    Classifier over token images: base logits `(B, H, W, T, Q)` -> the sensor pixels `(row_idx[c], col_idx[c])`
    -> `(B, C, T, Q)` -> last step -> `Linear(Q -> red_dim)` -> flatten -> `Linear(C * red_dim -> num_classes)`.
    Base: TASA3D or Wavenet3D.

    Args:
        row_idx, col_idx (`list[int]`, *optional*): image row and column of every sensor (C entries each). Default:
            the base config's `row_idx`/`col_idx` when it places sensors, else every pixel of the image in row-major
            order.
        red_dim (`int`): per-sensor width after the reduction layer.
        image_size (`list[int]`, *optional*): `(H, W)` of the token image (an int means square). Taken from the
            base config when it fixes the size; both given must agree. A Wavenet3D base without `image_size`
            gets it from here.
    """

    model_type = "classifier_quantized_image"
    base_model_types: ClassVar[tuple[str, ...]] = ("tasa3d", "wavenet3d")

    row_idx: list[int] | None = None
    col_idx: list[int] | None = None
    red_dim: int = 16
    image_size: int | list[int] | None = None

    def __post_init__(self, **kwargs):
        require_positive_int("red_dim", self.red_dim)
        if self.row_idx is None and self.col_idx is None:
            self._default_sensor_pixels()
        for name in ("row_idx", "col_idx"):
            value = getattr(self, name)
            require(
                isinstance(value, (list, tuple))
                and len(value) > 0
                and all(isinstance(i, int) and not isinstance(i, bool) for i in value),
                f"`{name}` must be a non-empty list of pixel indices (one per sensor), got {value!r}",
            )
            setattr(self, name, list(value))
        require(
            len(self.row_idx) == len(self.col_idx),
            f"`row_idx` ({len(self.row_idx)}) and `col_idx` ({len(self.col_idx)}) need one entry per sensor",
        )
        if isinstance(self.image_size, int):
            self.image_size = [self.image_size, self.image_size]
        super().__post_init__(**kwargs)
        self._resolve_image_size()
        height, width = self.image_size
        for name, indices, side in (("row_idx", self.row_idx, height), ("col_idx", self.col_idx, width)):
            bad = [i for i in indices if not 0 <= i < side]
            require(not bad, f"`{name}` has {bad} outside the image ({height}x{width}): indices must be in [0, {side})")

    def _default_sensor_pixels(self) -> None:
        """The base's sensor pixels when its config places them, else every pixel of the image (row-major)."""
        if self.base_config is None:
            self.base_config = sub_config_class(self.base_model_types[0])()
        elif isinstance(self.base_config, dict) and "model_type" in self.base_config:
            self.base_config = sub_config_from(self.base_config)
        base = self.base_config
        if not isinstance(base, PreTrainedConfig):
            return  # the base check below names the problem
        if getattr(base, "row_idx", None) is not None:
            self.row_idx, self.col_idx = list(base.row_idx), list(base.col_idx)
            return
        size = self.image_size or (base.input_hw if base.model_type == "tasa3d" else base.image_size)
        if size is None:
            return  # the image size check below names the problem
        height, width = (size, size) if isinstance(size, int) else size
        self.row_idx = [r for r in range(height) for _ in range(width)]
        self.col_idx = [c for _ in range(height) for c in range(width)]

    def _resolve_image_size(self) -> None:
        base = self.base_config
        base_size = base.input_hw if base.model_type == "tasa3d" else base.image_size
        if self.image_size is not None:
            require(
                len(self.image_size) == 2 and all(isinstance(s, int) and s > 0 for s in self.image_size),
                f"`image_size` must be an int or (H, W), got {self.image_size!r}",
            )
            if base_size is None:
                base.image_size = list(self.image_size)  # let the Wavenet3D base check its inputs too
            require(
                list(base_size or self.image_size) == self.image_size,
                f"`image_size` {self.image_size} disagrees with the base model's image size {base_size}",
            )
        else:
            require(
                base_size is not None,
                "the token image size is unknown: set `image_size` (the base config does not fix it)",
            )
            self.image_size = list(base_size)

    @property
    def num_channels(self) -> int:
        return len(self.row_idx)

    @property
    def quant_levels(self) -> int:
        return self.base_config.quant_levels
