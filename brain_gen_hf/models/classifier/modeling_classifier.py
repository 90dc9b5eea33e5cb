"""Classification heads on top of brain_gen_hf base models (brain-gen's `models/classifier.py`).

The base is built from `config.base_config` with `sub_model_from_config` and stored as `base_model`, so
state-dict keys (`base_model.*`, `reducer.*`, `classifier.*`) match the reference checkpoints.
"""

from __future__ import annotations

import dataclasses
import os

import torch
import torch.nn.functional as F
from torch import nn
from transformers.utils import logging
from transformers.utils.generic import can_return_tuple

from ...modeling_outputs import BrainClassifierOutput
from ...modeling_utils import (
    COMMON_FORWARD_KWARGS,
    BrainGenPreTrainedModel,
    check_labels,
    reject_unknown_kwargs,
    sub_model_from_config,
)
from ...weights_loading import hub_kwargs
from .configuration_classifier import (
    ClassifierContinuousConfig,
    ClassifierQuantizedConfig,
    ClassifierQuantizedImageConfig,
)

logger = logging.get_logger(__name__)
# `from_pretrained` keywords of transformers' config machinery that a head config takes (besides its own fields).
_HEAD_CONFIG_KWARGS = ("num_labels", "id2label", "label2id", "problem_type")


class _ClassifierPreTrainedModel(BrainGenPreTrainedModel):
    """Builds the base sub-model, freezes it on request and computes the cross-entropy loss."""

    base_model_prefix = "base_model"
    # Every base's repeated blocks are `GradientCheckpointingLayer`s.
    supports_gradient_checkpointing = True

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
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike | None, *model_args, **kwargs):
        """`BrainGenPreTrainedModel.from_pretrained` (strict), or a new head on a base model's checkpoint.

        A folder or repo holding one of the base types this head reads (`config.base_model_types`) loads the way
        transformers heads load from a base checkpoint: the base weights are loaded strictly, the head
        (`reducer`, `classifier`) is newly initialised, and its keys are logged as a warning and reported as
        `missing_keys` with `output_loading_info=True`. Head-config keywords (`num_classes` / `num_labels`,
        `red_dim`, `row_idx`/`col_idx`, `freeze_base`, ...) set up the head; the rest go to the base's
        `from_pretrained`.
        """
        if (
            pretrained_model_name_or_path is not None
            and _saved_model_type(cls, pretrained_model_name_or_path, kwargs) in cls.config_class.base_model_types
        ):
            loaded = cls._from_base_checkpoint(pretrained_model_name_or_path, *model_args, **kwargs)
        else:
            loaded = super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        # Loading swaps in fresh parameters (requires_grad=True), so freeze again.
        (loaded[0] if isinstance(loaded, tuple) else loaded)._apply_freeze_base()
        return loaded

    @classmethod
    def _from_base_checkpoint(cls, pretrained_model_name_or_path: str | os.PathLike, *model_args, **kwargs):
        from transformers import AutoModel

        want_info = kwargs.pop("output_loading_info", False)
        fields = {f.name for f in dataclasses.fields(cls.config_class)} | set(_HEAD_CONFIG_KWARGS)
        head_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in fields and k != "base_config"}
        base = AutoModel.from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        model = cls(cls.config_class(base_config=base.config, **head_kwargs))
        model.base_model = base  # the loaded base, with the config the head config now nests
        model.to(device=base.device, dtype=base.dtype)
        new_keys = sorted(k for k in model.state_dict() if not k.startswith(f"{cls.base_model_prefix}."))
        logger.warning(
            f"{cls.__name__} was built on the {base.config.model_type} checkpoint {pretrained_model_name_or_path}: "
            f"the base weights are loaded, the head is new and needs training: {new_keys}"
        )
        if not want_info:
            return model
        info = {"missing_keys": set(new_keys), "unexpected_keys": set(), "mismatched_keys": set(), "error_msgs": []}
        return model, info

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


def _saved_model_type(cls, pretrained_model_name_or_path: str | os.PathLike, kwargs: dict) -> str | None:
    """`model_type` of the checkpoint to load (the config passed in, else its config.json)."""
    config = kwargs.get("config")
    if config is not None and not isinstance(config, (str, os.PathLike)):
        return config.model_type
    config_dict, _ = cls.config_class.get_config_dict(pretrained_model_name_or_path, **hub_kwargs(kwargs))
    return config_dict.get("model_type")


def _reduce_and_classify(features: torch.Tensor, reducer: nn.Linear, classifier: nn.Linear) -> torch.Tensor:
    """`(B, C, T, D)` -> last step -> `reducer` per channel -> flatten channels -> `classifier`."""
    reduced = reducer(features[:, :, -1, :])  # (B, C, red_dim)
    return classifier(reduced.flatten(1))


def _flag(value: bool | None, default: bool) -> bool:
    return default if value is None else value


class ClassifierContinuousModel(_ClassifierPreTrainedModel):
    """Classifier over a continuous signal `(B, C, samples)` with a BENDRForecast base.

    logits = `Linear(base.output_dim -> num_classes)` of the last step of the base's contextualised features.
    """

    config_class = ClassifierContinuousConfig
    main_input_name = "input_values"

    def __init__(self, config: ClassifierContinuousConfig):
        super().__init__(config)
        self.classifier = nn.Linear(self.base_model.output_dim, config.num_classes)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        channel_names: list[str] | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> BrainClassifierOutput:
        r"""
        Class logits of a signal window.

        Args:
            input_values (`torch.Tensor` of shape `(B, C, T)`): the signal (any float dtype, cast to the model's);
                the base reads its first `base_config.context_length` samples.
            channel_names (`list[str]`, *optional*): checked against the base's `config.channel_names`.
            labels (`torch.LongTensor` of shape `(B,)`, *optional*): class ids in `[0, num_classes)`; `loss` is their
                cross-entropy (with `config.label_smoothing`).
            output_hidden_states (`bool`, *optional*): also return the base model's hidden states.
            output_attentions (`bool`, *optional*): also return the base model's attention weights.
            return_dict (`bool`, *optional*): `False` returns a tuple of the non-None fields.

        Returns:
            `BrainClassifierOutput` with `logits (B, num_classes)`, `loss`, `base_output`
            (the base's features `(B, encoder_h, T' + 1)`) and the base's `hidden_states` / `attentions` when asked for.
            Unknown keywords raise `TypeError`.
        """
        reject_unknown_kwargs(kwargs, COMMON_FORWARD_KWARGS, f"{type(self).__name__}.forward")
        base = self.base_model(
            input_values,
            channel_names=channel_names,
            output_hidden_states=_flag(output_hidden_states, self.config.output_hidden_states),
            output_attentions=_flag(output_attentions, self.config.output_attentions),
        )
        features = base.features  # (B, output_dim, T' + 1)
        logits = self.classifier(features[..., -1])
        return BrainClassifierOutput(
            loss=self._loss(logits, labels),
            logits=logits,
            base_output=features,
            hidden_states=base.hidden_states,
            attentions=base.attentions,
        )


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

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor,
        labels: torch.Tensor | None = None,
        channel_names: list[str] | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> BrainClassifierOutput:
        r"""
        Class logits of C token streams.

        Args:
            input_ids (`torch.LongTensor` of shape `(B, C, T)`): mu-law tokens of the base's C channels.
            channel_names (`list[str]`, *optional*): checked against the base's `config.channel_names`.
            labels (`torch.LongTensor` of shape `(B,)`, *optional*): class ids in `[0, num_classes)`; `loss` is their
                cross-entropy (with `config.label_smoothing`).
            output_hidden_states (`bool`, *optional*): also return the base model's hidden states.
            output_attentions (`bool`, *optional*): accepted and ignored (the WaveNet base has no attention).
            return_dict (`bool`, *optional*): `False` returns a tuple of the non-None fields.

        Returns:
            `BrainClassifierOutput` with `logits (B, num_classes)`, `loss`, `base_output` (the base's last hidden
            state `(B, C, T, residual_channels)`) and the base's `hidden_states` when asked for. Unknown keywords
            raise `TypeError`.
        """
        reject_unknown_kwargs(kwargs, COMMON_FORWARD_KWARGS, f"{type(self).__name__}.forward")
        base = self.base_model(input_ids, output_hidden_states=True, channel_names=channel_names)
        hidden = base.hidden_states[-1]  # (B, C, T, D)
        logits = _reduce_and_classify(hidden, self.reducer, self.classifier)
        keep_hidden = _flag(output_hidden_states, self.config.output_hidden_states)
        return BrainClassifierOutput(
            loss=self._loss(logits, labels),
            logits=logits,
            base_output=hidden,
            hidden_states=base.hidden_states if keep_hidden else None,
        )


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

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> BrainClassifierOutput:
        r"""
        Class logits of a token image sequence.

        Args:
            input_ids (`torch.LongTensor` of shape `(B, H, W, T)`): token images of the base's image size.
            labels (`torch.LongTensor` of shape `(B,)`, *optional*): class ids in `[0, num_classes)`; `loss` is their
                cross-entropy (with `config.label_smoothing`).
            output_hidden_states (`bool`, *optional*): also return the base model's hidden states.
            output_attentions (`bool`, *optional*): also return the base model's attention weights (a TASA3D
                base; Wavenet3D has none).
            return_dict (`bool`, *optional*): `False` returns a tuple of the non-None fields.

        Returns:
            `BrainClassifierOutput` with `logits (B, num_classes)`, `loss`, `base_output`
            (the base's logits `(B, H, W, T, quant_levels)`) and the base's `hidden_states` / `attentions` when
            asked for. Unknown keywords raise `TypeError`.
        """
        reject_unknown_kwargs(kwargs, COMMON_FORWARD_KWARGS, f"{type(self).__name__}.forward")
        base_kwargs = {"output_hidden_states": _flag(output_hidden_states, self.config.output_hidden_states)}
        if _flag(output_attentions, self.config.output_attentions):
            base_kwargs["output_attentions"] = True  # WaveNet accepts and ignores it
        base = self.base_model(input_ids, **base_kwargs)
        base_logits = base.logits  # (B, H, W, T, Q)
        # The sensor pixels live in the config (not as buffers, which meta-device loading would leave empty).
        rows = torch.tensor(self.config.row_idx, device=base_logits.device)
        cols = torch.tensor(self.config.col_idx, device=base_logits.device)
        sensors = base_logits[:, rows, cols]  # (B, C, T, Q)
        logits = _reduce_and_classify(sensors, self.reducer, self.classifier)
        return BrainClassifierOutput(
            loss=self._loss(logits, labels),
            logits=logits,
            base_output=base_logits,
            hidden_states=base.hidden_states,
            attentions=getattr(base, "attentions", None),
        )
