"""Checks the issue-12 conformance work asks of every brain_gen_hf model, next to transformers' `ModelTesterMixin`.

A test class mixing `BrainGenConformanceChecks` in sets `all_model_classes` and `self.model_tester` (whose
`prepare_config_and_inputs_for_common()` gives a config and inputs, `labels(inputs)` training targets and
`main_output` names the output field in the model's dtype).
"""

from __future__ import annotations

import copy

import torch
from transformers.modeling_layers import GradientCheckpointingLayer


def _float_tensors(output) -> list[torch.Tensor]:
    values = output.to_tuple() if hasattr(output, "to_tuple") else output
    found = []
    for value in values:
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            found.append(value)
        elif isinstance(value, (tuple, list)):
            found += [v for v in value if isinstance(v, torch.Tensor) and v.is_floating_point()]
    return found


def _loss_and_grads(model, inputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    loss = model(**inputs).loss
    loss.backward()
    # A parameter no loss term reaches has no gradient (None); recomputation may give it zeros instead.
    grads = {
        name: torch.zeros_like(p) if p.grad is None else p.grad.clone()
        for name, p in model.named_parameters()
        if p.requires_grad
    }
    return loss.detach(), grads


def _enable_checkpointing(model, options: dict) -> None:
    # transformers 5.24 renamed `gradient_checkpointing_enable` (now a deprecated alias); 5.17 has only the old name.
    enable = getattr(model, "activation_checkpointing_enable", None)
    if enable is not None:
        enable(activation_checkpointing_kwargs=options)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=options)


class BrainGenConformanceChecks:
    """Precision, gradient checkpointing and meta-device initialisation, for every class in `all_model_classes`."""

    def _model_and_inputs(self, model_class, *, labels: bool = False):
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        torch.manual_seed(0)
        model = model_class(copy.deepcopy(config))
        if labels:
            inputs = {**inputs, "labels": self.model_tester.labels(inputs)}
        return model, inputs

    def test_forward_in_every_precision(self):
        """fp32, bf16 and fp16 forwards work on the model's own inputs (float signals are not cast by hand)."""
        for model_class in self.all_model_classes:
            for dtype in (torch.float32, torch.bfloat16, torch.float16):
                with self.subTest(model_class=model_class.__name__, dtype=dtype):
                    model, inputs = self._model_and_inputs(model_class, labels=True)
                    model.to(dtype).eval()
                    with torch.no_grad():
                        output = model(**inputs)
                    self.assertEqual(output[self.model_tester.main_output].dtype, dtype)
                    for tensor in _float_tensors(output):
                        self.assertTrue(torch.isfinite(tensor).all())

    def test_bf16_training_step(self):
        """A bf16 step reaches every parameter an fp32 step reaches, with finite gradients, and moves them."""
        for model_class in self.all_model_classes:
            model, inputs = self._model_and_inputs(model_class, labels=True)
            model.train()(**inputs).loss.backward()
            fp32_grads = [name for name, p in model.named_parameters() if p.grad is not None]
            model.zero_grad(set_to_none=True)
            model.to(torch.bfloat16)
            optimizer = torch.optim.SGD(model.parameters(), lr=1e-2)
            before = {n: p.detach().clone() for n, p in model.named_parameters()}
            loss = model(**inputs).loss
            self.assertTrue(torch.isfinite(loss))
            loss.backward()
            params = dict(model.named_parameters())
            for name in fp32_grads:
                self.assertIsNotNone(params[name].grad, name)
                self.assertEqual(params[name].grad.dtype, torch.bfloat16)
                self.assertTrue(torch.isfinite(params[name].grad).all(), name)
            optimizer.step()
            self.assertTrue(any(not torch.equal(before[n], params[n]) for n in fp32_grads))

    def test_gradient_checkpointing_gives_identical_loss_and_grads(self):
        for model_class in self.all_model_classes:
            for use_reentrant in (False, True):
                with self.subTest(model_class=model_class.__name__, use_reentrant=use_reentrant):
                    model, inputs = self._model_and_inputs(model_class, labels=True)
                    model.train()
                    layers = [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]
                    self.assertTrue(layers, "the repeated blocks should be GradientCheckpointingLayers")
                    # A sub-module of the first block counts its runs: twice per step once the block is recomputed.
                    probe = next(m for m in layers[0].modules() if m is not layers[0] and not list(m.children()))
                    runs = []
                    probe.register_forward_hook(lambda *_, sink=runs: sink.append(1))
                    torch.manual_seed(1)
                    loss, grads = _loss_and_grads(model, inputs)
                    self.assertEqual(len(runs), 1)
                    _enable_checkpointing(model, {"use_reentrant": use_reentrant})
                    self.assertTrue(all(layer.gradient_checkpointing for layer in layers))
                    runs.clear()
                    torch.manual_seed(1)
                    checkpointed_loss, checkpointed_grads = _loss_and_grads(model, inputs)
                    self.assertEqual(len(runs), 2)
                    torch.testing.assert_close(checkpointed_loss, loss, rtol=0, atol=0)
                    self.assertEqual(checkpointed_grads.keys(), grads.keys())
                    # The recomputed forward is the same; only the order in which a tensor read twice (residual and
                    # conv input) sums its gradient may differ, so gradients agree to float32 rounding.
                    for name, grad in grads.items():
                        torch.testing.assert_close(checkpointed_grads[name], grad, msg=name)

    def test_meta_device_model_is_usable_after_init_weights(self):
        """Built on the meta device, materialised as NaN and `init_weights()`-ed, every tensor holds real values."""
        for model_class in self.all_model_classes:
            config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
            with torch.device("meta"):
                model = model_class(copy.deepcopy(config))
            model.to_empty(device="cpu")
            with torch.no_grad():
                for tensor in [*model.parameters(), *model.buffers()]:
                    if tensor.is_floating_point():
                        tensor.fill_(float("nan"))
            model.init_weights()
            for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
                if tensor.is_floating_point():
                    self.assertTrue(torch.isfinite(tensor).all(), f"{name} was not initialised")
            with torch.no_grad():
                output = model.eval()(**inputs)
            for tensor in _float_tensors(output):
                self.assertTrue(torch.isfinite(tensor).all())
