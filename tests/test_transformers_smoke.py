"""Smoke subset for every supported transformers release: each registered family is built tiny, saved, loaded
back through its Auto class, run forward (same outputs), and generates (LMs) or forecasts (`forecast` models).

It runs where only the model runtime is installed (torch, transformers, safetensors, tokenizers, numpy, einops,
tqdm, pytest): `.ci/run` runs it on the oldest supported transformers with
`python -m pytest -p no:cacheprovider --noconftest tests/test_transformers_smoke.py`, so it needs nothing from
conftest.py (which pulls in the dataset and Hub fixtures).
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402

from brain_gen_hf.registration import MODELS, TOKENIZERS  # noqa: E402
from tests.forecast_contract import FORECAST_CASES  # noqa: E402
from tests.model_contract import ModelContract, first_tensor  # noqa: E402

# Test modules that hold the `ModelContract` of each family (they import only the model runtime).
CONTRACT_MODULES = (
    "tests.test_bendr",
    "tests.test_brainomni",
    "tests.test_brainomni_forecast",
    "tests.test_braintokmix",
    "tests.test_classifier",
    "tests.test_factorized_autoencoder",
    "tests.test_tasa3d",
    "tests.test_wavenet",
    "tests.test_flatgpt_contract_qwen",
    "tests.test_flatgpt_contract_smollm3",
    "tests.test_flatgpt_contract_embeds",
    "tests.test_flatgpt_contract_mix",
    "tests.test_flatgpt_contract_rvq",
    "tests.test_flatgpt_contract_embeds_rvq",
    "tests.test_flatgpt_contract_mix_rvq",
    "tests.test_stgpt2meg",
    "tests.test_ntd",
    "tests.test_vidtok",
    "tests.test_flatgpt_text",
)


def _contracts() -> dict[str, type[ModelContract]]:
    for module in CONTRACT_MODULES:
        importlib.import_module(module)
    found, stack = {}, list(ModelContract.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.__name__.startswith("Test"):
            found[f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__name__}"] = cls
    return dict(sorted(found.items()))


CONTRACTS = _contracts()


DATA_AND_TRAINING_PACKAGES = (
    "mne",
    "datasets",
    "accelerate",
    "matplotlib",
    "tensorboard",
    "scipy",
    "pandas",
    "pyarrow",
)


def test_models_tokenizers_and_generation_need_no_data_or_training_packages():
    modules = sorted(
        {e.config_module for e in MODELS}
        | {e.model_module for e in MODELS}
        | {t.module for t in TOKENIZERS}
        | {"brain_gen_hf.forecasting"}
    )
    script = textwrap.dedent(f"""
        import importlib, sys
        blocked = {DATA_AND_TRAINING_PACKAGES!r}
        for name in blocked:  # as if not installed: `import` fails and `importlib.util.find_spec` gives None
            sys.modules[name] = None
        import torch, transformers
        import brain_gen_hf
        for module in {modules!r}:
            importlib.import_module(module)
        config = transformers.AutoConfig.for_model("wavenet_full_channel", in_channels=2, quant_levels=8,
                                                   dilations=[1])
        model = transformers.AutoModel.from_config(config).eval()
        out = model.forecast(torch.randn(1, 2, 16), 3)
        assert out.values.shape == (1, 2, 3), out.values.shape
        print("OK", sorted(m for m, v in sys.modules.items() if m.split(".")[0] in blocked and v is not None))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert "OK []" in result.stdout, result.stderr[-3000:]


def test_every_registered_family_is_in_the_smoke_subset():
    covered = {cls().make_config().model_type for cls in CONTRACTS.values()}
    missing = sorted({entry.model_type for entry in MODELS} - covered)
    assert not missing, f"registered model types without a smoke case (add a ModelContract): {missing}"


@pytest.mark.parametrize("name", list(CONTRACTS))
def test_build_save_auto_load_forward(name, tmp_path):
    contract = CONTRACTS[name]()
    model = contract.build()
    model.save_pretrained(tmp_path)
    config = transformers.AutoConfig.from_pretrained(tmp_path)
    assert type(config) is type(model.config)
    loaded = getattr(transformers, contract.auto_class).from_pretrained(tmp_path).eval()
    assert type(loaded) is type(model)
    inputs = contract.make_inputs()
    expected = first_tensor(contract.run(model, inputs), contract.output_key)
    got = first_tensor(contract.run(loaded, inputs), contract.output_key)
    if expected.is_floating_point():
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    else:  # codes and token ids: exactly
        assert torch.equal(got, expected)

    tokenizer_file = tmp_path / "tokenizer_config.json"
    if tokenizer_file.exists():  # an LM folder holds its tokenizer: AutoTokenizer finds the class it names
        named = json.loads(tokenizer_file.read_text(encoding="utf-8"))["tokenizer_class"]
        assert type(transformers.AutoTokenizer.from_pretrained(tmp_path)).__name__ == named

    if contract.auto_class == "AutoModelForCausalLM":
        # Whole token steps, through transformers' generate() and its KV cache; the prompt leaves room for them
        # in the model's context.
        new = loaded.config.tokens_per_grid_step
        prompt = inputs["input_ids"]
        if prompt.ndim == 3:  # a (B, C, T) token grid (STGPT2MEG): generate() also reads it flat, time-major
            prompt = prompt.transpose(1, 2).flatten(1)
        prompt = prompt[:, :-new]
        out = loaded.generate(prompt, max_new_tokens=new, do_sample=False, use_cache=True)
        assert out.shape == (prompt.shape[0], prompt.shape[1] + new)
        assert torch.equal(out[:, : prompt.shape[1]], prompt)


@pytest.mark.parametrize("name", list(FORECAST_CASES))
def test_forecast_after_auto_load(name, tmp_path):
    case = FORECAST_CASES[name]
    model = case.build()
    model.save_pretrained(tmp_path)
    loaded = transformers.AutoModel.from_pretrained(tmp_path).eval()
    assert type(loaded) is type(model)
    input_values, metadata = case.inputs(2)
    out = loaded.forecast(input_values, case.horizon, **metadata)
    assert out.values.shape[0] == input_values.shape[0] and out.values.shape[-1] == case.horizon
    assert torch.isfinite(out.values).all()
    expected = model.forecast(input_values, case.horizon, **metadata).values
    torch.testing.assert_close(out.values, expected, rtol=case.rtol, atol=case.atol)
