"""BrainTokMix (paper tokenizer): model contract, parity with brain-gen vectors, k-means, streaming, causality."""

import pytest
import torch

from brain_gen_hf.models.braintokmix.configuration_braintokmix import BrainTokMixConfig
from tests import brain_tokenizer_checks as checks
from tests.model_contract import ModelContract
from tests.refvec import discover_cases, require_case

CASES = discover_cases({"BrainOmniCausalTokenizerSEANetChannelMix"})


def small_config(**overrides):
    kwargs = dict(
        window_length=8,
        n_filters=2,
        ratios=[2, 2],
        kernel_size=3,
        last_kernel_size=3,
        n_dim=8,
        n_neuro=2,
        codebook_dim=4,
        codebook_size=16,
        num_quantizers=2,
        num_sensors=4,
        lstm_layers=0,
        n_residual_layers=2,
        sampling_rate=100.0,
    )
    return BrainTokMixConfig(**{**kwargs, **overrides})


def small_inputs(batch=2, length=16, seed=1):
    g = torch.Generator().manual_seed(seed)
    return {"input_values": torch.randn(batch, 4, length, generator=g)}


def build(**overrides):
    torch.manual_seed(0)
    from transformers import AutoModel

    import brain_gen_hf  # noqa: F401

    return AutoModel.from_config(small_config(**overrides)).eval()


class TestBrainTokMixContract(ModelContract):
    output_key = "reconstruction"
    main_input = "input_values"
    causal = False  # causal at hop granularity only, and only in training mode: see test_causal_at_hop_level

    def build(self, seed: int = 0):
        # A tokenizer is used with initialised codebooks; initialising them here (explicitly, seeded) keeps the
        # saved folders independent of the RNG state at their first forward.
        model = super().build(seed)
        model.init_codebooks(**self.make_inputs(), seed=seed)
        return model

    def make_config(self):
        return small_config()

    def make_inputs(self):
        return small_inputs()

    def bad_inputs(self):
        x = small_inputs()["input_values"]
        return [
            ({"input_values": x[:, :3]}, "expects `num_sensors` = 4"),
            ({"input_values": x, "pos": torch.zeros(2, 3, 2)}, r"`pos` must describe \(2, 4\) channels"),
            ({"input_values": x, "sensor_type": torch.zeros(2, 5, dtype=torch.long)}, "`sensor_type` must describe"),
            ({"input_values": x, "sampling_rate": 250.0}, "sampling rate"),
            ({"input_values": x.masked_fill(x > 1, float("inf"))}, "NaN/inf"),
            ({"input_values": x[..., :12]}, "multiple of window_length"),
            ({"input_values": x.int()}, "floating-point"),
            ({"input_values": x[0]}, "3 dimensions"),
        ]


@pytest.mark.parametrize("case", CASES)
def test_parity_braintokmix_eval(case):
    checks.check_eval_parity(require_case(case))


@pytest.mark.parametrize("case", CASES)
def test_parity_braintokmix_train_step(case):
    checks.check_train_step_parity(require_case(case))


@pytest.mark.parametrize("explicit", [True, False], ids=["init_codebooks", "first_forward"])
@pytest.mark.parametrize("case", CASES)
def test_parity_braintokmix_kmeans_init(case, explicit):
    checks.check_kmeans_init_parity(require_case(case), explicit)


def test_streaming_encode_equals_whole_recording():
    model = build(lstm_layers=1)  # exercise the carried LSTM state too
    x = small_inputs(length=160)["input_values"]  # >= 4K rows for k-means: no duplicate codewords
    model.init_codebooks(x, seed=0)
    checks.check_streaming_matches_whole(model, x)


def test_causal_at_hop_level():
    model = build()
    x = small_inputs(batch=1)["input_values"]
    model.init_codebooks(x, seed=0)
    checks.check_hop_causality(model, x)


def test_no_leak_across_the_batch():
    checks.check_batch_independence(build(), small_inputs()["input_values"])


def test_codebooks_update_only_in_training():
    checks.check_codebook_updates_only_in_training(build(), small_inputs()["input_values"])


def test_explicit_codebook_init():
    checks.check_explicit_codebook_init(build(codebook_init="explicit"), small_inputs()["input_values"])


def test_api_for_token_lms(tmp_path):
    """What FlatGPT*RVQ relies on: codes layout, flat order, per-level codebook embeddings, Auto round trip."""
    model = build()
    x = small_inputs()["input_values"]
    cfg = model.config
    with torch.no_grad():
        enc = model.encode(x)
    assert enc.codes.shape == (2, cfg.n_neuro, 4, cfg.num_quantizers) and enc.codes.dtype == torch.long
    assert enc.embeddings.shape == (2, cfg.n_neuro, 4, cfg.token_dim)
    flat = model.flatten_codes(enc.codes)
    w, c, q = 2, 1, 1  # flat index = (w * n_neuro + c) * Q + q
    assert flat[0, (w * cfg.n_neuro + c) * cfg.num_quantizers + q] == enc.codes[0, c, w, q]
    table = model.codebook_embeddings()
    assert table.shape == (cfg.num_quantizers, cfg.codebook_size, cfg.token_dim)
    summed = sum(table[level][enc.codes[..., level]] for level in range(cfg.num_quantizers))
    torch.testing.assert_close(summed, enc.embeddings, rtol=1e-5, atol=1e-6)  # other op shapes: up to rounding
    with torch.no_grad():
        signal = model.decode(flat)
    assert signal.shape == x.shape
    model.save_pretrained(tmp_path)
    from transformers import AutoModel

    reloaded = AutoModel.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        assert torch.equal(reloaded.encode(x).codes, enc.codes)
        torch.testing.assert_close(reloaded.decode(flat), signal, rtol=0, atol=0)


def test_decode_rejects_bad_codes():
    model = build()
    with torch.no_grad():
        codes = model(**small_inputs()).codes
    checks.check_decode_rejects_bad_codes(model, codes)


def test_config_validation_errors():
    with pytest.raises(ValueError, match="divisible by `n_neuro`"):
        small_config(n_neuro=3)
    with pytest.raises(ValueError, match="multiple of the downsampling"):
        small_config(window_length=6)
    with pytest.raises(ValueError, match="`num_sensors` is 4"):
        small_config(channel_names=["a", "b", "c"])
    with pytest.raises(ValueError, match="ratios"):
        small_config(ratios=[])
