"""WaveNet family: model contract, the fixed (chained) wiring, and parity with brain-gen vectors."""

import math

import pytest
import torch
from transformers import AutoModel, GenerationConfig

from brain_gen_hf.conversion import convert_reference_checkpoint
from brain_gen_hf.models.wavenet.configuration_wavenet import Wavenet3DConfig, WavenetFullChannelConfig
from brain_gen_hf.tokenizers.mulaw import mulaw_encode
from tests.model_contract import ModelContract
from tests.refvec import assert_float_close, discover_cases, require_case

Q = 32


# ------------------------------------------------------------------ forecast builders (also tests/forecast_contract.py)
def forecast_model(**overrides):
    torch.manual_seed(0)
    fields = {
        "in_channels": 3,
        "quant_levels": Q,
        "quant_emb": 8,
        "residual_channels": 16,
        "dilation_channels": 16,
        "skip_channels": 16,
        "head_channels": 16,
        "dilations": [1, 2, 4],
    }
    return AutoModel.from_config(WavenetFullChannelConfig(**{**fields, **overrides}))


def forecast_model_3d(**overrides):
    torch.manual_seed(0)
    fields = {
        "quant_levels": Q,
        "quant_emb": 8,
        "dilations": [1, 2],
        "spatial_kernel_size": 3,
        "image_size": [3, 4],
        "row_idx": [0, 1, 2, 2],
        "col_idx": [0, 3, 1, 2],
    }
    return AutoModel.from_config(Wavenet3DConfig(**{**fields, **overrides}))


def forecast_signal(batch=2, channels=3, steps=20, seed=0):
    """A normalised signal (the training units: mu-law encoded after dividing by mulaw_max_value = 5)."""
    return 2 * torch.randn(batch, channels, steps, generator=torch.Generator().manual_seed(seed))


class TestWavenetFullChannelContract(ModelContract):
    causal = True
    causal_output_time_dim = 2  # logits (B, C, T, Q)
    causal_input_time_dim = -1  # embeddings (B*C, E, T)

    def make_config(self):
        return WavenetFullChannelConfig(
            in_channels=3,
            quant_levels=Q,
            quant_emb=8,
            residual_channels=16,
            dilation_channels=16,
            skip_channels=16,
            head_channels=16,
            dilations=[1, 2, 4],
        )

    def make_inputs(self):
        g = torch.Generator().manual_seed(1)
        x = torch.randint(0, Q, (2, 3, 24), generator=g)
        return {"input_ids": x, "labels": torch.roll(x, -1, dims=-1)}

    def bad_inputs(self):
        x = self.make_inputs()["input_ids"]
        return [
            ({"input_ids": x[:, :2]}, "2 channels"),
            ({"input_ids": x.float()}, "integer token ids"),
            ({"input_ids": x + Q}, "outside the vocabulary"),
            ({"input_ids": x[0]}, "3 dimensions"),
            ({"input_ids": x[:, :, :0]}, "empty"),
            ({"input_ids": x, "labels": x[:, :, :5]}, "labels must have shape"),
        ]


class TestWavenet3DContract(ModelContract):
    causal = True
    causal_output_time_dim = 3  # logits (B, H, W, T, Q)
    causal_input_time_dim = -1  # embeddings (B, E, H, W, T)

    def make_config(self):
        return Wavenet3DConfig(quant_levels=Q, quant_emb=8, dilations=[1, 2], spatial_kernel_size=3, image_size=[5, 6])

    def make_inputs(self):
        g = torch.Generator().manual_seed(1)
        x = torch.randint(0, Q, (2, 5, 6, 12), generator=g)
        return {"input_ids": x, "labels": torch.roll(x, -1, dims=-1)}

    def bad_inputs(self):
        x = self.make_inputs()["input_ids"]
        return [
            ({"input_ids": x[:, :4]}, "token image must be 5x6"),
            ({"input_ids": x.float()}, "integer token ids"),
            ({"input_ids": -x - 1}, "outside the vocabulary"),
            ({"input_ids": x[..., 0]}, "4 dimensions"),
        ]


def test_chained_layers_see_the_full_receptive_field():
    """The reference's unchained wiring sees only single dilated taps; ours sees every past sample."""
    torch.manual_seed(0)
    config = WavenetFullChannelConfig(in_channels=1, quant_levels=Q, dilations=[1, 2, 4], kernel_size=2)
    rf = config.receptive_field
    assert rf == 8
    for parallel, expected in ((False, set(range(15 - rf + 1, 16))), (True, {11, 13, 14, 15})):
        config.parallel_layers = parallel
        from transformers import AutoModel

        model = AutoModel.from_config(config).eval()
        out = model(torch.randint(0, Q, (1, 1, 16)))
        emb = out.embeddings
        emb.retain_grad()
        out.logits[0, 0, 15].sum().backward()
        seen = set(torch.nonzero(emb.grad[0].abs().sum(0)).flatten().tolist())
        assert seen == expected, (parallel, seen)


def test_config_validation_errors():
    with pytest.raises(ValueError, match="in_channels"):
        WavenetFullChannelConfig(in_channels=0)
    with pytest.raises(ValueError, match="parallel_layers"):
        WavenetFullChannelConfig(quant_emb=8, residual_channels=16, parallel_layers=True)
    with pytest.raises(ValueError, match="num_classes"):
        WavenetFullChannelConfig(num_classes=3)
    with pytest.raises(ValueError, match="3 channels but `in_channels` is 2"):
        WavenetFullChannelConfig(in_channels=2, channel_names=["a", "b", "c"])
    with pytest.raises(ValueError, match="odd"):
        Wavenet3DConfig(spatial_kernel_size=2)


@pytest.mark.parametrize("case", discover_cases({"WavenetFullChannel", "Wavenet3D"}))
def test_parity_wavenet(case):
    case = require_case(case)
    model = convert_reference_checkpoint(case.registry_name, case.model_kwargs, case.state_dict)
    x, targets = case.inputs["x"], case.inputs["targets"]
    with torch.no_grad():
        out = model(input_ids=x, labels=targets)
    assert_float_close(out.logits, case.outputs["logits"], "logits")
    embedded = out.embeddings
    if embedded.shape != case.outputs["embedded_input"].shape:  # (B*C, E, T) vs (B, E, H, W, T) layouts agree
        embedded = embedded.reshape(case.outputs["embedded_input"].shape)
    assert_float_close(embedded, case.outputs["embedded_input"], "embedded_input")
    assert_float_close(out.loss, case.outputs["loss_CrossEntropy"], "loss_CrossEntropy")


@pytest.mark.parametrize("parallel", [False, True])
def test_full_channel_hidden_states_are_the_residual_stream(parallel):
    """`output_hidden_states=True` returns the embeddings, then each layer's residual output `(B, C, T, R)`; logits
    are unchanged."""
    from transformers import AutoModel

    torch.manual_seed(0)
    config = WavenetFullChannelConfig(
        in_channels=3, quant_levels=Q, quant_emb=16, residual_channels=16, dilations=[1, 2], parallel_layers=parallel
    )
    model = AutoModel.from_config(config).eval()
    x = torch.randint(0, Q, (2, 3, 10))
    with torch.no_grad():
        plain = model(x)
        out = model(x, output_hidden_states=True)
    assert plain.hidden_states is None
    torch.testing.assert_close(out.logits, plain.logits, rtol=0, atol=0)
    assert len(out.hidden_states) == 2 + len(config.dilations)  # embeddings, 1x1 input layer, dilated layers
    assert all(h.shape == (2, 3, 10, 16) for h in out.hidden_states)
    # Each entry is what its layer produced from the previous one (or from the embeddings when unchained).
    to_layer_layout = lambda h: h.permute(0, 1, 3, 2).reshape(6, 16, 10)  # noqa: E731
    torch.testing.assert_close(to_layer_layout(out.hidden_states[0]), out.embeddings, rtol=0, atol=0)
    with torch.no_grad():
        last_input = out.embeddings if parallel else to_layer_layout(out.hidden_states[-2])
        expected, _ = model.layers[-1](last_input)
    torch.testing.assert_close(to_layer_layout(out.hidden_states[-1]), expected, rtol=0, atol=0)


def test_wavenet3d_hidden_states_shape():
    from transformers import AutoModel

    torch.manual_seed(0)
    model = AutoModel.from_config(
        Wavenet3DConfig(quant_levels=Q, quant_emb=8, residual_channels=12, dilations=[1])
    ).eval()
    with torch.no_grad():
        out = model(torch.randint(0, Q, (1, 4, 5, 6)), output_hidden_states=True)
    assert [h.shape for h in out.hidden_states] == [(1, 4, 5, 6, 8)] + [(1, 4, 5, 6, 12)] * 2


# ------------------------------------------------------------------ forecast
def mulaw_centre(bins, mu, max_value=5.0):
    """The signal value at the centre of each mu-law bin (the formula, written out independently)."""
    out = []
    for b in bins:
        y = 2 * b / mu - 1
        out.append(max_value * math.copysign(((1 + mu) ** abs(y) - 1) / mu, y))
    return out


def period_three_weights(model, levels):
    """Hand-set weights: every output predicts the bin three samples back (x[t+1] = x[t-2]).

    One-hot embeddings; only the dilation-2 layer is active: its older tap (t-2) feeds the tanh half of the gate
    and a large bias opens the sigmoid half; every other conv is zero and passes the residual through; the skip
    and head convs are identities, so the logits are ~one-hot at x[t-2].
    """
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        eye = torch.eye(levels)
        if hasattr(model, "quant_emb"):  # one table per channel, stacked as rows c * levels + q
            tables = model.quant_emb.weight.view(-1, levels, levels)
            tables.copy_(eye.expand_as(tables))
        else:
            model.embedding.weight.copy_(eye)
        layer = model.layers[-1]
        assert layer.causal_left_pad == 2
        # Kernel index 0 of the time axis (last) is the older tap; spatial kernels (3-D) are 1x1.
        layer.conv_dilation.weight[:levels].view(levels, levels, -1)[..., 0] = 3 * eye
        layer.conv_dilation.bias[levels:] = 10.0
        layer.conv_skip.weight.view(levels, levels).copy_(eye)
        model.logits.transform[2].weight.view(levels, levels).copy_(eye)
        model.logits.transform[5].weight.view(levels, levels).copy_(eye)
    return model


def signal_with_bins(bins: torch.Tensor, mu: int) -> torch.Tensor:
    return torch.tensor([[mulaw_centre(channel, mu) for channel in batch] for batch in bins.tolist()])


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("use_cache", [True, False])
def test_forecast_follows_hand_set_weights(parallel, use_cache):
    levels = 8
    config = WavenetFullChannelConfig(
        in_channels=2,
        quant_levels=levels,
        quant_emb=levels,
        residual_channels=levels,
        dilation_channels=levels,
        skip_channels=levels,
        head_channels=levels,
        dilations=[1, 2],
        parallel_layers=parallel,
    )
    model = period_three_weights(AutoModel.from_config(config), levels)
    context_bins = torch.randint(0, levels, (2, 2, 10), generator=torch.Generator().manual_seed(3))
    out = model.forecast(signal_with_bins(context_bins, levels - 1), 7, GenerationConfig(use_cache=use_cache))
    expected = context_bins[..., -3:].repeat(1, 1, 3)[..., :7]
    assert torch.equal(out.codes, expected)
    torch.testing.assert_close(out.values, signal_with_bins(expected, levels - 1), rtol=1e-5, atol=1e-6)


def test_wavenet3d_forecast_follows_hand_set_weights_through_the_image():
    """Channels at their pixels forecast their own period-3 continuation; two channels on one pixel share the
    pixel, which holds the later channel's signal."""
    levels = 8
    config = Wavenet3DConfig(
        quant_levels=levels,
        quant_emb=levels,
        residual_channels=levels,
        dilation_channels=levels,
        skip_channels=levels,
        head_channels=levels,
        dilations=[1, 2],
        image_size=[2, 3],
    )
    model = period_three_weights(AutoModel.from_config(config), levels)
    rows, cols = [0, 0, 1, 0], [0, 2, 1, 0]  # channel 3 shares channel 0's pixel
    context_bins = torch.randint(0, levels, (2, 4, 8), generator=torch.Generator().manual_seed(4))
    for use_cache in (True, False):
        out = model.forecast(
            signal_with_bins(context_bins, levels - 1),
            5,
            GenerationConfig(use_cache=use_cache),
            row_idx=rows,
            col_idx=cols,
        )
        expected = context_bins[..., -3:].repeat(1, 1, 2)[..., :5]
        expected[:, 0] = expected[:, 3]
        assert torch.equal(out.codes, expected)
        torch.testing.assert_close(out.values, signal_with_bins(expected, levels - 1), rtol=1e-5, atol=1e-6)


def naive_greedy(model, ids, horizon, condition=None):
    """Greedy rollout of `ids (B, C, T)` running `forward` over the whole growing sequence (no window, no cache)."""
    for _ in range(horizon):
        cond = None if condition is None else condition[..., : ids.shape[-1]]
        ids = torch.cat([ids, model(ids, condition=cond).logits[:, :, -1:].argmax(-1)], dim=-1)
    return ids


@pytest.mark.parametrize("parallel", [False, True])
def test_streaming_forecast_matches_full_forward(parallel):
    """The streaming cache sees exactly what `forward` sees over the whole history, longer than the receptive field."""
    model = forecast_model(quant_emb=16, parallel_layers=parallel).eval()
    signal = forecast_signal(steps=5)  # shorter than the receptive field (8): zero padding as in forward
    with torch.no_grad():
        expected = naive_greedy(model, mulaw_encode(signal / 5.0, mu=Q - 1), 12)[..., 5:]
    assert torch.equal(model.forecast(signal, 12).codes, expected)
    assert torch.equal(model.forecast(signal, 12, GenerationConfig(use_cache=False)).codes, expected)


def test_class_conditioned_forecast():
    model = forecast_model(num_classes=3, class_emb=4).eval()
    signal = forecast_signal(batch=1, steps=10)
    condition = torch.ones(1, 1, 16, dtype=torch.long)
    out = model.forecast(signal, 6, condition=condition)
    with torch.no_grad():
        expected = naive_greedy(model, mulaw_encode(signal / 5.0, mu=Q - 1), 6, condition)[..., 10:]
    assert torch.equal(out.codes, expected)
    changed = condition.clone()
    changed[..., 12:] = 2
    other = model.forecast(signal, 6, condition=changed)
    assert torch.equal(other.codes[..., :3], out.codes[..., :3])  # steps 10..12 read conditions up to 12 - 1
    assert not torch.equal(other.codes, out.codes)
    with pytest.raises(ValueError, match=r"\(B, 1, T \+ horizon\) = \(1, 1, 16\)"):
        model.forecast(signal, 6, condition=condition[..., :10])
    with pytest.raises(ValueError, match="class-conditioned: pass `condition`"):
        model.forecast(signal, 6)
    with pytest.raises(ValueError, match="no class conditioning"):
        forecast_model().forecast(signal, 6, condition=condition)


def test_forecast_errors():
    model = forecast_model()
    signal = forecast_signal()
    with pytest.raises(ValueError, match="2 channels .* the model expects 3"):
        model.forecast(signal[:, :2], 4)
    with pytest.raises(ValueError, match="NaN"):
        model.forecast(signal.masked_fill(signal > 1, float("nan")), 4)
    for horizon in (0, -1, 1.5):
        with pytest.raises(ValueError, match="horizon must be a positive int"):
            model.forecast(signal, horizon)
    with pytest.raises(ValueError, match="floating-point signal"):
        model.forecast(signal.long(), 4)  # a forecast reads the signal, not mu-law ids
    named = forecast_model(channel_names=["x", "y", "z"])
    with pytest.raises(ValueError, match="do not match the model's `config.channel_names`"):
        named.forecast(signal, 4, channel_names=["x", "z", "y"])


def test_wavenet3d_forecast_needs_a_channel_layout():
    signal = forecast_signal(channels=4, steps=6)
    no_pixels = forecast_model_3d(row_idx=None, col_idx=None)
    with pytest.raises(ValueError, match="no channel layout.*row_idx.*col_idx"):
        no_pixels.forecast(signal, 2)
    no_size = forecast_model_3d(row_idx=None, col_idx=None, image_size=None)
    with pytest.raises(ValueError, match="image size is unknown.*config.image_size"):
        no_size.forecast(signal, 2, row_idx=[0, 1, 2, 2], col_idx=[0, 3, 1, 2])
    given = no_pixels.forecast(signal, 2, row_idx=[0, 1, 2, 2], col_idx=[0, 3, 1, 2])
    assert torch.equal(given.codes, forecast_model_3d().forecast(signal, 2).codes)  # same weights, same layout
    with pytest.raises(ValueError, match="outside the token image"):
        no_pixels.forecast(signal, 2, row_idx=[0, 1, 3, 2], col_idx=[0, 3, 1, 2])
    with pytest.raises(ValueError, match="go together"):
        no_pixels.forecast(signal, 2, row_idx=[0, 1, 2, 2])
    with pytest.raises(ValueError, match="4 channels but `config.row_idx`/`config.col_idx` place 3"):
        forecast_model_3d(row_idx=[0, 1, 2], col_idx=[0, 1, 2]).forecast(signal, 2)
    with pytest.raises(ValueError, match="need `image_size`"):
        Wavenet3DConfig(row_idx=[0], col_idx=[0])
    with pytest.raises(ValueError, match="fill_token"):
        Wavenet3DConfig(quant_levels=8, fill_token=8)


def test_wavenet3d_dense_condition_forecast():
    model = forecast_model_3d(cond_channels=2).eval()
    signal = forecast_signal(batch=1, channels=4, steps=6)
    condition = torch.randn(1, 2, 3, 4, 9, generator=torch.Generator().manual_seed(5))
    first = model.forecast(signal, 3, condition=condition)
    assert torch.equal(
        first.codes, model.forecast(signal, 3, GenerationConfig(use_cache=False), condition=condition).codes
    )
    with pytest.raises(ValueError, match=r"T \+ horizon"):
        model.forecast(signal, 3, condition=condition[..., :8])
    with pytest.raises(ValueError, match="exactly when the model has `cond_channels`"):
        model.forecast(signal, 3)
