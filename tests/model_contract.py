"""The model test contract every brain_gen_hf model family joins.

Subclass `ModelContract` in a `Test...` class and fill in the hooks; pytest collects the
inherited tests. What it checks: config JSON round trip, save -> Auto load -> identical outputs,
strict loading, bad-input errors, eval determinism, safetensors-only saving and (for causal
models) zero gradient from future inputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file


def first_tensor(output, key: str) -> torch.Tensor:
    value = output[key] if not isinstance(output, torch.Tensor) else output
    assert isinstance(value, torch.Tensor), f"output {key!r} is not a tensor"
    return value


class ModelContract:
    """Hooks to fill in per family."""

    auto_class: str = "AutoModel"  # the transformers Auto class that must load a saved folder
    output_key: str = "logits"
    # Gradient causality: the output tensor's time axis and the differentiable input's time axis. The
    # input is `output[causal_input_key]` (e.g. the embedded tokens) unless `causal_input_key` is None,
    # in which case the float input named by `main_input` in `make_inputs()` is used.
    causal: bool = False
    causal_output_time_dim: int = -1
    causal_input_key: str | None = "embeddings"
    causal_input_time_dim: int = -1
    causal_atol: float = 1e-7

    def make_config(self):
        raise NotImplementedError

    def make_inputs(self) -> dict:
        """Keyword inputs of `forward`, including labels if the model computes a loss."""
        raise NotImplementedError

    def bad_inputs(self) -> list[tuple[dict, str]]:
        """(forward kwargs, regex the ValueError message must match): wrong shape, NaN, dtype, range..."""
        raise NotImplementedError

    # -------------------------------------------------------------- helpers
    def build(self, seed: int = 0):
        import transformers

        import brain_gen_hf  # noqa: F401  (registers the Auto classes)

        torch.manual_seed(seed)
        auto = getattr(transformers, self.auto_class)
        return auto.from_config(self.make_config()).eval()

    def run(self, model, inputs=None):
        with torch.no_grad():
            return model(**(inputs if inputs is not None else self.make_inputs()))

    # -------------------------------------------------------------- the contract
    def test_config_json_round_trip(self, tmp_path):
        config = self.make_config()
        config.save_pretrained(tmp_path)
        text = (tmp_path / "config.json").read_text()
        data = json.loads(text)  # valid JSON: json.loads rejects nothing, so also forbid NaN/Infinity tokens
        assert "NaN" not in text and "Infinity" not in text
        assert data["model_type"] == config.model_type
        reloaded = type(config).from_pretrained(tmp_path)
        assert reloaded.to_dict() == config.to_dict()
        from transformers import AutoConfig

        import brain_gen_hf  # noqa: F401

        assert type(AutoConfig.from_pretrained(tmp_path)) is type(config)

    def test_save_load_by_auto_class_identical(self, tmp_path):
        import transformers

        model = self.build()
        expected = first_tensor(self.run(model), self.output_key)
        assert torch.isfinite(expected).all()
        model.save_pretrained(tmp_path)
        reloaded = getattr(transformers, self.auto_class).from_pretrained(tmp_path).eval()
        assert type(reloaded) is type(model)
        got = first_tensor(self.run(reloaded), self.output_key)
        torch.testing.assert_close(got, expected, rtol=0, atol=0)

    def test_weights_are_safetensors_only(self, tmp_path):
        model = self.build()
        model.save_pretrained(tmp_path)
        files = {p.name for p in Path(tmp_path).iterdir()}
        assert "model.safetensors" in files or any(f.endswith(".safetensors") for f in files)
        assert not any(f.endswith((".bin", ".pt", ".pth", ".ckpt", ".pkl")) for f in files), files
        with pytest.raises(ValueError, match="safetensors"):
            model.save_pretrained(tmp_path / "unsafe", safe_serialization=False)

    def test_strict_loading_rejects_tampered_state_dict(self, tmp_path):
        import transformers

        model = self.build()
        model.save_pretrained(tmp_path)
        weights = tmp_path / "model.safetensors"
        state = load_file(weights)
        removed = sorted(state)[0]
        state.pop(removed)
        state["not_a_real_module.weight"] = torch.zeros(2)
        save_file(state, weights, metadata={"format": "pt"})
        with pytest.raises(OSError, match=r"not_a_real_module|" + removed.replace(".", r"\.")):
            getattr(transformers, self.auto_class).from_pretrained(tmp_path)

    def test_corrupted_weights_file_raises_oserror(self, tmp_path):
        import transformers

        model = self.build()
        model.save_pretrained(tmp_path)
        weights = tmp_path / "model.safetensors"
        data = weights.read_bytes()
        weights.write_bytes(data[: len(data) // 2])
        with pytest.raises(OSError, match="truncated or corrupted"):
            getattr(transformers, self.auto_class).from_pretrained(tmp_path)

    def test_bad_inputs_raise_clear_value_errors(self):
        model = self.build()
        cases = self.bad_inputs()
        assert cases, "a family must list its bad inputs"
        for kwargs, pattern in cases:
            with pytest.raises(ValueError, match=pattern):
                self.run(model, kwargs)

    def test_eval_mode_is_deterministic(self):
        model = self.build()
        a = first_tensor(self.run(model), self.output_key)
        b = first_tensor(self.run(model), self.output_key)
        torch.testing.assert_close(a, b, rtol=0, atol=0)

    def test_loss_is_finite_and_backpropagates(self):
        model = self.build().train()
        out = model(**self.make_inputs())
        if out.get("loss") is None:
            pytest.fail("make_inputs() must include labels/targets so the loss path is exercised")
        assert torch.isfinite(out["loss"])
        out["loss"].backward()
        grads = [p.grad for p in model.parameters() if p.requires_grad]
        assert any(g is not None and g.abs().sum() > 0 for g in grads)

    def test_future_inputs_get_zero_gradient(self):
        if not self.causal:
            return
        model = self.build()
        inputs = self.make_inputs()
        inputs = {k: v for k, v in inputs.items() if k not in ("labels", "targets")}
        source = None
        if self.causal_input_key is None:
            source = inputs[self.main_input].clone().requires_grad_(True)
            inputs[self.main_input] = source
        out = model(**inputs)
        if source is None:
            source = out[self.causal_input_key]
            source.retain_grad()
        output = first_tensor(out, self.output_key)
        t_out = output.shape[self.causal_output_time_dim]
        t_split = t_out // 2
        output.narrow(self.causal_output_time_dim, 0, t_split).sum().backward()
        grad = source.grad
        assert grad is not None
        future = grad.narrow(self.causal_input_time_dim, t_split, grad.shape[self.causal_input_time_dim] - t_split)
        past = grad.narrow(self.causal_input_time_dim, 0, t_split)
        assert past.abs().sum() > 0, "no gradient reaches the past: the check would be vacuous"
        torch.testing.assert_close(future, torch.zeros_like(future), rtol=0, atol=self.causal_atol)

    main_input: str = "input_values"

    def test_hub_round_trip(self, local_hub, hub_repo_id, monkeypatch):
        """push_to_hub -> fresh cache -> Auto class from the repo id: identical outputs, a validated card;
        after one pull the model loads offline from the cache."""
        import huggingface_hub.constants as hub_constants
        import transformers
        from huggingface_hub import ModelCard

        model = self.build()
        expected = first_tensor(self.run(model), self.output_key)
        model.push_to_hub(hub_repo_id)
        auto = getattr(transformers, self.auto_class)
        with local_hub.fresh_cache():
            reloaded = auto.from_pretrained(hub_repo_id).eval()
            torch.testing.assert_close(first_tensor(self.run(reloaded), self.output_key), expected, rtol=0, atol=0)
            card = ModelCard.load(hub_repo_id)
            assert card.data.library_name == "brain_gen_hf"
            card.validate()
            monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
            offline = auto.from_pretrained(hub_repo_id).eval()
            torch.testing.assert_close(first_tensor(self.run(offline), self.output_key), expected, rtol=0, atol=0)
