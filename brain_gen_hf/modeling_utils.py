"""`BrainGenPreTrainedModel`: init rules, strict loading and input checks shared by every family."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Collection, Sequence
from pathlib import Path

import torch
from safetensors import SafetensorError
from torch import nn
from transformers import PreTrainedConfig, PreTrainedModel

from .configuration_utils import BrainGenConfig
from .weights_loading import (
    check_finite_weights,
    corrupt_weights_message,
    hub_kwargs,
    mismatched_shapes_message,
    refuse_non_safetensors_options,
    safetensors_weight_files,
)

# Model classes by model_type for nested sub-models (a classifier's base, an LM's tokenizer), consulted before
# transformers' AutoModel registry; exported remote code fills it with its bundled classes.
SUB_MODEL_CLASSES: dict[str, type[PreTrainedModel]] = {}


def sub_model_from_config(config) -> PreTrainedModel:
    """Build a nested sub-model from its config (brain_gen_hf family or any transformers model)."""
    model_class = SUB_MODEL_CLASSES.get(config.model_type)
    if model_class is not None:
        return model_class(config)
    from transformers import AutoModel

    return AutoModel.from_config(config)


class BrainGenPreTrainedModel(PreTrainedModel):
    """Base class of every brain_gen_hf model.

    * Initialisation (`_init_weights`, run by `post_init`, `init_weights()` and for the weights `from_pretrained`
      does not load): a module with `reset_brain_gen_parameters()` uses it, and must initialise its parameters
      *and buffers* there (e.g. the RVQ codebooks), so that a model built on the meta device and then
      `init_weights()`-ed is usable; it should write through `transformers.initialization` (which leaves loaded
      tensors alone). Everything else keeps PyTorch's default init (what the reference uses). A module setting
      `_skip_reinit = True` is never touched. Families with their own rules override `_init_module`.
    * Loading is strict and safetensors-only: missing, unexpected or shape-mismatched keys (with both shapes),
      a truncated or corrupted safetensors file and NaN/inf weights raise `OSError` naming them; pickled
      weights (`pytorch_model.bin`) are refused and never unpickled (`from_pretrained`).
    * `from_pretrained(..., output_loading_info=True)` returns `(model, info)`, transformers' loading-info dict
      (`missing_keys`, `unexpected_keys`, `mismatched_keys`, `error_msgs`), for a load that succeeded; it does not
      relax strict loading: key problems still raise `OSError`, so the key lists come back empty.
    * Saving writes safetensors only.
    """

    config_class = BrainGenConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = False
    _supports_sdpa = True
    # Weight files must be safetensors; pickled `.bin` checkpoints are never read.
    _keys_to_ignore_on_load_unexpected = None

    def __init__(self, config, *inputs, **kwargs):
        expected = self.config_class
        if (
            isinstance(config, PreTrainedConfig)
            and not isinstance(config, expected)
            and config.model_type != expected.model_type
            # A shared config base (FlatGPTBackbone's) in remote code, where the classes are loaded twice.
            and expected.__name__ not in {base.__name__ for base in type(config).__mro__}
        ):
            # Would fail later on a missing hyper-parameter (AttributeError) or build a wrong model.
            raise ValueError(
                f"{type(self).__name__} needs a {expected.__name__} (model_type "
                f"{expected.model_type!r}), got a {type(config).__name__} (model_type "
                f"{config.model_type!r}); build the model with AutoModel.from_config(config) or the "
                "class of the config's family"
            )
        super().__init__(config, *inputs, **kwargs)

    # ------------------------------------------------------------------ init
    def _init_weights(self, module: nn.Module) -> None:
        if getattr(module, "_skip_reinit", False):
            return
        self._init_module(module)

    def _init_module(self, module: nn.Module) -> None:
        reset = getattr(module, "reset_brain_gen_parameters", None)
        if reset is not None:
            reset()
        elif isinstance(
            module, (nn.Linear, nn.Embedding, nn.modules.conv._ConvNd, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm, nn.LSTM)
        ):
            module.reset_parameters()

    # ------------------------------------------------------------- loading
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """`PreTrainedModel.from_pretrained`, but strict and safetensors-only (see the class docstring).

        Before transformers builds anything, the weight files are located (downloaded if on the Hub) and read:
        `use_safetensors=False`, `from_tf`/`from_flax`/`gguf_file` raise `ValueError`; a checkpoint with only
        pickled weights (`pytorch_model.bin`) raises `OSError` without being opened; NaN/inf weights raise
        `OSError` naming the tensors and the file. `use_safetensors=None` never falls back to a `.bin`. A folder
        whose config.json holds another family's `model_type` raises `ValueError` (use `AutoModel`).
        `output_loading_info=True` returns `(model, info)`; missing/unexpected/mismatched keys raise all the same.
        """
        want_info = kwargs.pop("output_loading_info", False)
        refuse_non_safetensors_options(kwargs)
        kwargs["use_safetensors"] = True
        if pretrained_model_name_or_path is not None:
            if kwargs.get("config") is None:  # AutoModel passes the config it has already read
                _refuse_other_family(cls, pretrained_model_name_or_path, kwargs)
            for file in safetensors_weight_files(pretrained_model_name_or_path, kwargs):
                check_finite_weights(file)
        # Mismatched shapes are then listed in the loading info (with both shapes) and refused below.
        kwargs["ignore_mismatched_sizes"] = True
        try:
            model, info = super().from_pretrained(
                pretrained_model_name_or_path, *model_args, output_loading_info=True, **kwargs
            )
        except SafetensorError as err:
            raise OSError(corrupt_weights_message(pretrained_model_name_or_path, err)) from err
        _refuse_key_problems(cls.__name__, pretrained_model_name_or_path, info)
        return (model, info) if want_info else model

    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        *args,
        remote_code: bool = False,
        model_card: bool | dict = True,
        **kwargs,
    ):
        """`PreTrainedModel.save_pretrained` plus a model card and, optionally, self-contained remote code.

        model_card: write `README.md` from the family template (never overwrites an existing card); a dict
            passes fields such as `training_data`, `metrics`, `datasets`, `repo_id` to the card.
        remote_code: also write `configuration_*.py`/`modeling_*.py` and an `auto_map`, so the folder loads
            with `trust_remote_code=True` where brain_gen_hf is not installed.
        """
        if kwargs.get("safe_serialization") is False:
            raise ValueError("brain_gen_hf saves weights as safetensors only (safe_serialization=False refused)")
        if os.path.isfile(save_directory):  # transformers would only log an error and save nothing
            raise OSError(
                f"save_directory {os.fspath(save_directory)} is an existing file; save_pretrained writes a "
                "folder (config.json, model.safetensors, ...): pass a folder path"
            )
        result = super().save_pretrained(save_directory, *args, **kwargs)
        folder = Path(save_directory)
        if remote_code:
            from .hub.remote_code import add_auto_map, export_remote_code, nested_model_types

            auto_map = export_remote_code(self.config.model_type, folder, nested_model_types(self.config))
            add_auto_map(folder, auto_map)
        if model_card and not (folder / "README.md").exists():
            try:
                from .hub.model_card import render_model_card
            except ImportError:  # exported remote code ships without the card templates: no card
                return result
            options = model_card if isinstance(model_card, dict) else {}
            render_model_card(self.config, remote_code=remote_code, **options).save(folder / "README.md")
        return result

    def push_to_hub(
        self,
        repo_id: str,
        *,
        remote_code: bool = False,
        commit_message: str | None = None,
        private: bool | None = None,
        token: str | bool | None = None,
        revision: str | None = None,
        create_pr: bool = False,
        model_card: dict | None = None,
        **save_kwargs,
    ) -> str:
        """Save weights, config and a model card (and remote code if asked) and upload them in one commit.

        One commit means a failed upload leaves the repository as it was; retrying is safe.
        """
        from huggingface_hub import HfApi

        api = HfApi(token=token)
        repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
        with tempfile.TemporaryDirectory() as tmp:
            card = {"repo_id": repo_id, **(model_card or {})}
            self.save_pretrained(tmp, remote_code=remote_code, model_card=card, **save_kwargs)
            info = api.upload_folder(
                repo_id=repo_id,
                folder_path=tmp,
                revision=revision,
                create_pr=create_pr,
                commit_message=commit_message or f"Upload {type(self).__name__}",
            )
        return info

    # -------------------------------------------------------- input checks
    def check_signal(
        self,
        x: torch.Tensor,
        *,
        name: str = "input",
        ndim: int | Sequence[int] | None = None,
        num_channels: int | None = None,
        channel_dim: int = 1,
        channel_names: Sequence[str] | None = None,
    ) -> torch.Tensor:
        """Validate a continuous signal tensor and return it in the model's dtype.

        Checks type, float dtype, rank, non-empty, channel count, finite values and, when `channel_names` is
        given, the names against `config.channel_names` (`BrainGenConfig.check_signal_metadata`). A float16,
        bfloat16 or float64 signal is cast to the dtype of the model's parameters (what its layers compute in),
        so e.g. a float64 numpy recording works as is.
        """
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        check_has_data(x, name)
        if not x.is_floating_point():
            raise ValueError(f"{name} must be a floating-point signal tensor, got dtype {x.dtype}")
        _check_rank(x, name, ndim)
        if x.numel() == 0:
            raise ValueError(f"{name} is empty (shape {tuple(x.shape)})")
        if num_channels is not None and x.shape[channel_dim] != num_channels:
            raise ValueError(
                f"{name} has {x.shape[channel_dim]} channels (dim {channel_dim} of shape "
                f"{tuple(x.shape)}), the model expects {num_channels}"
            )
        if not torch.isfinite(x).all():
            bad = (~torch.isfinite(x)).sum().item()
            raise ValueError(f"{name} contains {bad} NaN/inf values; clean or interpolate the signal first")
        if channel_names is not None:
            self.config.check_signal_metadata(channel_names=channel_names, num_channels=x.shape[channel_dim])
        return self._in_model_dtype(x, name)

    def _in_model_dtype(self, x: torch.Tensor, name: str) -> torch.Tensor:
        dtype = self.dtype
        if x.dtype == dtype or not dtype.is_floating_point:
            return x
        cast = x.to(dtype)
        if not torch.isfinite(cast).all():
            raise ValueError(
                f"{name} ({x.dtype}) has values beyond the range of {dtype}, the model's dtype; rescale the signal"
            )
        return cast

    def check_tokens(
        self,
        ids: torch.Tensor,
        *,
        vocab_size: int,
        name: str = "input_ids",
        ndim: int | Sequence[int] | None = None,
        num_channels: int | None = None,
        channel_dim: int = 1,
    ) -> torch.Tensor:
        """Validate token ids: int64/int32 dtype, rank, non-empty, channel count, range [0, vocab)."""
        if not isinstance(ids, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor of token ids, got {type(ids).__name__}")
        check_has_data(ids, name)
        if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
            raise ValueError(
                f"{name} must hold integer token ids, got dtype {ids.dtype}; quantise the signal "
                "first (e.g. brain_gen_hf.tokenizers.mulaw_encode)"
            )
        _check_index_dtype(ids, name)
        _check_rank(ids, name, ndim)
        if ids.numel() == 0:
            raise ValueError(f"{name} is empty (shape {tuple(ids.shape)})")
        if num_channels is not None and ids.shape[channel_dim] != num_channels:
            raise ValueError(
                f"{name} has {ids.shape[channel_dim]} channels (dim {channel_dim} of shape "
                f"{tuple(ids.shape)}), the model expects {num_channels}"
            )
        lo, hi = value_range(ids)
        if lo < 0 or hi >= vocab_size:
            raise ValueError(f"{name} has ids in [{lo}, {hi}], outside the vocabulary [0, {vocab_size - 1}]")
        return ids


def _refuse_other_family(cls, pretrained_model_name_or_path, kwargs: dict) -> None:
    """A folder saved by another family loads as a config of defaults and fails on every weight key; name the cause."""
    expected = cls.config_class.model_type
    if expected == BrainGenConfig.model_type:  # a shared base class: no single family
        return
    config_dict, _ = cls.config_class.get_config_dict(pretrained_model_name_or_path, **hub_kwargs(kwargs))
    saved = config_dict.get("model_type")
    if saved is not None and saved != expected:
        raise ValueError(
            f"{pretrained_model_name_or_path} holds a {saved!r} model, but {cls.__name__} loads "
            f"{expected!r} models; use AutoModel.from_pretrained (it picks the class from config.json) "
            "or the class of that family"
        )


def _refuse_key_problems(model_name: str, where, info: dict) -> None:
    """Strict loading: missing, unexpected or shape-mismatched keys raise `OSError` with the keys (and shapes)."""
    problems = [
        f"{kind}: {sorted(keys)[:20]}{' ...' if len(keys) > 20 else ''}"
        for kind in ("missing_keys", "unexpected_keys")
        if (keys := info.get(kind) or [])
    ]
    if info.get("mismatched_keys"):
        problems.append(f"shape mismatch: {mismatched_shapes_message(info['mismatched_keys'])}")
    if problems:
        raise OSError(
            f"weights in {where!s} do not match {model_name} ({'; '.join(problems)}). Refusing to load a "
            "partially random model."
        )


# Integer dtypes torch's embeddings and indexing read as ids; smaller ones would crash or index as a mask.
INDEX_DTYPES = (torch.int64, torch.int32)

# Keywords transformers' machinery (Trainer, pipelines, GenerationMixin) passes to any model's `forward`: accepted
# (and ignored where the model has no use for them). Any other unknown keyword is a caller's mistake.
COMMON_FORWARD_KWARGS = frozenset({"return_dict", "output_attentions", "output_hidden_states", "num_items_in_batch"})
# ... and what GenerationMixin passes to a causal LM at every step on top of the LM's own arguments.
GENERATION_FORWARD_KWARGS = COMMON_FORWARD_KWARGS | {"past_key_values", "cache_position", "logits_to_keep"}


def reject_unknown_kwargs(kwargs: dict, allowed: Collection[str], where: str) -> None:
    """Raise `TypeError` (as Python does for a misspelt argument) for keywords outside `allowed`."""
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise TypeError(f"{where}() got unexpected keyword argument(s) {', '.join(map(repr, unknown))}")


def check_labels(
    labels: torch.Tensor, *, num_classes: int, name: str = "labels", ignore_index: int = -100
) -> torch.Tensor:
    """Validate integer class/token targets: int64/int32, each in [0, num_classes) or `ignore_index`; as int64."""
    if (
        not isinstance(labels, torch.Tensor)
        or labels.is_floating_point()
        or labels.is_complex()
        or labels.dtype == torch.bool
    ):
        got = f"dtype {labels.dtype}" if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"{name} must be an integer tensor of class ids, got {got}")
    _check_index_dtype(labels, name)
    if labels.numel() == 0:
        return labels.long()
    # Ignored positions read as 0 (a valid id), so the check is one reduction without a boolean gather.
    lo, hi = value_range(labels.masked_fill(labels == ignore_index, 0))
    if lo < 0 or hi >= num_classes:
        lo, hi = value_range(labels[labels != ignore_index])
        raise ValueError(
            f"{name} must be class ids in [0, {num_classes - 1}] (or {ignore_index} to ignore), got "
            f"values in [{lo}, {hi}]"
        )
    return labels.long()


def value_range(x: torch.Tensor) -> tuple[int, int]:
    """`(min, max)` of a non-empty integer tensor with one reduction and one device-to-host copy (on an
    accelerator each `int(x.min())` would wait for the device separately)."""
    lo, hi = torch.stack(torch.aminmax(x)).tolist()
    return lo, hi


def check_has_data(x: torch.Tensor, name: str) -> None:
    """A tensor on the meta device has a shape but no values: refuse it before a check needs them."""
    if x.is_meta:
        raise ValueError(
            f"{name} is on the meta device (a shape without values); pass a tensor that holds data, "
            "e.g. on the model's device"
        )


def _check_index_dtype(ids: torch.Tensor, name: str) -> None:
    if ids.dtype not in INDEX_DTYPES:
        raise ValueError(f"{name} must be int64 (or int32) ids, got dtype {ids.dtype}; convert with `.long()`")


def _check_rank(x: torch.Tensor, name: str, ndim: int | Sequence[int] | None) -> None:
    if ndim is None:
        return
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if x.ndim not in allowed:
        raise ValueError(f"{name} must have {' or '.join(map(str, allowed))} dimensions, got shape {tuple(x.shape)}")
