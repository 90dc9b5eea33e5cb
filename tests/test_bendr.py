"""BENDRForecast: model contract, the fixed causality and batch independence, forecast, and parity
with brain-gen vectors (conv encoder directly; the rest through the reference's wiring rebuilt from our
modules, which isolates the documented fixes)."""

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModel, GenerationConfig, TemperatureLogitsWarper

from brain_gen_hf.conversion import config_from_reference, convert_reference_checkpoint
from brain_gen_hf.models.bendr.causal_norm import CumulativeGroupNorm
from brain_gen_hf.models.bendr.configuration_bendr import BENDRForecastConfig
from tests.model_contract import ModelContract
from tests.refvec import assert_float_close, discover_cases, require_case

C, SAMPLES = 3, 32


def small_config(**overrides):
    kwargs = dict(
        channels=C,
        samples=SAMPLES,
        encoder_h=16,
        enc_width=[3, 2],
        enc_downsample=[2, 2],
        transformer_layers=2,
        attn_heads=2,
        dropout=0.0,
        position_encoder=5,
    )
    return BENDRForecastConfig(**{**kwargs, **overrides})


def signal(batch=2, steps=SAMPLES, seed=1):
    return torch.randn(batch, C, steps, generator=torch.Generator().manual_seed(seed))


def build(seed=0, **overrides):
    torch.manual_seed(seed)
    return AutoModel.from_config(small_config(**overrides)).eval()


class TestBENDRForecastContract(ModelContract):
    output_key = "prediction"
    main_input = "input_values"
    causal = True
    causal_input_key = None  # differentiate against the raw signal
    causal_output_time_dim = -1
    causal_input_time_dim = -1

    def make_config(self):
        return small_config()

    def make_inputs(self):
        x = signal()
        return {"input_values": x, "labels": x.clone()}  # prediction[..., t] estimates x[..., t] from earlier samples

    def bad_inputs(self):
        x = signal()
        return [
            ({"input_values": x[:, :2]}, "2 channels"),
            ({"input_values": x.long()}, "floating-point"),
            ({"input_values": x.masked_fill(x > 1.5, float("inf"))}, "NaN/inf"),
            ({"input_values": x[0]}, "3 dimensions"),
            ({"input_values": x[..., :0]}, "empty"),
            ({"input_values": x[..., :3]}, "at least 4"),
            ({"input_values": x, "labels": x[..., :5]}, "labels must have the prediction's shape"),
        ]


def test_prediction_sees_only_earlier_samples():
    """prediction[..., t] depends exactly on the samples before t's encoder step (ds = 4 here)."""
    model = build()
    x = signal(batch=1).requires_grad_(True)
    prediction = model(x).prediction
    ds = model.config.downsampling
    for t in range(prediction.shape[-1]):
        (grad,) = torch.autograd.grad(prediction[..., t].sum(), x, retain_graph=True)
        seen = torch.nonzero(grad[0].abs().sum(0)).flatten().tolist()
        assert seen == list(range(ds * (t // ds))), (t, seen)


@pytest.mark.parametrize("changed", [0, 1])
def test_batch_items_are_independent(changed):
    """The reference attended across the batch (item 1 saw item 0); here neither sees the other."""
    model = build()
    x = signal()
    other = x.clone()
    other[changed] = torch.randn(C, SAMPLES)
    with torch.no_grad():
        a, b = model(x), model(other)
    kept = 1 - changed
    # Up to float rounding (CPU kernels may depend on memory layout); a leak would move it by far more.
    torch.testing.assert_close(b.prediction[kept], a.prediction[kept], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(b.features[kept], a.features[kept], rtol=1e-5, atol=1e-6)
    assert (b.prediction[changed] - a.prediction[changed]).abs().max() > 1e-4


def test_encode_and_output_dim():
    model = build()
    x = signal()
    features = model.encode(x)
    steps = model.config.context_length // model.config.downsampling
    assert model.output_dim == 16
    assert features.shape == (2, model.output_dim, steps + 1)
    with torch.no_grad():
        torch.testing.assert_close(model(x).features, features, rtol=0, atol=0)
    # Samples past `context_length` are never read (the crop is a view with other strides: equal up to rounding).
    longer = torch.cat([x, 100 * torch.randn(2, C, 9)], dim=-1)
    torch.testing.assert_close(model.encode(longer), features, rtol=1e-5, atol=1e-6)


def test_initialisation_follows_bendr():
    """T-Fixup linears (Xavier x 0.67 * layers^-1/4, zero bias); position conv v ~ N(0, 2/d), g = |v|, zero bias."""
    model = build(transformer_layers=2)
    fc1 = model.contextualiser.transformer_layers[0].mlp.fc1
    bound = 0.67 * 2**-0.25 * (6 / sum(fc1.weight.shape)) ** 0.5
    assert fc1.weight.abs().max() <= bound and fc1.weight.abs().max() > 0.9 * bound
    assert fc1.bias.abs().max() == 0
    conv = model.contextualiser.relative_position[0]
    direction = conv.parametrizations.weight.original1
    assert abs(direction.std().item() - 2 / model.config.d_model) < 0.2 * 2 / model.config.d_model
    torch.testing.assert_close(conv.weight, direction)  # g starts at |v|
    assert conv.bias.abs().max() == 0


def test_cumulative_group_norm_is_group_norm_of_every_prefix():
    torch.manual_seed(0)
    norm = CumulativeGroupNorm(4, 8)
    torch.nn.init.normal_(norm.weight)
    torch.nn.init.normal_(norm.bias)
    plain = torch.nn.GroupNorm(4, 8)
    plain.load_state_dict(norm.state_dict())
    x = torch.randn(2, 8, 10) * 3 + 1
    out = norm(x)
    for t in range(10):
        torch.testing.assert_close(out[..., t], plain(x[..., : t + 1])[..., -1], rtol=1e-5, atol=1e-5)


def test_forecast_appends_one_step_predictions():
    model = build()
    x = signal()
    context = x[..., :14]  # not a whole number of encoder steps: windows use the latest 12 samples
    out = model.forecast(context, 3).values
    assert out.shape == (2, C, 3)
    with torch.no_grad():
        first = model(context[..., -12:]).prediction[..., 12]
        # the second step reads the latest 12 samples of context + first prediction
        second = model(torch.cat([context, first[..., None]], dim=-1)[..., -12:]).prediction[..., 12]
    torch.testing.assert_close(out[..., 0], first, rtol=0, atol=0)
    torch.testing.assert_close(out[..., 1], second, rtol=1e-5, atol=1e-6)
    # Deterministic: a greedy GenerationConfig is accepted (use_cache has nothing to cache), sampling is refused.
    greedy = model.forecast(context, 3, GenerationConfig(do_sample=False, use_cache=True)).values
    torch.testing.assert_close(greedy, out, rtol=0, atol=0)
    with pytest.raises(ValueError, match="do_sample=False"):
        model.forecast(context, 3, GenerationConfig(do_sample=True, top_k=5))
    with pytest.raises(ValueError, match="logits processors do not apply"):
        model.forecast(context, 3, logits_processor=[TemperatureLogitsWarper(0.5)])
    with pytest.raises(ValueError, match="horizon"):
        model.forecast(context, 0)
    with pytest.raises(ValueError, match="at least 4"):
        model.forecast(context[..., :2], 1)
    with pytest.raises(TypeError, match="'return_context'"):
        model.forecast(context, 3, return_context=False)


def test_config_validation_errors():
    with pytest.raises(ValueError, match="one entry per stage"):
        small_config(enc_width=[3, 2, 2])
    with pytest.raises(ValueError, match="at least its stride"):
        small_config(enc_width=[1, 2])
    with pytest.raises(ValueError, match="divisible by `attn_heads`"):
        small_config(attn_heads=5)
    with pytest.raises(ValueError, match="position_groups"):
        small_config(encoder_h=24)
    with pytest.raises(ValueError, match="encoder_norm"):
        small_config(encoder_norm="batch")
    with pytest.raises(ValueError, match="two encoder steps"):
        small_config(samples=7)
    with pytest.raises(ValueError, match="4 channels but `channels` is 3"):
        small_config(channel_names=["a", "b", "c", "d"])


def test_reference_kwargs_map_to_typed_fields():
    kwargs = dict(
        channels=4,
        samples=64,
        encoder_h=16,
        enc_width=[3, 2, 2],
        enc_downsample=[2, 2, 1],
        attn_args={"nheads": 4, "dropout": 0.1, "d_model": 48},
        mlp_args={"dropout": 0.2, "d_ff": 64},
    )
    config = config_from_reference("BENDRForecast", kwargs)
    assert (config.attn_heads, config.attn_dropout, config.d_model) == (4, 0.1, 48)
    assert (config.mlp_dropout, config.mlp_d_ff) == (0.2, 64)
    with pytest.raises(ValueError, match="unsupported reference attn_args keys"):
        config_from_reference("BENDRForecast", {**kwargs, "attn_args": {"nheads": 4, "sinks": 1}})
    with pytest.raises(ValueError, match="mlp_type"):
        config_from_reference("BENDRForecast", {**kwargs, "mlp_type": "moe"})


# ---------------------------------------------------------------------------------------------- parity


def reference_wiring(model, x):
    """brain-gen's BENDRForecast forward rebuilt from our modules with the reference's wiring: centred
    position conv, blocks fed `(T + 1, B, d)` (attention across the batch), decoder cropping the first
    `width - 1` samples. Needs `encoder_norm="reference"`. Returns (features, prediction)."""
    ctx, cfg = model.contextualiser, model.config
    z = model.encoder(x[..., : cfg.context_length])
    half = ctx.position_kernel // 2
    z = z + ctx.relative_position(F.pad(z, (half, half)))
    h = ctx.input_conditioning(z).transpose(0, 1)  # (T', B, d)
    h = torch.cat([h.new_full((1, *h.shape[1:]), cfg.start_token), h], dim=0)
    for layer in ctx.transformer_layers:
        h = layer(h, is_causal=True)
    features = ctx.output_layer(h.permute(1, 2, 0))
    y = features
    for width, conv, act in zip(cfg.enc_width[::-1], model.project.conv_stack[0::2], model.project.conv_stack[1::2]):
        y = act(conv(y)[..., width - 1 :])
    return features, model.project.to_raw(y)


@pytest.mark.parametrize("case", discover_cases({"BENDRForecast"}))
def test_parity_bendr(case, tmp_path):
    case = require_case(case)
    model = convert_reference_checkpoint(
        case.registry_name, case.model_kwargs, case.state_dict, encoder_norm="reference"
    )
    model.save_pretrained(tmp_path)
    model = AutoModel.from_pretrained(tmp_path).eval()  # non-persistent buffers rebuilt after loading
    for key, expected in case.outputs.items():
        if key.startswith("nonpersistent_buffer."):
            # Recorded in another process: transcendental kernels may round differently on another CPU.
            torch.testing.assert_close(
                model.get_buffer(key[len("nonpersistent_buffer.") :]), expected, rtol=1e-6, atol=1e-7
            )
    x = case.inputs["x"]
    cfg = model.config
    with torch.no_grad():
        assert_float_close(model.encoder(x[..., : cfg.context_length]), case.outputs["conv_encoder"], "conv_encoder")
        features, prediction = reference_wiring(model, x)
        assert_float_close(features, case.outputs["encode"], "encode (reference wiring)")
        assert_float_close(prediction, case.outputs["forward"], "forward (reference wiring)")
        assert_float_close(
            F.mse_loss(prediction, x[..., : prediction.shape[-1]]),
            case.outputs["loss_MSE_vs_input_prefix"],
            "loss (reference wiring)",
        )
        # The reference forecast: predict from the last `context_length` samples, append the last output.
        context = x[..., :40]
        sequence = context
        for _ in range(case.outputs["forecast"].shape[-1] - context.shape[-1]):
            step = reference_wiring(model, sequence[..., -cfg.context_length :])[1][..., -1:]
            sequence = torch.cat([sequence, step], dim=-1)
        assert_float_close(sequence, case.outputs["forecast"], "forecast (reference wiring)")
        # The fixed model differs from the reference exactly by those wiring fixes.
        out = model(x)
        assert (out.prediction - case.outputs["forward"]).abs().max() > 1e-3
