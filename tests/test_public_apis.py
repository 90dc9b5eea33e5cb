"""Only public APIs of transformers, datasets, accelerate and huggingface_hub: no source file writes their private
attributes (auto-mapping internals, tokenizer registries, attention/rotary state) or patches their modules."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCANNED = ("brain_gen_hf", "training_scripts", "benchmarks")
LIBRARIES = r"(?:transformers|datasets|accelerate|huggingface_hub)"

# (what it is, pattern). An assignment is `=` not followed by `=` (so comparisons pass).
FORBIDDEN = (
    (
        "transformers' Auto-mapping internals",
        re.compile(
            r"_extra_content|_model_mapping|_LazyAutoMapping|"
            r"_LazyConfigMapping|_reverse_config_mapping"
        ),
    ),
    ("transformers' tokenizer registries", re.compile(r"REGISTERED_TOKENIZER_CLASSES|REGISTERED_FAST_ALIASES")),
    ("a config's private attention setting", re.compile(r"\._attn_implementation(?:_internal)?\s*=(?!=)")),
    (
        "rotary-embedding state",
        re.compile(
            r"\.(?:inv_freq|original_inv_freq|max_seq_len_cached|"
            r"original_max_seq_len)\s*=(?!=)|register_buffer\(\s*['\"]inv_freq['\"]"
        ),
    ),
    (
        "an attribute set on a library module",
        re.compile(
            rf"\bsetattr\(\s*{LIBRARIES}\b|"
            rf"^\s*{LIBRARIES}(?:\.\w+)+\s*=(?!=)"
        ),
    ),
    (
        "an attribute set on a module object of a library",
        re.compile(rf"\bsetattr\(\s*(?:sys\.modules\[|importlib\.import_module\()\s*['\"]{LIBRARIES}"),
    ),
)


def violations(text: str, where: str) -> list[str]:
    """`where:line: what: source` for every forbidden line of `text` (comments ignored)."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        code = line.split("#", 1)[0]
        for what, pattern in FORBIDDEN:
            if pattern.search(code):
                found.append(f"{where}:{number}: {what}: {line.strip()}")
    return found


def test_no_private_library_attribute_is_written():
    found = []
    for folder in SCANNED:
        for path in sorted((REPO / folder).rglob("*.py")):
            found += violations(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)))
    assert not found, "private attributes of transformers/datasets/accelerate/huggingface_hub are used:\n" + "\n".join(
        found
    )


def test_the_scan_finds_planted_writes():
    planted = "\n".join(
        [
            "CONFIG_MAPPING._extra_content['x'] = XConfig",
            "AutoModel._model_mapping.register(XConfig, X)",
            "tokenization_auto.REGISTERED_TOKENIZER_CLASSES['X'] = X",
            "config._attn_implementation = 'sdpa'",
            "self.backbone.rotary_emb.inv_freq = freqs",
            "rotary.register_buffer('inv_freq', freqs, persistent=False)",
            "rotary.max_seq_len_cached = 4096",
            "setattr(transformers.models.qwen2, 'Qwen2RotaryEmbedding', Mine)",
            "transformers.generation.utils.GenerationMixin._sample = fast_sample",
            "setattr(sys.modules['transformers.modeling_utils'], 'x', 1)",
        ]
    )
    assert len(violations(planted, "planted")) == len(planted.splitlines())
    allowed = "\n".join(
        [
            "if config._attn_implementation == 'sdpa':",
            "AutoConfig.register('x', XConfig)  # _extra_content is what register writes",
            "self.inv_freq_scale = 2.0",
            "self.register_buffer('inv_freq_t', freqs, persistent=False)",
            "import transformers.models.auto",
        ]
    )
    assert violations(allowed, "allowed") == []
