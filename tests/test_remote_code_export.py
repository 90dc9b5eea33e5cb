"""Remote code for every family: `save_pretrained(remote_code=True)` -> a process that cannot import
brain_gen_hf loads each folder with `trust_remote_code=True` and computes the same outputs (codes and ids
exactly, floats up to kernel rounding).

Every `ModelContract` subclass in the test suite takes part (one subprocess for all of them, since
starting torch + transformers dominates the cost).
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import torch
from safetensors.torch import save_file

import tests
from tests.model_contract import ModelContract, first_tensor

REQUIRED_FAMILIES = {"flatgpt", "braintokmix", "wavenet_full_channel"}  # the must-haves, at least


def contract_classes() -> list[type[ModelContract]]:
    for info in pkgutil.iter_modules(tests.__path__):
        if info.name.startswith("test_") and info.name != Path(__file__).stem:
            importlib.import_module(f"tests.{info.name}")
    found, stack = [], list(ModelContract.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.__name__.startswith("Test"):
            found.append(cls)
    return sorted(found, key=lambda c: f"{c.__module__}.{c.__name__}")


def test_every_family_loads_as_remote_code_without_the_package(tmp_path):
    cases, model_types = [], set()
    for cls in contract_classes():
        contract = cls()
        model = contract.build()
        name = f"{cls.__module__.split('.')[-1]}.{cls.__name__}"
        folder = tmp_path / name
        model.save_pretrained(folder, remote_code=True)
        config = json.loads((folder / "config.json").read_text())
        assert contract.auto_class in config["auto_map"], name
        for generated in folder.glob("*.py"):
            imports = [
                line for line in generated.read_text().splitlines() if line.lstrip().startswith(("import ", "from "))
            ]
            assert not any("brain_gen_hf" in line for line in imports), (name, generated.name)
        inputs = contract.make_inputs()
        tensors = {f"in.{k}": v.clone().contiguous() for k, v in inputs.items() if isinstance(v, torch.Tensor)}
        tensors["expected"] = first_tensor(contract.run(model, inputs), contract.output_key).contiguous()
        save_file(tensors, folder / "io.safetensors")
        cases.append(
            {"name": name, "folder": str(folder), "auto_class": contract.auto_class, "output_key": contract.output_key}
        )
        model_types.add(model.config.model_type)
    assert cases, "no model family joined the contract"
    missing = {t for t in REQUIRED_FAMILIES if not any(mt == t or mt.startswith(t) for mt in model_types)}
    assert not missing, f"families without a remote-code check: {missing}"

    (tmp_path / "cases.json").write_text(json.dumps(cases))
    script = textwrap.dedent(f"""
        import importlib.abc, json, os, sys
        class _Hide(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "brain_gen_hf":
                    raise ImportError("brain_gen_hf is hidden in this process")
        sys.meta_path.insert(0, _Hide())
        import torch, transformers
        from safetensors.torch import load_file
        failures = []
        for case in json.load(open({str(tmp_path / "cases.json")!r})):
            try:
                io = load_file(case["folder"] + "/io.safetensors")
                auto = getattr(transformers, case["auto_class"])
                model = auto.from_pretrained(case["folder"], trust_remote_code=True).eval()
                assert "brain_gen_hf" not in type(model).__module__
                with torch.no_grad():
                    out = model(**{{k[3:]: v for k, v in io.items() if k.startswith("in.")}})
                got, expected = out[case["output_key"]], io["expected"]
                if expected.is_floating_point():
                    # Another process may pick other float kernels (thread count, CPU): equal up to rounding.
                    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
                else:  # codes and token ids: exactly
                    assert torch.equal(got, expected), "integer outputs differ"
                # The loaded remote model saves again (without brain_gen_hf's card templates).
                model.save_pretrained(case["folder"] + "/resaved")
                assert os.path.exists(case["folder"] + "/resaved/model.safetensors")
            except Exception as err:
                failures.append(case["name"] + ": " + repr(err)[:500])
        print("FAILURES", json.dumps(failures))
    """)
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        cwd=tmp_path,
    )
    assert "FAILURES" in result.stdout, result.stderr[-4000:]
    failures = json.loads(result.stdout.split("FAILURES", 1)[1])
    assert not failures, "\n".join(failures)
