"""`BrainGenPreTrainedModel`: init rules, strict loading and input checks shared by every family."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors import SafetensorError
from torch import nn
from transformers import PreTrainedModel

from .configuration_utils import BrainGenConfig


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

    * Initialisation: a module that sets `_skip_reinit = True` (codebooks, learned latents, sensor
      embeddings) is never re-initialised by `post_init`/`from_pretrained`; a module with
      `reset_brain_gen_parameters()` uses it; everything else keeps PyTorch's default init (what the
      reference uses). Families with their own rules override `_init_module`.
    * Loading is strict: missing, unexpected or shape-mismatched keys raise with the key list, and a
      truncated or corrupted safetensors file raises `OSError` naming the file.
    * Saving writes safetensors only.
    """

    config_class = BrainGenConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = False
    _supports_sdpa = True
    # Weight files must be safetensors; pickled `.bin` checkpoints are never read.
    _keys_to_ignore_on_load_unexpected = None

    # ------------------------------------------------------------------ init
    def _init_weights(self, module: nn.Module) -> None:
        if getattr(module, "_skip_reinit", False):
            return
        self._init_module(module)

    def _init_module(self, module: nn.Module) -> None:
        reset = getattr(module, "reset_brain_gen_parameters", None)
        if reset is not None:
            reset()
        elif isinstance(module, (nn.Linear, nn.Embedding, nn.modules.conv._ConvNd, nn.LayerNorm, nn.GroupNorm,
                                 nn.RMSNorm, nn.LSTM)):
            module.reset_parameters()

    # ------------------------------------------------------------- loading
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """`PreTrainedModel.from_pretrained`, but strict (see class docstring) and safetensors-only."""
        want_info = kwargs.pop("output_loading_info", False)
        kwargs.setdefault("use_safetensors", True)
        try:
            model, info = super().from_pretrained(
                pretrained_model_name_or_path, *model_args, output_loading_info=True, **kwargs
            )
        except SafetensorError as err:
            raise OSError(
                f"could not read the weights of {pretrained_model_name_or_path!s}: the safetensors file is "
                f"truncated or corrupted ({err}). Re-download or re-save the checkpoint."
            ) from err
        problems = {k: sorted(info.get(k) or []) for k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
        if any(problems.values()):
            details = "; ".join(f"{k}: {v[:20]}{' ...' if len(v) > 20 else ''}" for k, v in problems.items() if v)
            raise OSError(
                f"weights in {pretrained_model_name_or_path!s} do not match {cls.__name__} "
                f"({details}). Refusing to load a partially random model."
            )
        return (model, info) if want_info else model

    def save_pretrained(self, save_directory: str | os.PathLike, *args, remote_code: bool = False,
                        model_card: bool | dict = True, **kwargs):
        """`PreTrainedModel.save_pretrained` plus a model card and, optionally, self-contained remote code.

        model_card: write `README.md` from the family template (never overwrites an existing card); a dict
            passes fields such as `training_data`, `metrics`, `datasets`, `repo_id` to the card.
        remote_code: also write `configuration_*.py`/`modeling_*.py` and an `auto_map`, so the folder loads
            with `trust_remote_code=True` where brain_gen_hf is not installed.
        """
        if kwargs.get("safe_serialization") is False:
            raise ValueError("brain_gen_hf saves weights as safetensors only (safe_serialization=False refused)")
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

    def push_to_hub(self, repo_id: str, *, remote_code: bool = False, commit_message: str | None = None,
                    private: bool | None = None, token: str | bool | None = None, revision: str | None = None,
                    create_pr: bool = False, model_card: dict | None = None, **save_kwargs) -> str:
        """Save weights, config and a model card (and remote code if asked) and upload them in one commit.

        One commit means a failed upload leaves the repository as it was; retrying is safe.
        """
        from huggingface_hub import HfApi

        api = HfApi(token=token)
        repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
        with tempfile.TemporaryDirectory() as tmp:
            card = {"repo_id": repo_id, **(model_card or {})}
            self.save_pretrained(tmp, remote_code=remote_code, model_card=card, **save_kwargs)
            info = api.upload_folder(repo_id=repo_id, folder_path=tmp, revision=revision, create_pr=create_pr,
                                     commit_message=commit_message or f"Upload {type(self).__name__}")
        return info

    # -------------------------------------------------------- input checks
    def check_signal(self, x: torch.Tensor, *, name: str = "input", ndim: int | Sequence[int] | None = None,
                     num_channels: int | None = None, channel_dim: int = 1) -> torch.Tensor:
        """Validate a continuous signal tensor: type, float dtype, rank, non-empty, channel count, finite."""
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise ValueError(f"{name} must be a floating-point signal tensor, got dtype {x.dtype}")
        _check_rank(x, name, ndim)
        if x.numel() == 0:
            raise ValueError(f"{name} is empty (shape {tuple(x.shape)})")
        if num_channels is not None and x.shape[channel_dim] != num_channels:
            raise ValueError(f"{name} has {x.shape[channel_dim]} channels (dim {channel_dim} of shape "
                             f"{tuple(x.shape)}), the model expects {num_channels}")
        if not torch.isfinite(x).all():
            bad = (~torch.isfinite(x)).sum().item()
            raise ValueError(f"{name} contains {bad} NaN/inf values; clean or interpolate the signal first")
        return x

    def check_tokens(self, ids: torch.Tensor, *, vocab_size: int, name: str = "input_ids",
                     ndim: int | Sequence[int] | None = None, num_channels: int | None = None,
                     channel_dim: int = 1) -> torch.Tensor:
        """Validate integer token ids: integer dtype, rank, non-empty, channel count, range [0, vocab)."""
        if not isinstance(ids, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor of token ids, got {type(ids).__name__}")
        if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
            raise ValueError(f"{name} must hold integer token ids, got dtype {ids.dtype}; quantise the signal "
                             "first (e.g. brain_gen_hf.tokenizers.mulaw_encode)")
        _check_rank(ids, name, ndim)
        if ids.numel() == 0:
            raise ValueError(f"{name} is empty (shape {tuple(ids.shape)})")
        if num_channels is not None and ids.shape[channel_dim] != num_channels:
            raise ValueError(f"{name} has {ids.shape[channel_dim]} channels (dim {channel_dim} of shape "
                             f"{tuple(ids.shape)}), the model expects {num_channels}")
        lo, hi = int(ids.min()), int(ids.max())
        if lo < 0 or hi >= vocab_size:
            raise ValueError(f"{name} has ids in [{lo}, {hi}], outside the vocabulary [0, {vocab_size - 1}]")
        return ids


def _check_rank(x: torch.Tensor, name: str, ndim: int | Sequence[int] | None) -> None:
    if ndim is None:
        return
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if x.ndim not in allowed:
        raise ValueError(f"{name} must have {' or '.join(map(str, allowed))} dimensions, got shape {tuple(x.shape)}")
