"""Classification heads on top of brain_gen_hf base models (brain-gen's `models/classifier.py`).

The base is built from `config.base_config` with `sub_model_from_config` and stored as `base_model`, so
state-dict keys (`base_model.*`, `reducer.*`, `classifier.*`) match the reference checkpoints.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from ...modeling_outputs import BrainClassifierOutput
from ...modeling_utils import (
    COMMON_FORWARD_KWARGS,
    BrainGenPreTrainedModel,
    check_labels,
    reject_unknown_kwargs,
    sub_model_from_config,
)
from .configuration_classifier import (
    ClassifierContinuousConfig,
    ClassifierQuantizedConfig,
    ClassifierQuantizedImageConfig,
)


class _ClassifierPreTrainedModel(BrainGenPreTrainedModel):
    """Builds the base sub-model, freezes it on request and computes the cross-entropy loss."""

    base_model_prefix = "base_model"

    def __init__(self, config):
        super().__init__(config)
        self.base_model = sub_model_from_config(config.base_config)
        self._apply_freeze_base()

    def _apply_freeze_base(self) -> None:
        if self.config.freeze_base:
            self.base_model.requires_grad_(False)

    # `PreTrainedModel.base_model` is a property resolving `base_model_prefix`; with the prefix named like the
    # property it would recurse, so read the registered sub-module directly.
    @property
    def base_model(self) -> nn.Module:
        return self._modules["base_model"]

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        loaded = super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        # Loading swaps in fresh parameters (requires_grad=True), so freeze again.
        (loaded[0] if isinstance(loaded, tuple) else loaded)._apply_freeze_base()
        return loaded

    @classmethod
    def from_base_pretrained(
        cls,
        base_model_name_or_path: str | os.PathLike,
        *,
        num_classes: int,
        freeze_base: bool = False,
        base_kwargs: dict | None = None,
        **config_kwargs,
    ):
        """A new classifier whose base starts from a pretrained checkpoint (repo id or folder); the head is new.

        `base_kwargs` go to the base's `from_pretrained` (e.g. `revision`), `config_kwargs` to the classifier
        config (e.g. `red_dim`, `row_idx`/`col_idx`).
        """
        from transformers import AutoModel

        pretrained = AutoModel.from_pretrained(base_model_name_or_path, **(base_kwargs or {}))
        config = cls.config_class(
            base_config=pretrained.config.to_dict(), num_classes=num_classes, freeze_base=freeze_base, **config_kwargs
        )
        model = cls(config)
        model.base_model.load_state_dict(pretrained.state_dict(), strict=True)
        return model

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor | None:
        if labels is None:
            return None
        labels = check_labels(labels, num_classes=self.config.num_classes)
        if labels.shape != logits.shape[:1]:
            raise ValueError(
                f"labels must have shape ({logits.shape[0]},) (one class id per example), got {tuple(labels.shape)}"
            )
        return F.cross_entropy(logits.float(), labels, label_smoothing=self.config.label_smoothing)


def _reduce_and_classify(features: torch.Tensor, reducer: nn.Linear, classifier: nn.Linear) -> torch.Tensor:
    """`(B, C, T, D)` -> last step -> `reducer` per channel -> flatten channels -> `classifier`."""
    reduced = reducer(features[:, :, -1, :])  # (B, C, red_dim)
    return classifier(reduced.flatten(1))


class ClassifierContinuousModel(_ClassifierPreTrainedModel):
    """Classifier over a continuous signal `(B, C, samples)` with a BENDRForecast base.

    logits = `Linear(base.output_dim -> num_classes)` of the last step of `base.encode(input_values)`.
    """

    config_class = ClassifierContinuousConfig
    main_input_name = "input_values"

    def __init__(self, config: ClassifierContinuousConfig):
        super().__init__(config)
        self.classifier = nn.Linear(self.base_model.output_dim, config.num_classes)
        self.post_init()

    def forward(
        self,
        input_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        channel_names: list[str] | None = None,
        **kwargs,
    ) -> BrainClassifierOutput:
        """`channel_names` (optional) are checked against the base's `config.channel_names`; unknown keywords
        raise `TypeError`."""
        reject_unknown_kwargs(kwargs, COMMON_FORWARD_KWARGS, f"{type(self).__name__}.forward")
        features = self.base_model.encode(input_values, channel_names=channel_names)  # (B, output_dim, T')
        logits = self.classifier(features[..., -1])
        return BrainClassifierOutput(loss=self._loss(logits, labels), logits=logits, base_output=features)


class ClassifierQuantizedModel(_ClassifierPreTrainedModel):
    """Classifier over token streams `(B, C, T)` with a WavenetFullChannel base.

    Reads the base's last hidden state `(B, C, T, residual_channels)` (the reference meant a hidden state but
    asked the base for it with an argument no base accepted).
    """

    config_class = ClassifierQuantizedConfig
    main_input_name = "input_ids"

    def __init__(self, config: ClassifierQuantizedConfig):
        super().__init__(config)
        self.reducer = nn.Linear(config.hidden_size, config.red_dim)
        self.classifier = nn.Linear(config.num_channels * config.red_dim, config.num_classes)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor,
        labels: torch.Tensor | None = None,
        channel_names: list[str] | None = None,
        **kwargs,
    ) -> BrainClassifierOutput:
        """`channel_names` (optional) are checked against the base's `config.channel_names`; unknown keywords
        raise `TypeError`."""
        reject_unknown_kwargs(kwargs, COMMON_FORWARD_KWARGS, f"{type(self).__name__}.forward")
        hidden = self.base_model(input_ids, output_hidden_states=True, channel_names=channel_names).hidden_states[
            -1
        ]  # (B, C, T, D)
        logits = _reduce_and_classify(hidden, self.reducer, self.classifier)
        return BrainClassifierOutput(loss=self._loss(logits, labels), logits=logits, base_output=hidden)


class ClassifierQuantizedImageModel(_ClassifierPreTrainedModel):
    """Classifier over token images `(B, H, W, T)` with a TASA3D or Wavenet3D base.

    The base's logits `(B, H, W, T, Q)` are read at the sensor pixels `(row_idx[c], col_idx[c])`.
    """

    config_class = ClassifierQuantizedImageConfig
    main_input_name = "input_ids"

    def __init__(self, config: ClassifierQuantizedImageConfig):
        super().__init__(config)
        self.reducer = nn.Linear(config.quant_levels, config.red_dim)
        self.classifier = nn.Linear(config.num_channels * config.red_dim, config.num_classes)
        self.post_init()

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor | None = None, **kwargs) -> BrainClassifierOutput:
        """Unknown keywords raise `TypeError`."""
        reject_unknown_kwargs(kwargs, COMMON_FORWARD_KWARGS, f"{type(self).__name__}.forward")
        base_logits = self.base_model(input_ids).logits  # (B, H, W, T, Q)
        # The sensor pixels live in the config (not as buffers, which meta-device loading would leave empty).
        rows = torch.tensor(self.config.row_idx, device=base_logits.device)
        cols = torch.tensor(self.config.col_idx, device=base_logits.device)
        sensors = base_logits[:, rows, cols]  # (B, C, T, Q)
        logits = _reduce_and_classify(sensors, self.reducer, self.classifier)
        return BrainClassifierOutput(loss=self._loss(logits, labels), logits=logits, base_output=base_logits)
