"""TASA3D: model contract, causality and conditioning, and parity with brain-gen vectors."""

import pytest
import torch
from transformers import AutoModel

from brain_gen_hf.conversion import convert_reference_checkpoint
from brain_gen_hf.models.tasa3d.configuration_tasa3d import TASA3DConfig
from tests.model_contract import ModelContract
from tests.refvec import assert_float_close, discover_cases, require_case

Q = 16


def small_config(**overrides):
    kwargs = dict(input_hw=[4, 4], emb_dim=4, quant_levels=Q, depth=2, num_down=1, channel_grow=2, heads=2,
                  spatial_emb=True)
    return TASA3DConfig(**{**kwargs, **overrides})


def token_images(batch=2, steps=8, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, Q, (batch, 4, 4, steps), generator=g)


class TestTASA3DContract(ModelContract):
    causal = True
    causal_output_time_dim = 3  # logits (B, H, W, T, Q)
    causal_input_time_dim = 3  # embeddings (B, H, W, T, E)

    def make_config(self):
        return small_config()

    def make_inputs(self):
        x = token_images()
        return {"input_ids": x, "labels": torch.roll(x, -1, dims=-1)}

    def bad_inputs(self):
        x = token_images()
        embeds = torch.randn(2, 4, 4, 8, 4)
        return [
            ({"input_ids": x[:, :2]}, "token image must be 4x4"),
            ({"input_ids": x.float()}, "integer token ids"),
            ({"input_ids": x + Q}, "outside the vocabulary"),
            ({"input_ids": x[..., 0]}, "4 dimensions"),
            ({"input_ids": x[..., :0]}, "empty"),
            ({"input_ids": x, "labels": x[..., :3]}, "labels must have shape"),
            ({"input_ids": x, "condition": torch.zeros(2, 1, 1, 8, dtype=torch.long)}, "no condition embedding"),
            ({"input_ids": x, "inputs_embeds": embeds}, "exactly one of"),
            ({}, "exactly one of"),
            ({"inputs_embeds": embeds.masked_fill(embeds > 2, float("nan"))}, "NaN"),
            ({"inputs_embeds": embeds[..., :3]}, "3 channels"),
        ]


def test_last_step_gets_no_gradient_through_inputs_embeds():
    """The reference's own causality check: outputs before the last step ignore the last input step."""
    torch.manual_seed(0)
    model = AutoModel.from_config(small_config()).eval()
    embeds = torch.randn(1, 4, 4, 6, 4, requires_grad=True)
    model(inputs_embeds=embeds).logits[:, :, :, :-1].sum().backward()
    assert embeds.grad[..., -1, :].abs().max() == 0
    assert embeds.grad[..., :-1, :].abs().sum() > 0


def test_batch_items_are_independent():
    torch.manual_seed(0)
    model = AutoModel.from_config(small_config()).eval()
    x = token_images()
    with torch.no_grad():
        both = model(x).logits
        for i in range(2):
            alone = model(x[i: i + 1]).logits
            torch.testing.assert_close(both[i: i + 1], alone, rtol=1e-5, atol=1e-6)


def test_condition_is_embedded_per_time_step():
    torch.manual_seed(0)
    model = AutoModel.from_config(small_config(n_cond_tok=3)).eval()
    x = token_images(batch=1, steps=6)
    cond = torch.zeros(1, 1, 1, 6, dtype=torch.long)
    changed = cond.clone()
    changed[..., 4] = 2
    with torch.no_grad():
        base = model(x, condition=cond).logits
        other = model(x, condition=changed).logits
        unconditioned = model(x).logits
    # A condition at step 4 changes steps >= 4 only (causal), and conditioning changes the output.
    torch.testing.assert_close(other[..., :4, :], base[..., :4, :], rtol=1e-5, atol=1e-6)  # up to kernel rounding
    assert (other[..., 4:, :] - base[..., 4:, :]).abs().max() > 1e-4
    assert (unconditioned - base).abs().max() > 1e-4
    with pytest.raises(ValueError, match=r"shape \(1, 1, 1, 6\)"):
        model(x, condition=cond[..., :5])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        model(x, condition=cond + 3)


def test_hidden_states_are_block_outputs():
    torch.manual_seed(0)
    model = AutoModel.from_config(small_config()).eval()
    x = token_images(batch=1)
    with torch.no_grad():
        plain = model(x)
        out = model(x, output_hidden_states=True)
    assert plain.hidden_states is None
    assert [h.shape for h in out.hidden_states] == [(1, 4, 4, 8, 4)] * 2
    torch.testing.assert_close(out.logits, plain.logits, rtol=0, atol=0)


def test_config_validation_errors():
    with pytest.raises(ValueError, match="input_hw"):
        TASA3DConfig()
    with pytest.raises(ValueError, match="divisible by 2\\*\\*num_down"):
        TASA3DConfig(input_hw=[6, 8], num_down=2)
    with pytest.raises(ValueError, match="not divisible by `heads`"):
        TASA3DConfig(input_hw=[4, 4], emb_dim=3, num_down=1, heads=5)
    with pytest.raises(ValueError, match="drop"):
        TASA3DConfig(input_hw=[4, 4], drop=1.5)


@pytest.mark.parametrize("case", discover_cases({"TASA3D"}))
def test_parity_tasa3d(case, tmp_path):
    case = require_case(case)
    model = convert_reference_checkpoint(case.registry_name, case.model_kwargs, case.state_dict)
    # Non-persistent RoPE buffers must be rebuilt from the config, also after a save / Auto load round trip.
    model.save_pretrained(tmp_path)
    reloaded = AutoModel.from_pretrained(tmp_path).eval()
    buffers = {k[len("nonpersistent_buffer."):]: v for k, v in case.outputs.items()
               if k.startswith("nonpersistent_buffer.")}
    assert buffers, "the case records the RoPE buffers"
    for name, expected in buffers.items():
        for m in (model, reloaded):
            # Recorded in another process: transcendental kernels may round differently on another CPU.
            torch.testing.assert_close(m.get_buffer(name), expected, rtol=1e-6, atol=1e-7)
    with torch.no_grad():
        out = reloaded(input_ids=case.inputs["x"], labels=case.inputs["targets"])
    assert_float_close(out.logits, case.outputs["logits"], "logits")
    assert_float_close(out.loss, case.outputs["loss_CrossEntropy"], "loss_CrossEntropy")
