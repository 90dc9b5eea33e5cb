"""The one registration table: model_type -> config / model / tokenizer classes.

Every class is registered through transformers' public API (`AutoConfig.register`, `AutoModel*.register`,
`AutoTokenizer.register`), which takes real classes. `import brain_gen_hf` must stay cheap (transformers' auto
modules pull in torch, seconds), so each registration waits until both sides exist: when transformers imports
the Auto module that serves it, the brain_gen_hf modules are imported and registered (about 0.3 s for every
family, once torch is loaded); if a brain_gen_hf module is half imported at that moment (it imported the Auto
module itself), registration waits until it is done. A meta-path finder only observes when those modules finish
executing; it never reads or writes transformers' objects.

Every family adds its rows to `MODELS` / `TOKENIZERS`; nothing else needs to change.
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ModelEntry:
    """One model type: where its config and model classes live and which Auto classes serve it."""

    model_type: str
    config_module: str
    config_class: str
    model_module: str
    model_class: str
    auto_classes: tuple[str, ...] = ("AutoModel",)


@dataclass(frozen=True)
class TokenizerEntry:
    """A tokenizer class, found by AutoTokenizer under the name a `tokenizer_config.json` gives it.

    `model_types`: configs whose folders load it when no tokenizer class is named anywhere (their default).
    """

    module: str
    tokenizer_class: str
    model_types: tuple[str, ...] = ()


_W = "brain_gen_hf.models.wavenet"
_CLS = "brain_gen_hf.models.classifier"
_CLS_AUTO = ("AutoModel", "AutoModelForSequenceClassification")

_FG = "brain_gen_hf.models.flatgpt"
_LM_AUTO = ("AutoModel", "AutoModelForCausalLM")
_VT = "brain_gen_hf.models.vidtok"

MODELS: tuple[ModelEntry, ...] = (
    ModelEntry(
        "wavenet_full_channel",
        f"{_W}.configuration_wavenet",
        "WavenetFullChannelConfig",
        f"{_W}.modeling_wavenet",
        "WavenetFullChannelModel",
    ),
    ModelEntry(
        "wavenet3d", f"{_W}.configuration_wavenet", "Wavenet3DConfig", f"{_W}.modeling_wavenet", "Wavenet3DModel"
    ),
    ModelEntry(
        "tasa3d",
        "brain_gen_hf.models.tasa3d.configuration_tasa3d",
        "TASA3DConfig",
        "brain_gen_hf.models.tasa3d.modeling_tasa3d",
        "TASA3DModel",
    ),
    ModelEntry(
        "factorized_autoencoder",
        "brain_gen_hf.models.factorized_autoencoder.configuration_factorized_autoencoder",
        "FactorizedAutoencoderConfig",
        "brain_gen_hf.models.factorized_autoencoder.modeling_factorized_autoencoder",
        "FactorizedAutoencoderModel",
    ),
    ModelEntry(
        "bendr_forecast",
        "brain_gen_hf.models.bendr.configuration_bendr",
        "BENDRForecastConfig",
        "brain_gen_hf.models.bendr.modeling_bendr",
        "BENDRForecastModel",
    ),
    ModelEntry(
        "classifier_continuous",
        f"{_CLS}.configuration_classifier",
        "ClassifierContinuousConfig",
        f"{_CLS}.modeling_classifier",
        "ClassifierContinuousModel",
        auto_classes=_CLS_AUTO,
    ),
    ModelEntry(
        "classifier_quantized",
        f"{_CLS}.configuration_classifier",
        "ClassifierQuantizedConfig",
        f"{_CLS}.modeling_classifier",
        "ClassifierQuantizedModel",
        auto_classes=_CLS_AUTO,
    ),
    ModelEntry(
        "classifier_quantized_image",
        f"{_CLS}.configuration_classifier",
        "ClassifierQuantizedImageConfig",
        f"{_CLS}.modeling_classifier",
        "ClassifierQuantizedImageModel",
        auto_classes=_CLS_AUTO,
    ),
    ModelEntry(
        "brainomni_causal_tokenizer",
        "brain_gen_hf.models.brainomni.configuration_brainomni",
        "BrainOmniCausalTokenizerConfig",
        "brain_gen_hf.models.brainomni.modeling_brainomni",
        "BrainOmniCausalTokenizerModel",
    ),
    ModelEntry(
        "braintokmix",
        "brain_gen_hf.models.braintokmix.configuration_braintokmix",
        "BrainTokMixConfig",
        "brain_gen_hf.models.braintokmix.modeling_braintokmix",
        "BrainTokMixModel",
    ),
    ModelEntry(
        "brainomni_causal_forecast",
        "brain_gen_hf.models.brainomni_forecast.configuration_brainomni_forecast",
        "BrainOmniCausalForecastConfig",
        "brain_gen_hf.models.brainomni_forecast.modeling_brainomni_forecast",
        "BrainOmniCausalForecastModel",
    ),
    ModelEntry(
        "ntd",
        "brain_gen_hf.models.ntd.configuration_ntd",
        "NTDConfig",
        "brain_gen_hf.models.ntd.modeling_ntd",
        "NTDModel",
    ),
    ModelEntry(
        "flatgpt",
        f"{_FG}.configuration_flatgpt",
        "FlatGPTConfig",
        f"{_FG}.modeling_flatgpt",
        "FlatGPTForCausalLM",
        _LM_AUTO,
    ),
    ModelEntry(
        "flatgpt_embeds",
        f"{_FG}.configuration_flatgpt",
        "FlatGPTEmbedsConfig",
        f"{_FG}.modeling_flatgpt",
        "FlatGPTEmbedsForCausalLM",
        _LM_AUTO,
    ),
    ModelEntry(
        "flatgpt_mix",
        f"{_FG}.configuration_flatgpt",
        "FlatGPTMixConfig",
        f"{_FG}.modeling_flatgpt",
        "FlatGPTMixForCausalLM",
        _LM_AUTO,
    ),
    ModelEntry(
        "flatgpt_text",
        f"{_FG}.configuration_flatgpt_text",
        "FlatGPTTextConfig",
        f"{_FG}.modeling_flatgpt_text",
        "FlatGPTTextForCausalLM",
        _LM_AUTO,
    ),
    ModelEntry(
        "flatgpt_rvq",
        f"{_FG}.configuration_flatgpt_rvq",
        "FlatGPTRVQConfig",
        f"{_FG}.modeling_flatgpt_rvq",
        "FlatGPTRVQForCausalLM",
        _LM_AUTO,
    ),
    ModelEntry(
        "flatgpt_mix_rvq",
        f"{_FG}.configuration_flatgpt_rvq",
        "FlatGPTMixRVQConfig",
        f"{_FG}.modeling_flatgpt_rvq",
        "FlatGPTMixRVQForCausalLM",
        _LM_AUTO,
    ),
    ModelEntry(
        "flatgpt_embeds_rvq",
        f"{_FG}.configuration_flatgpt_rvq",
        "FlatGPTEmbedsRVQConfig",
        f"{_FG}.modeling_flatgpt_rvq",
        "FlatGPTEmbedsRVQForCausalLM",
        _LM_AUTO,
    ),
    ModelEntry(
        "stgpt2meg",
        "brain_gen_hf.models.stgpt2meg.configuration_stgpt2meg",
        "STGPT2MEGConfig",
        "brain_gen_hf.models.stgpt2meg.modeling_stgpt2meg",
        "STGPT2MEGForCausalLM",
        _LM_AUTO,
    ),
    ModelEntry("vidtok", f"{_VT}.configuration_vidtok", "VidtokConfig", f"{_VT}.modeling_vidtok", "VidtokModel"),
    ModelEntry(
        "vidtok_rvq", f"{_VT}.configuration_vidtok", "VidtokRVQConfig", f"{_VT}.modeling_vidtok", "VidtokRVQModel"
    ),
)

_TOK = "brain_gen_hf.tokenizers"
TOKENIZERS: tuple[TokenizerEntry, ...] = (
    TokenizerEntry(f"{_TOK}.tokenization_amplitude", "AmplitudeTokenizer", ("flatgpt", "flatgpt_embeds")),
    TokenizerEntry(f"{_TOK}.tokenization_amplitude", "AmplitudeMixTokenizer", ("flatgpt_mix",)),
    TokenizerEntry(f"{_TOK}.tokenization_delimited", "DelimitedTokenizer"),
    TokenizerEntry(f"{_TOK}.tokenization_bpe", "BPETokenizer"),
    # RVQ LMs tokenize with the brain tokenizer inside them: AutoTokenizer on their folders names it.
    TokenizerEntry(
        f"{_FG}.tokenization_flatgpt_rvq",
        "NestedBrainTokenizer",
        ("flatgpt_rvq", "flatgpt_mix_rvq", "flatgpt_embeds_rvq"),
    ),
)


def public_names() -> dict[str, str]:
    """Public class name -> module, for `brain_gen_hf.__getattr__`."""
    names: dict[str, str] = {}
    for entry in MODELS:
        names[entry.config_class] = entry.config_module
        names[entry.model_class] = entry.model_module
    for tok in TOKENIZERS:
        names[tok.tokenizer_class] = tok.module
    return names


def model_entry(model_type: str) -> ModelEntry:
    """The `MODELS` row of `model_type` (ValueError naming the known types otherwise)."""
    for entry in MODELS:
        if entry.model_type == model_type:
            return entry
    raise ValueError(f"unknown brain_gen_hf model_type {model_type!r}; known: {sorted(e.model_type for e in MODELS)}")


def config_class_for(model_type: str):
    """The brain_gen_hf config class registered for `model_type` (imports it)."""
    entry = model_entry(model_type)
    return _load(entry.config_module, entry.config_class)


def model_class_for(model_type: str):
    """The brain_gen_hf model class registered for `model_type` (imports it)."""
    entry = model_entry(model_type)
    return _load(entry.model_module, entry.model_class)


def _load(module: str, name: str):
    return getattr(importlib.import_module(module), name)


# --------------------------------------------------------------------------------------------
# Registration with the Auto classes, once transformers' side and ours are both imported
# --------------------------------------------------------------------------------------------

_CONFIG_AUTO = "transformers.models.auto.configuration_auto"
_MODEL_AUTO = "transformers.models.auto.modeling_auto"
_TOKENIZER_AUTO = "transformers.models.auto.tokenization_auto"


@dataclass(frozen=True)
class _Registration:
    """One `register` call (it imports our classes), run once transformers has imported `auto_module`."""

    auto_module: str
    register: Callable[[], None]


def _register_config(entry: ModelEntry) -> None:
    from transformers import AutoConfig

    AutoConfig.register(entry.model_type, _load(entry.config_module, entry.config_class))


def _register_model(entry: ModelEntry) -> None:
    import transformers

    config_class, model_class = config_class_for(entry.model_type), model_class_for(entry.model_type)
    for auto_name in entry.auto_classes:
        getattr(transformers, auto_name).register(config_class, model_class)


def _register_tokenizer(tok: TokenizerEntry) -> None:
    from transformers import AutoTokenizer

    from .configuration_utils import BrainGenConfig

    tokenizer_class = _load(tok.module, tok.tokenizer_class)
    # `register` keys a tokenizer by a config class; the name lookup (what a saved tokenizer_config.json uses) is
    # what matters. A tokenizer no family defaults to is keyed by the base config, which no folder ever holds.
    keys = [config_class_for(t) for t in tok.model_types] or [BrainGenConfig]
    for config_class in keys:
        AutoTokenizer.register(config_class, tokenizer_class=tokenizer_class, exist_ok=True)


def _registrations() -> list[_Registration]:
    found = []
    for entry in MODELS:
        found.append(_Registration(_CONFIG_AUTO, lambda e=entry: _register_config(e)))
        found.append(_Registration(_MODEL_AUTO, lambda e=entry: _register_model(e)))
    for tok in TOKENIZERS:
        found.append(_Registration(_TOKENIZER_AUTO, lambda t=tok: _register_tokenizer(t)))
    return found


_pending: list[_Registration] = []
_auto_modules_imported: set[str] = set()
_importing = 0  # brain_gen_hf modules whose code is running right now (imports nest)
_registering = False


def _register_ready() -> None:
    """Run every pending registration whose Auto module transformers has imported.

    Only while no brain_gen_hf module is half imported: registering imports our modules, and one of them may be
    the module (or import the module) that is still running. The outermost one calls this again when it is done.
    """
    global _registering
    if _importing or _registering:
        return
    _registering = True
    try:
        while ready := [r for r in _pending if r.auto_module in _auto_modules_imported]:
            for registration in ready:
                _pending.remove(registration)
                try:
                    registration.register()
                except BaseException:
                    _pending.append(registration)
                    raise
    finally:
        _registering = False


class _ImportObserver(importlib.abc.MetaPathFinder):
    """Tells `_register_ready` when transformers' Auto modules and brain_gen_hf's modules finish executing."""

    def find_spec(self, fullname, path=None, target=None):
        is_auto = fullname in (_CONFIG_AUTO, _MODEL_AUTO, _TOKENIZER_AUTO)
        # A transformers module that imports an Auto module (e.g. `modeling_layers`) also counts as half imported:
        # registering then would import our model files, which import names from that module before it has them.
        if not (is_auto or fullname.startswith(("transformers.", __package__ + "."))):
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader.exec_module = _observed(spec.loader.exec_module, fullname if is_auto else None)
                return spec
        return None


def _observed(exec_module, auto_module: str | None):
    def exec_and_register(module):
        global _importing
        _importing += auto_module is None
        try:
            exec_module(module)
        finally:
            _importing -= auto_module is None
        if auto_module is not None:
            _auto_modules_imported.add(auto_module)
        _register_ready()

    return exec_and_register


_observer = _ImportObserver()


def register_all() -> None:
    """Register every brain_gen_hf class with the Auto classes, now or as soon as transformers imports them."""
    if _observer in sys.meta_path:
        return
    _pending.extend(_registrations())
    _auto_modules_imported.update(m for m in (_CONFIG_AUTO, _MODEL_AUTO, _TOKENIZER_AUTO) if m in sys.modules)
    sys.meta_path.insert(0, _observer)
    _register_ready()
