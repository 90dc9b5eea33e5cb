"""Reference test vectors: discovery and loading (format in ../shared/refvec/README.md).

Parity tests discover case folders by the `registry_name` in each `meta.json` and read every
constructor argument from the case's `config.json`, so they run unchanged on any vector set
produced the same way (`BRAIN_GEN_HF_REFVEC` points at its root).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import refvec_root, require_shared

# float32 outputs: the refvec README's recommendation
RTOL, ATOL = 1e-5, 1e-6


def _decode_tensors(value):
    """config.json writes tensors as {"__tensor__": [...], "dtype": ...}."""
    if isinstance(value, dict):
        if "__tensor__" in value:
            return torch.tensor(value["__tensor__"], dtype=getattr(torch, value.get("dtype", "float32")))
        return {k: _decode_tensors(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode_tensors(v) for v in value]
    return value


@dataclass
class RefCase:
    path: Path
    meta: dict = field(repr=False)

    def __str__(self) -> str:
        return self.path.name

    @property
    def registry_name(self) -> str:
        return self.meta["registry_name"]

    @cached_property
    def config(self) -> dict:
        return json.loads((self.path / "config.json").read_text())

    @property
    def model_kwargs(self) -> dict:
        return _decode_tensors(self.config["model_kwargs"])

    @cached_property
    def state_dict(self) -> dict[str, torch.Tensor]:
        return load_file(self.path / "state_dict.safetensors")

    @cached_property
    def inputs(self) -> dict[str, torch.Tensor]:
        return load_file(self.path / "inputs.safetensors")

    @cached_property
    def outputs(self) -> dict[str, torch.Tensor]:
        return load_file(self.path / "outputs.safetensors")

    def call_seed(self, tensor_key: str) -> int:
        """The `torch.manual_seed` recorded for the call that produced `tensor_key` (e.g. "outputs:train_step.loss")."""
        return int(self.meta["tensors"][tensor_key]["args"]["torch.manual_seed"])

    def procedure_seed(self, step: str) -> int:
        """The `torch.manual_seed(s)` of the `meta.json` procedure entry that mentions `step` (e.g. "k-means init").

        Vector sets produced the same way may use other seeds, so tests read them instead of assuming the public ones.
        """
        for entry in self.meta.get("procedure", []):
            match = re.search(r"torch\.manual_seed\((\d+)\)", entry)
            if step in entry and match:
                return int(match.group(1))
        raise KeyError(f"{self}: no seeded procedure entry mentions {step!r}")


def discover_cases(registry_names: set[str]) -> list:
    """pytest params: every case under the refvec root whose model is in `registry_names`."""
    root = refvec_root()
    if not root.exists():
        return [pytest.param(None, id="refvec-missing")]
    cases = []
    for meta_path in sorted(root.glob("*/meta.json")):
        meta = json.loads(meta_path.read_text())
        if meta.get("registry_name") in registry_names:
            cases.append(pytest.param(RefCase(meta_path.parent, meta), id=meta_path.parent.name))
    return cases or [pytest.param(None, id="no-cases")]


def require_case(case: RefCase | None) -> RefCase:
    if case is None:
        require_shared(refvec_root())
        pytest.fail(f"no reference vectors for this model under {refvec_root()}")
    return case


def assert_float_close(got: torch.Tensor, expected: torch.Tensor, name: str, rtol=RTOL, atol=ATOL):
    assert got.shape == expected.shape, f"{name}: shape {tuple(got.shape)} != {tuple(expected.shape)}"
    torch.testing.assert_close(got.float(), expected.float(), rtol=rtol, atol=atol, msg=lambda m: f"{name}: {m}")
