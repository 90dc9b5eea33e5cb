"""What `BrainGenPreTrainedModel.from_pretrained` checks in the weight files before transformers loads them.

brain_gen_hf reads safetensors only. A pickled checkpoint (`pytorch_model.bin`) can run arbitrary code when it is
unpickled, so it is refused, and never opened. Every tensor is also read once: NaN/inf weights would load without
complaint and then make every output NaN, so they are refused with the tensor names. The files are located with
transformers' own resolution (local folder, Hub or cache, `subfolder`, `revision`, `variant`, sharded index), so the
checks see exactly the files transformers loads.
"""

from __future__ import annotations

import json
import os

import torch
from safetensors import SafetensorError, safe_open
from transformers.utils import (
    SAFE_WEIGHTS_INDEX_NAME,
    SAFE_WEIGHTS_NAME,
    WEIGHTS_INDEX_NAME,
    WEIGHTS_NAME,
    cached_file,
    has_file,
)

# from_pretrained keywords that locate files (passed on to `cached_file`)
_HUB_KWARGS = ("cache_dir", "force_download", "proxies", "local_files_only", "token", "revision", "subfolder")
# Loading options that read something other than safetensors
_NON_SAFETENSORS_OPTIONS = ("from_tf", "from_flax", "gguf_file")
_PICKLED_WEIGHT_NAMES = (WEIGHTS_NAME, WEIGHTS_INDEX_NAME)
_MAX_NAMES = 20


def refuse_non_safetensors_options(kwargs: dict) -> None:
    """Raise `ValueError` for options that would read pickled or foreign weights."""
    if kwargs.get("use_safetensors") is False:
        raise ValueError(
            "brain_gen_hf loads safetensors weights only: `use_safetensors=False` would unpickle a "
            "pytorch_model.bin, and unpickling can run arbitrary code. Drop the argument; to use a .bin you trust, "
            "convert it once with `safetensors.torch.save_file(torch.load(path, weights_only=True), "
            "'model.safetensors')`."
        )
    for option in _NON_SAFETENSORS_OPTIONS:
        if kwargs.get(option):
            raise ValueError(f"brain_gen_hf loads safetensors weights only; `{option}` is not supported")


def safetensors_weight_files(pretrained_model_name_or_path, kwargs: dict) -> list[str]:
    """Local paths of the safetensors file(s) `from_pretrained` will load (downloaded first if on the Hub).

    Raises `OSError` when there is no safetensors checkpoint (naming any pickled one found, which is not opened).
    """
    path = str(pretrained_model_name_or_path)
    if os.path.isfile(path):
        if not path.endswith(".safetensors"):
            raise OSError(f"{path} is not a .safetensors file; brain_gen_hf loads safetensors weights only")
        return [path]
    hub = hub_kwargs(kwargs)
    variant = kwargs.get("variant")
    single = _optional_file(path, _with_variant(SAFE_WEIGHTS_NAME, variant), hub)
    if single is not None:
        return [single]
    index = _optional_file(path, _with_variant(SAFE_WEIGHTS_INDEX_NAME, variant), hub)
    if index is None:
        raise OSError(_no_safetensors_message(path, variant, hub))
    try:
        with open(index, encoding="utf-8") as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise OSError(f"could not read the shard index {index} ({type(err).__name__}: {err})") from err
    files = [_optional_file(path, shard, hub) for shard in shards]
    missing = [shard for shard, file in zip(shards, files) if file is None]
    if missing:
        raise OSError(
            f"{path}: the shard index {os.path.basename(index)} lists {len(shards)} shards, but "
            f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing"
        )
    return files


def hub_kwargs(kwargs: dict) -> dict:
    """The `from_pretrained` keywords that locate files (local folder, Hub or cache)."""
    return {key: kwargs[key] for key in _HUB_KWARGS if kwargs.get(key) is not None}


def check_finite_weights(file: str) -> None:
    """Raise `OSError` naming the tensors of `file` that hold NaN or inf (each tensor is read once)."""
    try:
        with safe_open(file, framework="pt") as weights:
            names = weights.keys()
            bad = [name for name in names if not _is_finite(weights.get_tensor(name))]
    except SafetensorError as err:
        raise OSError(corrupt_weights_message(file, err)) from err
    if bad:
        names = ", ".join(bad[:_MAX_NAMES]) + (f", ... ({len(bad)} in all)" if len(bad) > _MAX_NAMES else "")
        raise OSError(
            f"{file} holds NaN/inf values in {len(bad)} tensor(s): {names}. A model loaded from it would output "
            "NaN; re-export the weights from a healthy checkpoint."
        )


def corrupt_weights_message(where, err: Exception) -> str:
    return (
        f"could not read the weights of {where!s}: the safetensors file is truncated or corrupted ({err}). "
        "Re-download or re-save the checkpoint."
    )


def mismatched_shapes_message(entries) -> str:
    """`key: checkpoint (a, b) vs model (c, d)` for transformers' `(key, checkpoint shape, model shape)` entries."""
    entries = sorted(entries, key=lambda entry: entry[0])
    text = "; ".join(
        f"{key}: checkpoint {tuple(saved)} vs model {tuple(expected)}" for key, saved, expected in entries[:_MAX_NAMES]
    )
    return text + (f"; ... ({len(entries)} in all)" if len(entries) > _MAX_NAMES else "")


def _is_finite(tensor: torch.Tensor) -> bool:
    if not tensor.is_floating_point():
        return True
    if tensor.element_size() == 1:  # float8: isfinite is not implemented for every such dtype
        tensor = tensor.float()
    return bool(torch.isfinite(tensor).all())


def _with_variant(filename: str, variant: str | None) -> str:
    if not variant:
        return filename
    stem, dot, extension = filename.partition(".")
    return f"{stem}.{variant}{dot}{extension}"


def _optional_file(path: str, filename: str, hub: dict) -> str | None:
    # Missing entries give None; a missing repo or revision, or no connection, still raise transformers' OSError.
    return cached_file(path, filename, _raise_exceptions_for_missing_entries=False, **hub)


def _no_safetensors_message(path: str, variant: str | None, hub: dict) -> str:
    wanted = f"{_with_variant(SAFE_WEIGHTS_NAME, variant)} or {_with_variant(SAFE_WEIGHTS_INDEX_NAME, variant)}"
    pickled = [name for name in _PICKLED_WEIGHT_NAMES if _has_file(path, _with_variant(name, variant), hub)]
    if pickled:
        return (
            f"{path} has only pickled PyTorch weights ({', '.join(pickled)}), no {wanted}. brain_gen_hf loads "
            "safetensors weights only and never unpickles a checkpoint (unpickling can run arbitrary code). If "
            "you trust the file, convert it once with "
            "`safetensors.torch.save_file(torch.load(path, weights_only=True), 'model.safetensors')`."
        )
    return f"{path} has no {wanted}: there are no weights to load (brain_gen_hf loads safetensors weights only)."


def _has_file(path: str, filename: str, hub: dict) -> bool:
    """Whether `filename` exists, without downloading it (only to word the error message)."""
    subfolder = hub.get("subfolder") or ""
    try:
        return has_file(
            path,
            f"{subfolder}/{filename}" if subfolder else filename,
            revision=hub.get("revision"),
            proxies=hub.get("proxies"),
            token=hub.get("token"),
            local_files_only=bool(hub.get("local_files_only")),
            cache_dir=hub.get("cache_dir"),
        )
    except OSError:  # the Hub refuses (e.g. a gated repo): the message then names no pickled file
        return False
