"""BrainOmni causal forecaster: contract, parity with brain-gen vectors, KV-cached rollouts, causality."""

import pytest
import torch
from transformers import GenerationConfig

from brain_gen_hf.models.brainomni.configuration_brainomni import BrainOmniCausalTokenizerConfig
from brain_gen_hf.models.brainomni_forecast.configuration_brainomni_forecast import BrainOmniCausalForecastConfig
from tests import brain_tokenizer_checks as checks
from tests.model_contract import ModelContract
from tests.refvec import assert_float_close, discover_cases, require_case

CASES = discover_cases({"BrainOmniCausalForecast"})


def small_config(**overrides):
    tokenizer = BrainOmniCausalTokenizerConfig(
        window_length=8,
        n_filters=2,
        ratios=[2],
        kernel_size=3,
        last_kernel_size=3,
        n_dim=8,
        n_neuro=2,
        n_head=2,
        codebook_dim=8,
        codebook_size=16,
        num_quantizers=2,
        num_sensors=8,
        lstm_layers=1,
        sampling_rate=100.0,
    )
    return BrainOmniCausalForecastConfig(
        **{"tokenizer_config": tokenizer, "lm_dim": 16, "lm_head": 2, "lm_depth": 2, **overrides}
    )


def small_inputs(batch=2, length=16, seed=1):
    g = torch.Generator().manual_seed(seed)
    return {
        "input_values": torch.randn(batch, 3, length, generator=g),
        "pos": torch.randn(batch, 3, 2, generator=g),
        "sensor_type": torch.zeros(batch, 3, dtype=torch.long),
    }


def build(**overrides):
    torch.manual_seed(0)
    from transformers import AutoModel

    import brain_gen_hf  # noqa: F401

    model = AutoModel.from_config(small_config(**overrides)).eval()
    model.tokenizer.init_codebooks(**small_inputs(length=64), seed=0)
    return model


class TestBrainOmniForecastContract(ModelContract):
    output_key = "logits"
    main_input = "input_values"
    causal = False  # see test_forecaster_is_causal_in_time / test_end_to_end_causality

    def build(self, seed: int = 0):
        model = super().build(seed)  # codebooks initialised explicitly: saved folders do not depend on the RNG
        model.tokenizer.init_codebooks(**small_inputs(length=64), seed=seed)
        return model

    def make_config(self):
        return small_config()

    def make_inputs(self):
        return small_inputs()

    def bad_inputs(self):
        x, pos, st = small_inputs().values()
        return [
            ({"input_values": x}, "missing sensor metadata"),
            ({"input_values": x, "pos": pos[:, :2], "sensor_type": st}, "`pos` describes 2 channels"),
            ({"input_values": x, "pos": pos, "sensor_type": st, "sampling_rate": 1.0}, "sampling rate"),
            ({"input_values": x * float("nan"), "pos": pos, "sensor_type": st}, "NaN"),
            ({"input_values": x[..., :10], "pos": pos, "sensor_type": st}, "multiple of window_length"),
            ({"input_values": x[..., :2], "pos": pos, "sensor_type": st, "allow_shorter_windows": True}, "at least 2"),
        ]


def _converted(case):
    return checks.converted(case)


@pytest.mark.parametrize("case", CASES)
def test_parity_forecast_logits_and_loss(case):
    case = require_case(case)
    model, out = _converted(case), case.outputs
    x, pos, st = checks.metadata(case)
    with torch.no_grad():
        encoding = model.tokenizer.encode(x, pos, st)
        assert torch.equal(encoding.codes, out["tokenize.indices"])
        assert_float_close(encoding.embeddings, out["tokenize.embeddings"], "tokenize.embeddings")
        logits = model.logits_from_embeddings(encoding.embeddings[:, :, :-1])
        assert_float_close(logits, out["forward_token_sequence.logits"], "forward_token_sequence.logits")
        full = model.logits_from_embeddings(encoding.embeddings)
        assert_float_close(full, out["forward_token_sequence.logits_full_no_targets"], "logits_full_no_targets")
        result = model(x, pos, st)
    assert_float_close(result.logits, out["forward_token_sequence.logits"], "forward.logits")
    assert torch.equal(result.targets, out["forward_token_sequence.targets"])
    assert_float_close(result.cross_entropy, out["loss_BrainOmniCausalForecastLoss"], "forecast loss")
    assert_float_close(result.accuracy, out["metric_accuracy"], "metric_accuracy")
    torch.testing.assert_close(result.loss, result.cross_entropy + result.commitment_loss)


@pytest.mark.parametrize("case", CASES)
def test_parity_forecast_rollout(case):
    """The recorded rollout (reference semantics, argmax, 3 steps) from our pieces, and our fixed forecast."""
    case = require_case(case)
    model, out = _converted(case), case.outputs
    x, pos, st = checks.metadata(case)
    recorded = out["forecast_via_tokenize_shim"]
    with torch.no_grad():
        codes = model.tokenizer.encode(x, pos, st).codes
        tokens_per_window = model.tokenizer.config.tokens_per_window
        for _ in range(3):  # the reference predicts from a sequence padded to whole windows (its bug)
            padded_len = -(-codes.shape[2] // tokens_per_window) * tokens_per_window
            padded = torch.cat([codes, codes[:, :, -1:].expand(-1, -1, padded_len - codes.shape[2], -1)], dim=2)
            logits = model.logits_from_embeddings(model.tokenizer.codes_to_embeddings(padded))
            codes = torch.cat([codes, logits[:, :, -1].argmax(-1).unsqueeze(2)], dim=2)
        assert_float_close(model.tokenizer.decode(codes, pos, st), recorded, "forecast_via_tokenize_shim")
        # Without padding in the way (first step) the fixed forecast agrees with the recording.
        hop = model.tokenizer.hop_length
        one = model.forecast(x, hop, pos=pos, sensor_type=st)
    signal = torch.cat([one.context_reconstruction, one.values], dim=-1)
    assert signal.shape[-1] == x.shape[-1] + hop
    assert_float_close(signal, recorded[..., : signal.shape[-1]], "forecast (1 step)")


@pytest.mark.parametrize("case", CASES)
def test_parity_forecast_tokenizer_kmeans_init(case):
    case = require_case(case)
    model = _converted(case)
    for layer in model.tokenizer.quantizer.rvq.layers:
        for buffer in (
            layer._codebook.embed,
            layer._codebook.embed_avg,
            layer._codebook.cluster_size,
            layer._codebook.inited,
        ):
            buffer.zero_()
    model.tokenizer.init_codebooks(*checks.metadata(case, "codebook_init."), seed=case.procedure_seed("k-means init"))
    state = model.state_dict()
    keys = [k for k in case.state_dict if "._codebook." in k]
    assert keys
    for key in keys:
        assert_float_close(state[key], case.state_dict[key], key)


def test_cached_rollout_equals_recomputed():
    model = build()
    inputs = small_inputs()
    hop = model.tokenizer.hop_length
    cached = model.forecast(**inputs, horizon=5 * hop)
    recomputed = model.forecast(**inputs, horizon=5 * hop, generation_config=GenerationConfig(use_cache=False))
    assert torch.equal(cached.codes, recomputed.codes)
    torch.testing.assert_close(cached.values, recomputed.values, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(cached.context_reconstruction, recomputed.context_reconstruction, rtol=1e-5, atol=1e-6)
    assert cached.context_reconstruction.shape == (2, 3, 16) and cached.values.shape == (2, 3, 5 * hop)
    sampling = {"do_sample": True, "temperature": 0.8, "top_k": 5, "top_p": 0.9}
    torch.manual_seed(7)
    sampled = model.forecast(**inputs, horizon=4 * hop, generation_config=GenerationConfig(**sampling))
    torch.manual_seed(7)
    again = model.forecast(**inputs, horizon=4 * hop, generation_config=GenerationConfig(**sampling, use_cache=False))
    assert torch.equal(sampled.codes, again.codes)
    assert not model.training


def test_horizon_in_samples_rounds_the_rollout_up_to_whole_token_steps():
    model = build()
    inputs = small_inputs()
    hop = model.tokenizer.hop_length
    assert hop == 2
    whole = model.forecast(**inputs, horizon=4)  # two token steps
    partial = model.forecast(**inputs, horizon=3)  # also two steps, the last one's second sample dropped
    assert whole.codes.shape == partial.codes.shape == (2, 2, 2, 2)
    assert torch.equal(whole.codes, partial.codes)
    assert partial.values.shape == (2, 3, 3)
    torch.testing.assert_close(partial.values, whole.values[..., :3], rtol=1e-5, atol=1e-6)
    one = model.forecast(**inputs, horizon=1)
    assert one.codes.shape == (2, 2, 1, 2) and torch.equal(one.codes, whole.codes[:, :, :1])


def test_forecaster_is_causal_in_time():
    model = build()
    embeddings = torch.randn(1, 2, 6, 8, requires_grad=True)
    model.logits_from_embeddings(embeddings)[:, :, :4].sum().backward()
    assert embeddings.grad[:, :, :4].abs().sum() > 0
    torch.testing.assert_close(
        embeddings.grad[:, :, 4:], torch.zeros_like(embeddings.grad[:, :, 4:]), rtol=0, atol=1e-5
    )


def test_end_to_end_causality():
    """Training mode: the logits never see the last hop of the input (its token is only a target)."""
    model = build().train()
    inputs = small_inputs(batch=1, length=32)
    x = inputs.pop("input_values").clone().requires_grad_(True)
    model(x, **inputs).logits.sum().backward()
    hop = model.tokenizer.hop_length
    assert x.grad[..., :-hop].abs().sum() > 0
    torch.testing.assert_close(x.grad[..., -hop:], torch.zeros_like(x.grad[..., -hop:]), rtol=0, atol=1e-5)


def test_num_quantizers_used_is_honoured():
    model = build(num_quantizers_used=1)
    inputs = small_inputs()
    out = model(**inputs)
    assert out.logits.shape == (2, 2, 7, 1, 16) and out.targets.shape == (2, 2, 7, 1)
    rollout = model.forecast(**inputs, horizon=2 * model.tokenizer.hop_length)
    # the second level is carried over from the last context step
    assert torch.equal(rollout.codes[:, :, -2:, 1], out.codes[:, :, -1:, 1].expand(-1, -1, 2))


def test_frozen_tokenizer_gets_no_gradient_and_no_commitment():
    model = build(freeze_tokenizer=True).train()
    out = model(**small_inputs())
    assert out.commitment_loss is None
    out.loss.backward()
    assert all(p.grad is None for p in model.tokenizer.parameters())
    assert model.predict_head.weight.grad is not None
    assert model.tokenizer.training  # the frozen tokenizer runs in eval mode only inside the call


def test_tokenizer_is_saved_in_the_same_folder(tmp_path):
    model = build()
    with torch.no_grad():  # move every weight off its init value: loading must not re-initialise any of them
        for param in model.parameters():
            param.add_(0.01 * torch.randn_like(param))
    model.save_pretrained(tmp_path)
    from transformers import AutoModel

    reloaded = AutoModel.from_pretrained(tmp_path).eval()
    for key, value in model.state_dict().items():
        assert torch.equal(reloaded.state_dict()[key], value), key
    assert type(reloaded.tokenizer) is type(model.tokenizer)
    saved, original = reloaded.config.tokenizer_config.to_dict(), model.config.tokenizer_config.to_dict()
    saved.pop("dtype"), original.pop("dtype")  # loading records the weights' dtype
    assert saved == original
    inputs = small_inputs()
    assert torch.equal(reloaded.forecast(**inputs, horizon=6).codes, model.forecast(**inputs, horizon=6).codes)


def test_config_validation_errors():
    with pytest.raises(ValueError, match="exceeds the tokenizer"):
        small_config(num_quantizers_used=3)
    with pytest.raises(ValueError, match="lm_head"):
        small_config(lm_head=3)
    with pytest.raises(ValueError, match="overlap_ratio"):
        small_config(overlap_ratio=0.5)
    with pytest.raises(ValueError, match="horizon"):
        build().forecast(**small_inputs(), horizon=0)
