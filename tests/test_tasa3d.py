"""TASA3D: model contract, causality and conditioning, and parity with brain-gen vectors."""

import pytest
import torch
from transformers import AutoModel

from brain_gen_hf.conversion import convert_reference_checkpoint
from brain_gen_hf.models.tasa3d.configuration_tasa3d import TASA3DConfig
from brain_gen_hf.tokenizers.mulaw import mulaw_encode
from tests.model_contract import ModelContract
from tests.refvec import assert_float_close, discover_cases, require_case

Q = 16


def small_config(**overrides):
    kwargs = dict(
        input_hw=[4, 4], emb_dim=4, quant_levels=Q, depth=2, num_down=1, channel_grow=2, heads=2, spatial_emb=True
    )
    return TASA3DConfig(**{**kwargs, **overrides})


def token_images(batch=2, steps=8, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, Q, (batch, 4, 4, steps), generator=g)


# Three channels on the 4x4 image, as grid_indices would place them.
ROWS, COLS = [0, 1, 3], [2, 0, 3]


def forecast_model(**overrides):
    torch.manual_seed(0)
    return AutoModel.from_config(small_config(**overrides))


def forecast_signal(batch=2, channels=3, steps=6, seed=0):
    """A normalised signal (the training units: mu-law encoded after dividing by mulaw_max_value = 5)."""
    return 2 * torch.randn(batch, channels, steps, generator=torch.Generator().manual_seed(seed))


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
            alone = model(x[i : i + 1]).logits
            torch.testing.assert_close(both[i : i + 1], alone, rtol=1e-5, atol=1e-6)


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
    assert [h.shape for h in out.hidden_states] == [(1, 4, 4, 8, 4)] * 3  # embeddings, then one per block
    torch.testing.assert_close(out.hidden_states[0], out.embeddings, rtol=0, atol=0)
    torch.testing.assert_close(out.logits, plain.logits, rtol=0, atol=0)


def test_config_validation_errors():
    assert TASA3DConfig().input_hw == [8, 8]  # constructible without arguments (AutoConfig.for_model)
    with pytest.raises(ValueError, match="input_hw"):
        TASA3DConfig(input_hw=[8])
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
    buffers = {
        k[len("nonpersistent_buffer.") :]: v for k, v in case.outputs.items() if k.startswith("nonpersistent_buffer.")
    }
    assert buffers, "the case records the RoPE buffers"
    for name, expected in buffers.items():
        for m in (model, reloaded):
            # Recorded in another process: transcendental kernels may round differently on another CPU.
            torch.testing.assert_close(m.get_buffer(name), expected, rtol=1e-6, atol=1e-7)
    with torch.no_grad():
        out = reloaded(input_ids=case.inputs["x"], labels=case.inputs["targets"])
    assert_float_close(out.logits, case.outputs["logits"], "logits")
    assert_float_close(out.loss, case.outputs["loss_CrossEntropy"], "loss_CrossEntropy")


# ------------------------------------------------------------------ forecast
def mulaw_centre(bins: torch.Tensor, mu: int, max_value: float = 5.0) -> torch.Tensor:
    """The signal value at the centre of each mu-law bin (the formula, written out independently)."""
    y = 2 * bins.double() / mu - 1
    return (max_value * torch.sign(y) * ((1 + mu) ** y.abs() - 1) / mu).float()


def copy_last_frame_model(levels=8):
    """Hand-set TASA3D whose every pixel predicts its current token: one-hot embeddings, every block's output
    projection zero (the blocks are then identities), the per-frame GroupNorm an affine map with positive scale
    and an identity head, so the logits peak at the input token."""
    model = forecast_model(emb_dim=levels, quant_levels=levels)
    with torch.no_grad():
        model.token.weight.copy_(torch.eye(levels))
        for block in model.blocks:
            block.out_proj.weight.zero_()
        model.norm.weight.fill_(1.0)
        model.norm.bias.zero_()
        model.head.weight.view(levels, levels).copy_(torch.eye(levels))
        model.head.bias.zero_()
    return model


def test_forecast_follows_hand_set_weights_through_the_image():
    """Each channel repeats its last bin at its own pixel; two channels on one pixel share the later one's."""
    levels = 8
    model = copy_last_frame_model(levels)
    rows, cols = [0, 1, 3, 0], [2, 0, 3, 2]  # channel 3 shares channel 0's pixel
    context_bins = torch.randint(0, levels, (2, 4, 5), generator=torch.Generator().manual_seed(2))
    out = model.forecast(mulaw_centre(context_bins, levels - 1), 4, row_idx=rows, col_idx=cols)
    expected = context_bins[..., -1:].repeat(1, 1, 4)
    expected[:, 0] = expected[:, 3]
    assert torch.equal(out.codes, expected)
    torch.testing.assert_close(out.values, mulaw_centre(expected, levels - 1), rtol=1e-5, atol=1e-6)


def test_forecast_matches_greedy_forward_rollout():
    """Frame by frame, `forecast` feeds back what `forward` predicts at the sensor pixels; the rest stays fill."""
    model = forecast_model(row_idx=ROWS, col_idx=COLS).eval()
    signal = forecast_signal(batch=1)
    fill = 8  # the mu-law bin of a zero signal with 16 levels: floor(0 * 7.5 + 7.5 + 0.5)
    images = torch.full((1, 4, 4, 6), fill, dtype=torch.long)
    images[0, ROWS, COLS] = mulaw_encode(signal[0] / 5.0, mu=Q - 1)
    expected = []
    with torch.no_grad():
        for _ in range(4):
            frame = model(images).logits[:, ROWS, COLS, -1].argmax(-1)  # (1, C)
            expected.append(frame)
            new = torch.full((1, 4, 4, 1), fill, dtype=torch.long)
            new[0, ROWS, COLS, 0] = frame[0]
            images = torch.cat([images, new], dim=-1)
    assert torch.equal(model.forecast(signal, 4).codes, torch.stack(expected, dim=-1))


def test_forecast_condition():
    model = forecast_model(n_cond_tok=3, row_idx=ROWS, col_idx=COLS).eval()
    signal = forecast_signal(batch=1)
    condition = torch.zeros(1, 1, 1, 9, dtype=torch.long)
    base = model.forecast(signal, 3, condition=condition)
    changed = condition.clone()
    changed[..., 7:] = 2
    other = model.forecast(signal, 3, condition=changed)
    assert torch.equal(other.codes[..., :2], base.codes[..., :2])  # frames 6 and 7 read conditions up to 6
    assert not torch.equal(other.values, base.values)
    with pytest.raises(ValueError, match=r"\(B, 1, 1, T \+ horizon\) = \(1, 1, 1, 9\)"):
        model.forecast(signal, 3, condition=condition[..., :6])
    with pytest.raises(ValueError, match="no condition embedding"):
        forecast_model(row_idx=ROWS, col_idx=COLS).forecast(signal, 3, condition=condition)


def test_forecast_errors():
    model = forecast_model()
    signal = forecast_signal()
    with pytest.raises(ValueError, match="no channel layout.*`row_idx` and `col_idx`.*grid_indices"):
        model.forecast(signal, 2)
    with pytest.raises(ValueError, match="3 channels but `row_idx`/`col_idx` place 2"):
        model.forecast(signal, 2, row_idx=ROWS[:2], col_idx=COLS[:2])
    with pytest.raises(ValueError, match="outside the token image"):
        model.forecast(signal, 2, row_idx=[0, 1, 4], col_idx=COLS)
    with pytest.raises(ValueError, match="integer pixel indices"):
        model.forecast(signal, 2, row_idx=[0.0, 1.0, 3.0], col_idx=COLS)
    with pytest.raises(ValueError, match="NaN"):
        model.forecast(signal * float("nan"), 2, row_idx=ROWS, col_idx=COLS)
    with pytest.raises(ValueError, match="horizon must be a positive int"):
        model.forecast(signal, 0, row_idx=ROWS, col_idx=COLS)
    with pytest.raises(ValueError, match="must have 3 dimensions"):
        model.forecast(signal[0], 2, row_idx=ROWS, col_idx=COLS)
    # Pixels given as tensors (what ImageCollator emits) work as lists do.
    as_tensors = model.forecast(signal, 2, row_idx=torch.tensor(ROWS), col_idx=torch.tensor(COLS))
    assert torch.equal(as_tensors.codes, forecast_model(row_idx=ROWS, col_idx=COLS).forecast(signal, 2).codes)
    with pytest.raises(ValueError, match="signal contract lists 2 channels but `row_idx` places 3"):
        small_config(row_idx=ROWS, col_idx=COLS, channel_names=["a", "b"])
    with pytest.raises(ValueError, match="mulaw_max_value"):
        small_config(mulaw_max_value=0)


def test_forecast_images_are_the_training_images():
    """The image a forecast builds from a signal is the one ImageCollator(quantize=True) trains on."""
    import numpy as np

    from brain_gen_hf.data.collators import ImageCollator
    from brain_gen_hf.data.layouts import ChannelLayout
    from brain_gen_hf.layers.sensor_image import SensorImage

    pos_2d = np.array([[0.0, 0.0], [1.0, 0.2], [0.3, 1.0], [0.6, 0.6]], dtype=np.float32)
    layout = ChannelLayout(
        names=list("abcd"),
        types=["eeg"] * 4,
        pos_2d=pos_2d,
        pos_3d=np.zeros((4, 3)),
        ori_3d=np.zeros((4, 3)),
        sfreq=100.0,
    )
    collate = ImageCollator(layout, image_size=4, quantize=True, mu=Q - 1)
    signal = forecast_signal(batch=2, channels=4, steps=7)
    items = [{"signal": s.numpy(), "channel_mask": np.ones(4, dtype=bool)} for s in signal]
    model = forecast_model(row_idx=collate.row_idx.tolist(), col_idx=collate.col_idx.tolist())
    image = SensorImage.for_forecast(model.config, model.config.input_hw, signal, image_hw_name="input_hw")
    tokens = mulaw_encode(signal / model.config.mulaw_max_value, mu=Q - 1)
    assert torch.equal(image.to_image(tokens)[..., :-1], collate(items)["input_ids"])
