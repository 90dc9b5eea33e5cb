"""The one registration table: model_type -> config / model / tokenizer classes.

`import brain_gen_hf` must stay cheap: importing `transformers.AutoConfig` alone pulls in torch
(seconds). So registration is deferred: it runs when transformers' auto modules are imported
(post-import hook), and the model/tokenizer classes are stored as lazy references that are only
imported when an Auto class actually resolves them.

Every family adds its rows to `MODELS` / `TOKENIZERS`; nothing else needs to change.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
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
    """A tokenizer class; `model_types` are configs whose folders load it through AutoTokenizer."""

    module: str
    tokenizer_class: str
    model_types: tuple[str, ...] = ()


_W = "brain_gen_hf.models.wavenet"
_CLS = "brain_gen_hf.models.classifier"
_CLS_AUTO = ("AutoModel", "AutoModelForSequenceClassification")

_FG = "brain_gen_hf.models.flatgpt"
_LM_AUTO = ("AutoModel", "AutoModelForCausalLM")

MODELS: tuple[ModelEntry, ...] = (
    ModelEntry("wavenet_full_channel", f"{_W}.configuration_wavenet", "WavenetFullChannelConfig",
               f"{_W}.modeling_wavenet", "WavenetFullChannelModel"),
    ModelEntry("wavenet3d", f"{_W}.configuration_wavenet", "Wavenet3DConfig",
               f"{_W}.modeling_wavenet", "Wavenet3DModel"),
    ModelEntry("tasa3d", "brain_gen_hf.models.tasa3d.configuration_tasa3d", "TASA3DConfig",
               "brain_gen_hf.models.tasa3d.modeling_tasa3d", "TASA3DModel"),
    ModelEntry("bendr_forecast", "brain_gen_hf.models.bendr.configuration_bendr", "BENDRForecastConfig",
               "brain_gen_hf.models.bendr.modeling_bendr", "BENDRForecastModel"),
    ModelEntry("classifier_continuous", f"{_CLS}.configuration_classifier", "ClassifierContinuousConfig",
               f"{_CLS}.modeling_classifier", "ClassifierContinuousModel", auto_classes=_CLS_AUTO),
    ModelEntry("classifier_quantized", f"{_CLS}.configuration_classifier", "ClassifierQuantizedConfig",
               f"{_CLS}.modeling_classifier", "ClassifierQuantizedModel", auto_classes=_CLS_AUTO),
    ModelEntry("classifier_quantized_image", f"{_CLS}.configuration_classifier", "ClassifierQuantizedImageConfig",
               f"{_CLS}.modeling_classifier", "ClassifierQuantizedImageModel", auto_classes=_CLS_AUTO),
    ModelEntry("brainomni_causal_tokenizer", "brain_gen_hf.models.brainomni.configuration_brainomni",
               "BrainOmniCausalTokenizerConfig", "brain_gen_hf.models.brainomni.modeling_brainomni",
               "BrainOmniCausalTokenizerModel"),
    ModelEntry("braintokmix", "brain_gen_hf.models.braintokmix.configuration_braintokmix", "BrainTokMixConfig",
               "brain_gen_hf.models.braintokmix.modeling_braintokmix", "BrainTokMixModel"),
    ModelEntry("brainomni_causal_forecast", "brain_gen_hf.models.brainomni_forecast.configuration_brainomni_forecast",
               "BrainOmniCausalForecastConfig", "brain_gen_hf.models.brainomni_forecast.modeling_brainomni_forecast",
               "BrainOmniCausalForecastModel"),
    ModelEntry("flatgpt", f"{_FG}.configuration_flatgpt", "FlatGPTConfig", f"{_FG}.modeling_flatgpt",
               "FlatGPTForCausalLM", _LM_AUTO),
    ModelEntry("flatgpt_embeds", f"{_FG}.configuration_flatgpt", "FlatGPTEmbedsConfig", f"{_FG}.modeling_flatgpt",
               "FlatGPTEmbedsForCausalLM", _LM_AUTO),
    ModelEntry("flatgpt_mix", f"{_FG}.configuration_flatgpt", "FlatGPTMixConfig", f"{_FG}.modeling_flatgpt",
               "FlatGPTMixForCausalLM", _LM_AUTO),
    ModelEntry("flatgpt_rvq", f"{_FG}.configuration_flatgpt_rvq", "FlatGPTRVQConfig", f"{_FG}.modeling_flatgpt_rvq",
               "FlatGPTRVQForCausalLM", _LM_AUTO),
    ModelEntry("flatgpt_mix_rvq", f"{_FG}.configuration_flatgpt_rvq", "FlatGPTMixRVQConfig",
               f"{_FG}.modeling_flatgpt_rvq", "FlatGPTMixRVQForCausalLM", _LM_AUTO),
    ModelEntry("flatgpt_embeds_rvq", f"{_FG}.configuration_flatgpt_rvq", "FlatGPTEmbedsRVQConfig",
               f"{_FG}.modeling_flatgpt_rvq", "FlatGPTEmbedsRVQForCausalLM", _LM_AUTO),
)

_TOK = "brain_gen_hf.tokenizers"
TOKENIZERS: tuple[TokenizerEntry, ...] = (
    TokenizerEntry(f"{_TOK}.tokenization_amplitude", "AmplitudeTokenizer"),
    TokenizerEntry(f"{_TOK}.tokenization_amplitude", "AmplitudeMixTokenizer"),
    TokenizerEntry(f"{_TOK}.tokenization_delimited", "DelimitedTokenizer"),
    TokenizerEntry(f"{_TOK}.tokenization_bpe", "BPETokenizer"),
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


def config_class_for(model_type: str):
    """The brain_gen_hf config class registered for `model_type` (imports it)."""
    for entry in MODELS:
        if entry.model_type == model_type:
            return getattr(importlib.import_module(entry.config_module), entry.config_class)
    raise ValueError(f"unknown brain_gen_hf model_type {model_type!r}; known: {sorted(e.model_type for e in MODELS)}")


def model_class_for(model_type: str):
    """The brain_gen_hf model class registered for `model_type` (imports it)."""
    for entry in MODELS:
        if entry.model_type == model_type:
            return getattr(importlib.import_module(entry.model_module), entry.model_class)
    raise ValueError(f"unknown brain_gen_hf model_type {model_type!r}; known: {sorted(e.model_type for e in MODELS)}")


# --------------------------------------------------------------------------------------------
# Lazy resolution inside transformers' auto mappings
# --------------------------------------------------------------------------------------------


class _LazyClass:
    """A `module:attr` reference that an Auto mapping resolves on first use."""

    __slots__ = ("module", "name")

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    @property
    def __name__(self) -> str:  # transformers matches some entries by `__name__`
        return self.name

    def resolve(self):
        return getattr(importlib.import_module(self.module), self.name)


class _ResolvingDict(dict):
    """A dict whose `_LazyClass` values are imported (and cached) when read."""

    def __getitem__(self, key):
        value = super().__getitem__(key)
        if isinstance(value, _LazyClass):
            value = value.resolve()
            super().__setitem__(key, value)
        return value

    def get(self, key, default=None):
        return self[key] if key in self else default

    def values(self):
        return [self[k] for k in self]

    def items(self):
        return [(k, self[k]) for k in self]


def _make_resolving(owner, attr: str) -> _ResolvingDict:
    current = getattr(owner, attr)
    if not isinstance(current, _ResolvingDict):
        current = _ResolvingDict(current)
        setattr(owner, attr, current)
    return current


def _config_class(entry: ModelEntry):
    return getattr(importlib.import_module(entry.config_module), entry.config_class)


def _register_configs(configuration_auto) -> None:
    extra = _make_resolving(configuration_auto.CONFIG_MAPPING, "_extra_content")
    for entry in MODELS:
        extra.setdefault(entry.model_type, _LazyClass(entry.config_module, entry.config_class))


def _register_models(modeling_auto) -> None:
    for entry in MODELS:
        config_class = _config_class(entry)
        for auto_name in entry.auto_classes:
            mapping = getattr(modeling_auto, auto_name)._model_mapping
            extra = _make_resolving(mapping, "_extra_content")
            extra.setdefault(config_class, _LazyClass(entry.model_module, entry.model_class))


def _register_tokenizers(tokenization_auto) -> None:
    by_name = _make_resolving(tokenization_auto, "REGISTERED_TOKENIZER_CLASSES")
    mapping = _make_resolving(tokenization_auto.TOKENIZER_MAPPING, "_extra_content")
    for tok in TOKENIZERS:
        lazy = _LazyClass(tok.module, tok.tokenizer_class)
        by_name.setdefault(tok.tokenizer_class, lazy)
        for model_type in tok.model_types:
            entry = next(e for e in MODELS if e.model_type == model_type)
            mapping.setdefault(_config_class(entry), lazy)


_HOOKS = {
    "transformers.models.auto.configuration_auto": _register_configs,
    "transformers.models.auto.modeling_auto": _register_models,
    "transformers.models.auto.tokenization_auto": _register_tokenizers,
}


class _PostImportFinder(importlib.abc.MetaPathFinder):
    """Runs a registration hook right after one of transformers' auto modules is executed."""

    def find_spec(self, fullname, path=None, target=None):
        hook = _HOOKS.get(fullname)
        if hook is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                exec_module = spec.loader.exec_module

                def exec_and_register(module, _exec=exec_module, _hook=hook):
                    _exec(module)
                    _hook(module)

                spec.loader.exec_module = exec_and_register
                return spec
        return None


_finder = _PostImportFinder()


def register_all() -> None:
    """Register every brain_gen_hf class with the Auto classes (now or when transformers loads them)."""
    for name, hook in _HOOKS.items():
        module = sys.modules.get(name)
        if module is not None:
            hook(module)
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)
