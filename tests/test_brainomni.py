"""BrainOmni causal tokenizer: model contract, parity with brain-gen vectors, k-means, streaming, causality."""

import pytest
import torch

from brain_gen_hf.models.brainomni.configuration_brainomni import BrainOmniCausalTokenizerConfig
from tests import brain_tokenizer_checks as checks
from tests.model_contract import ModelContract
from tests.refvec import discover_cases, require_case

CASES = discover_cases({"BrainOmniCausalTokenizer"})


def small_config(**overrides):
    kwargs = dict(
        window_length=8,
        n_filters=2,
        ratios=[2, 2],
        kernel_size=3,
        last_kernel_size=3,
        n_dim=8,
        n_neuro=3,
        n_head=2,
        codebook_dim=8,
        codebook_size=16,
        num_quantizers=2,
        num_sensors=8,
        lstm_layers=1,
        sampling_rate=100.0,
    )
    return BrainOmniCausalTokenizerConfig(**{**kwargs, **overrides})


def small_inputs(batch=2, channels=3, length=16, seed=1):
    g = torch.Generator().manual_seed(seed)
    return {
        "input_values": torch.randn(batch, channels, length, generator=g),
        "pos": torch.randn(batch, channels, 2, generator=g),
        "sensor_type": torch.zeros(batch, channels, dtype=torch.long),
    }


def build(**overrides):
    torch.manual_seed(0)
    from transformers import AutoModel

    import brain_gen_hf  # noqa: F401

    return AutoModel.from_config(small_config(**overrides)).eval()


class TestBrainOmniContract(ModelContract):
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
        x, pos, st = small_inputs().values()
        return [
            ({"input_values": x, "pos": pos[:, :2], "sensor_type": st}, r"`pos` describes 2 channels"),
            ({"input_values": x, "pos": pos, "sensor_type": st[:, :2]}, r"`sensor_type` has shape"),
            ({"input_values": x}, "missing sensor metadata"),
            ({"input_values": x, "pos": pos, "sensor_type": st, "sampling_rate": 250.0}, "sampling rate"),
            ({"input_values": x.masked_fill(x > 1, float("nan")), "pos": pos, "sensor_type": st}, "NaN"),
            ({"input_values": x[..., :12], "pos": pos, "sensor_type": st}, "multiple of window_length"),
            ({"input_values": x.long(), "pos": pos, "sensor_type": st}, "floating-point"),
            ({"input_values": x[..., :0], "pos": pos, "sensor_type": st}, "empty"),
            ({"input_values": x, "pos": pos, "sensor_type": st + 5}, "outside the vocabulary"),
        ]


@pytest.mark.parametrize("case", CASES)
def test_parity_brainomni_eval(case):
    checks.check_eval_parity(require_case(case))


@pytest.mark.parametrize("case", CASES)
def test_parity_brainomni_train_step(case):
    checks.check_train_step_parity(require_case(case))


@pytest.mark.parametrize("explicit", [True, False], ids=["init_codebooks", "first_forward"])
@pytest.mark.parametrize("case", CASES)
def test_parity_brainomni_kmeans_init(case, explicit):
    checks.check_kmeans_init_parity(require_case(case), explicit)


def test_streaming_encode_equals_whole_recording():
    model = build()
    # enough rows (>= 4K) that k-means samples without replacement: no duplicate codewords, whose ids would
    # be interchangeable under float rounding
    x, pos, st = small_inputs(length=96).values()
    model.init_codebooks(x, pos, st, seed=0)
    checks.check_streaming_matches_whole(model, x, pos, st)


def test_causal_at_hop_level():
    model = build()
    x, pos, st = small_inputs(batch=1, channels=4, length=16).values()
    model.init_codebooks(x, pos, st, seed=0)
    checks.check_hop_causality(model, x, pos, st)


def test_no_leak_across_the_batch():
    model = build()
    checks.check_batch_independence(model, *small_inputs().values())


def test_codebooks_update_only_in_training_and_are_never_reinitialised(tmp_path):
    model = build()
    inputs = small_inputs()
    checks.check_codebook_updates_only_in_training(model, *inputs.values())
    model.save_pretrained(tmp_path)
    from transformers import AutoModel

    reloaded = AutoModel.from_pretrained(tmp_path)
    for key, value in model.state_dict().items():
        if "._codebook." in key:
            assert torch.equal(reloaded.state_dict()[key], value), key


def test_explicit_codebook_init():
    checks.check_explicit_codebook_init(build(codebook_init="explicit"), *small_inputs().values())


def test_auto_round_trip_gives_identical_codes(tmp_path):
    model = build()
    x, pos, st = small_inputs().values()
    with torch.no_grad():
        codes = model.encode(x, pos, st).codes
    model.save_pretrained(tmp_path)
    from transformers import AutoModel

    reloaded = AutoModel.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        assert torch.equal(reloaded.encode(x, pos, st).codes, codes)
        torch.testing.assert_close(reloaded.decode(codes, pos, st), model.decode(codes, pos, st), rtol=0, atol=0)


def test_metadata_from_the_signal_contract():
    """Positions/types stored in the config replace per-call metadata (sensor space)."""
    positions = [[0.1 * c, 0.0, 0.05] for c in range(3)]
    orientations = [[0.0, 0.0, 1.0]] * 3
    model = build(
        sensor_space="sensor", sensor_positions=positions, sensor_orientations=orientations, sensor_type_ids=[0, 1, 2]
    )
    x = small_inputs()["input_values"]
    pos = torch.tensor([p + o for p, o in zip(positions, orientations)]).expand(2, -1, -1)
    st = torch.tensor([0, 1, 2]).expand(2, -1)
    with torch.no_grad():
        explicit = model(x, pos, st)
        implicit = model(x)
        torch.testing.assert_close(implicit.reconstruction, explicit.reconstruction, rtol=0, atol=0)
        torch.testing.assert_close(model.decode(implicit.codes), model.decode(implicit.codes, pos, st), rtol=0, atol=0)
    with pytest.raises(ValueError, match="6 numbers per sensor"):
        model(x, pos[..., :2], st)


def test_decode_rejects_bad_codes():
    model = build()
    x, pos, st = small_inputs().values()
    with torch.no_grad():
        codes = model(x, pos, st).codes
    checks.check_decode_rejects_bad_codes(model, codes, pos, st)
    with pytest.raises(ValueError, match="missing sensor metadata"):
        model.decode(codes)


def test_short_window_mode():
    model = build()
    x, pos, st = small_inputs(length=4).values()
    with torch.no_grad():
        out = model(x, pos, st, allow_shorter_windows=True)
        assert out.reconstruction.shape == (2, 3, 4) and out.codes.shape == (2, 3, 1, 2)
        assert model.decode(out.codes, pos, st, tokens_per_window=1).shape == (2, 3, 4)
    with pytest.raises(ValueError, match="multiple of the hop"):
        model(x[..., :3], pos, st, allow_shorter_windows=True)


def test_config_validation_errors():
    with pytest.raises(ValueError, match="multiple of the downsampling"):
        small_config(window_length=10, ratios=[2, 2])
    with pytest.raises(ValueError, match="divisible by `n_head`"):
        small_config(n_head=3)
    with pytest.raises(ValueError, match="sensor_space"):
        small_config(sensor_space="scalp")
    with pytest.raises(ValueError, match="codebook_init"):
        small_config(codebook_init="lazy")
    with pytest.raises(ValueError, match="slots"):
        small_config(num_sensors=2, channel_names=["a", "b", "c"])
    with pytest.raises(ValueError, match="sensor_type_ids"):
        small_config(sensor_type_ids=[0, 3])


def test_chunked_decode_equals_unchunked():
    model = build(decode_window_chunk=1)
    x, pos, st = small_inputs(length=32).values()
    with torch.no_grad():
        codes = model(x, pos, st).codes
        chunked = model.decode(codes, pos, st)
        model.config.decode_window_chunk = None  # default: every window at once for this short input
        whole = model.decode(codes, pos, st)
    assert chunked.shape == x.shape
    torch.testing.assert_close(chunked, whole, rtol=0, atol=1e-7)
