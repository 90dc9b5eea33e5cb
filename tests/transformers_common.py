"""transformers' own common tests (`ModelTesterMixin`, `ConfigTester`), taken from its source distribution.

The two files ship in the sdist of the installed transformers release (`pip download --no-deps --no-binary :all:
transformers==X`), which CI reaches through the package registry; nothing of them is copied into this repository.
They import three modules the sdist leaves out, provided here under the names they import:

- `exporters.test_export.ExportTesterMixin`: the `torch.export` tests (not shipped); an empty base class.
- `generation.test_utils.GenerationTesterMixin`: transformers' generation suite (not shipped). Its name is bound to
  `tests.generation_contract.GenerationContract`, our generation behaviour tests, so `ModelTesterMixin`'s check that
  every generative model's tester runs generation tests means ours.
- `utils.test_configuration_utils.config_common_kwargs`: non-default values for the common `PreTrainedConfig`
  arguments, which `ConfigTester` checks a config accepts and keeps.

The extracted package is cached per transformers version in `BRAIN_GEN_HF_TRANSFORMERS_TESTS` (default
`~/.cache/brain_gen_hf/transformers-tests`). Without the registry and without a cache the tests fail under CI and
skip elsewhere, saying why.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest
import transformers

PACKAGE = "hf_common_tests"
SHIPPED = ("test_modeling_common.py", "test_configuration_common.py")

_EXPORT_SHIM = '''"""Stand-in for transformers' `tests/exporters/test_export.py`, which its sdist does not ship."""


class ExportTesterMixin:
    """No `torch.export` tests: they are not in the source distribution."""
'''

_GENERATION_SHIM = '''"""transformers' `GenerationTesterMixin` is not in its sdist: our contract stands in."""

from tests.generation_contract import GenerationContract as GenerationTesterMixin  # noqa: F401
'''

# Every common PreTrainedConfig argument, each with a value different from its default.
_CONFIG_KWARGS_SHIM = '''"""Non-default values of the common `PreTrainedConfig` arguments (not in the sdist)."""

config_common_kwargs = {
    "return_dict": False,
    "output_hidden_states": True,
    "dtype": "float16",
    "chunk_size_feed_forward": 5,
    "is_encoder_decoder": True,
    "architectures": ["BertModel"],
    "finetuning_task": "translation",
    "id2label": {0: "label"},
    "label2id": {"label": "0"},
    "tokenizer_class": "BertTokenizerFast",
    "prefix": "prefix",
    "bos_token_id": 6,
    "pad_token_id": 7,
    "eos_token_id": 8,
    "sep_token_id": 9,
    "decoder_start_token_id": 10,
    "task_specific_params": {"translation": "some_params"},
    "problem_type": "regression",
}
'''


def cache_root() -> Path:
    default = Path.home() / ".cache" / "brain_gen_hf" / "transformers-tests"
    return Path(os.environ.get("BRAIN_GEN_HF_TRANSFORMERS_TESTS", default)) / transformers.__version__


def _unavailable(reason: str):
    message = f"transformers' common tests are unavailable: {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message, allow_module_level=True)


def _download_sdist(into: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:"]
    command += ["--dest", str(into), f"transformers=={transformers.__version__}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    archives = sorted(into.glob("transformers-*.tar.gz"))
    if done.returncode != 0 or not archives:
        _unavailable(f"`{' '.join(command[2:])}` failed: {done.stderr.strip()[-400:]}")
    return archives[0]


def _extract(archive: Path, package: Path) -> None:
    package.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        for name in SHIPPED:
            member = next((m for m in tar.getmembers() if m.name.endswith(f"/tests/{name}")), None)
            if member is None:
                _unavailable(f"{archive.name} has no tests/{name}")
            (package / name).write_bytes(tar.extractfile(member).read())
    for relative, text in (
        ("exporters/test_export.py", _EXPORT_SHIM),
        ("generation/test_utils.py", _GENERATION_SHIM),
        ("utils/test_configuration_utils.py", _CONFIG_KWARGS_SHIM),
    ):
        target = package / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        (target.parent / "__init__.py").touch()
        target.write_text(text, encoding="utf-8")
    (package / "__init__.py").touch()


def _ensure_package() -> Path:
    root = cache_root()
    package = root / PACKAGE
    if not all((package / name).exists() for name in SHIPPED):
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=root) as scratch:
            staging = Path(scratch) / PACKAGE
            _extract(_download_sdist(Path(scratch)), staging)
            staging.replace(package) if not package.exists() else None
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return package


def load_common_tests():
    """(ModelTesterMixin, ConfigTester, module of test_modeling_common) from the installed release's sdist."""
    _ensure_package()
    try:
        modeling = importlib.import_module(f"{PACKAGE}.test_modeling_common")
        configuration = importlib.import_module(f"{PACKAGE}.test_configuration_common")
    except ImportError as err:  # e.g. `parameterized` (in our test extra) is missing
        _unavailable(f"importing them failed: {err}")
    return modeling.ModelTesterMixin, configuration.ConfigTester, modeling
