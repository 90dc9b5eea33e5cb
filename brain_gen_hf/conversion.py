"""Convert brain-gen (reference) checkpoints into brain_gen_hf models.

People holding brain-gen checkpoints need three things: the reference model name (`model_name` in
its YAML), the reference constructor kwargs (the model YAML) and the reference state dict. Then::

    from brain_gen_hf.conversion import convert_reference_checkpoint, load_reference_state_dict
    state = load_reference_state_dict("last.ckpt")          # Lightning .ckpt or .safetensors
    model = convert_reference_checkpoint("WavenetFullChannel", yaml_kwargs, state)
    model.save_pretrained("my-wavenet")                     # now AutoModel.from_pretrained works

Each family provides `config_from_reference(kwargs)` and `state_dict_from_reference(state, config)`;
the table below maps reference names to those converters (imported lazily).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping

# reference model name -> module holding `config_from_reference` / `state_dict_from_reference`
REFERENCE_CONVERTERS: dict[str, str] = {
    "WavenetFullChannel": "brain_gen_hf.models.wavenet.convert_wavenet",
    "Wavenet3D": "brain_gen_hf.models.wavenet.convert_wavenet",
    "FlatGPT": "brain_gen_hf.models.flatgpt.convert_flatgpt",
    "FlatGPTEmbeds": "brain_gen_hf.models.flatgpt.convert_flatgpt",
    "FlatGPTMix": "brain_gen_hf.models.flatgpt.convert_flatgpt",
    "FlatGPTRVQ": "brain_gen_hf.models.flatgpt.convert_flatgpt_rvq",
    "FlatGPTMixRVQ": "brain_gen_hf.models.flatgpt.convert_flatgpt_rvq",
    "FlatGPTEmbedsRVQ": "brain_gen_hf.models.flatgpt.convert_flatgpt_rvq",
    "TASA3D": "brain_gen_hf.models.tasa3d.convert_tasa3d",
    "STGPT2MEG": "brain_gen_hf.models.stgpt2meg.convert_stgpt2meg",
    "BENDRForecast": "brain_gen_hf.models.bendr.convert_bendr",
    "ClassifierContinuous": "brain_gen_hf.models.classifier.convert_classifier",
    "ClassifierQuantized": "brain_gen_hf.models.classifier.convert_classifier",
    "ClassifierQuantizedImage": "brain_gen_hf.models.classifier.convert_classifier",
    "BrainOmniCausalTokenizer": "brain_gen_hf.models.brainomni.convert_brainomni",
    "BrainOmniCausalTokenizerSEANetChannelMix": "brain_gen_hf.models.braintokmix.convert_braintokmix",
    "BrainOmniCausalForecast": "brain_gen_hf.models.brainomni_forecast.convert_brainomni_forecast",
    "NTD": "brain_gen_hf.models.ntd.convert_ntd",
    "Vidtok": "brain_gen_hf.models.vidtok.convert_vidtok",
    "VidtokRVQ": "brain_gen_hf.models.vidtok.convert_vidtok",
}


def _converter(reference_name: str):
    module = REFERENCE_CONVERTERS.get(reference_name)
    if module is None:
        raise ValueError(f"no converter for reference model {reference_name!r}; known: {sorted(REFERENCE_CONVERTERS)}")
    return importlib.import_module(module)


def _mapping(name: str, value) -> dict:
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} must be a mapping (a dict), got {type(value).__name__}")  # noqa: TRY004
    return dict(value)


def config_from_reference(reference_name: str, reference_kwargs: Mapping, **overrides):
    """The brain_gen_hf config equivalent to a reference constructor call."""
    return _converter(reference_name).config_from_reference(
        reference_name, _mapping("reference_kwargs", reference_kwargs), **overrides
    )


def _check_converted_weights(reference_name: str, model, converted: dict) -> None:
    """Non-tensors, wrong shapes and NaN/inf weights would fail in `load_state_dict` with a raw error, or load."""
    import torch

    from .weights_loading import mismatched_shapes_message

    expected = model.state_dict()
    not_tensors = sorted(k for k, v in converted.items() if not isinstance(v, torch.Tensor))
    if not_tensors:
        raise ValueError(f"reference {reference_name} state dict holds values that are not tensors: {not_tensors[:20]}")
    mismatched = [
        (k, v.shape, expected[k].shape) for k, v in converted.items() if k in expected and v.shape != expected[k].shape
    ]
    if mismatched:
        raise ValueError(
            f"reference {reference_name} weights do not fit {type(model).__name__} (shape mismatch: "
            f"{mismatched_shapes_message(mismatched)}); check the reference kwargs"
        )
    non_finite = sorted(
        k for k, v in converted.items() if k in expected and v.is_floating_point() and not bool(torch.isfinite(v).all())
    )
    if non_finite:
        raise ValueError(
            f"reference {reference_name} weights hold NaN/inf values in {len(non_finite)} tensor(s): "
            f"{non_finite[:20]}; a model converted from them would output NaN"
        )


def convert_reference_checkpoint(reference_name: str, reference_kwargs: Mapping, state_dict: Mapping, **overrides):
    """Build the brain_gen_hf model for a reference checkpoint and load its weights strictly."""
    import torch
    from transformers import AutoModel

    import brain_gen_hf  # noqa: F401  (Auto registration)

    converter = _converter(reference_name)
    config = converter.config_from_reference(
        reference_name, _mapping("reference_kwargs", reference_kwargs), **overrides
    )
    model = AutoModel.from_config(config)
    converted = converter.state_dict_from_reference(reference_name, _mapping("state_dict", state_dict), config)
    _check_converted_weights(reference_name, model, converted)
    with torch.no_grad():
        result = model.load_state_dict(converted, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(
            f"reference {reference_name} weights do not fit {type(model).__name__}: "
            f"missing {sorted(result.missing_keys)[:20]}, unexpected {sorted(result.unexpected_keys)[:20]}"
        )
    return model.eval()


def load_reference_state_dict(path: str | os.PathLike) -> dict:
    """Read reference weights from `.safetensors` or a Lightning `.ckpt` (tensors only, no pickled code).

    Lightning prefixes keys with `model.` and torch.compile with `_orig_mod.`; both are removed.
    """
    import torch

    path = os.fspath(path)
    if path.endswith(".safetensors"):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        from .weights_loading import corrupt_weights_message

        try:
            state = load_file(path)
        except SafetensorError as err:
            raise OSError(corrupt_weights_message(path, err)) from err
    else:
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # weights_only refuses arbitrary pickled objects
            raise OSError(f"could not read {path} as a tensors-only checkpoint: {err}") from err
        state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, Mapping) else checkpoint
        if not isinstance(state, Mapping):
            raise OSError(
                f"{path} holds a {type(state).__name__}, not a state dict (a mapping of names to tensors, "
                "or a Lightning checkpoint with a `state_dict`)"
            )
    cleaned = {}
    for key, value in state.items():
        for prefix in ("model.", "_orig_mod."):
            if key.startswith(prefix):
                key = key[len(prefix) :]
        cleaned[key.replace("._orig_mod.", ".")] = value
    return cleaned
