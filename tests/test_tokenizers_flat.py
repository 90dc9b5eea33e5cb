"""Amplitude, channel-mix and delimited tokenizers: reference parity, HF round trips, the bulk
path against the `tokenizers` path, forecasting strips and input validation."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

import brain_gen_hf  # noqa: F401  (registers the tokenizers with AutoTokenizer)
from brain_gen_hf.tokenizers import (
    AmplitudeMixTokenizer,
    AmplitudeTokenizer,
    DelimitedTokenizer,
)
from brain_gen_hf.tokenizers.mulaw import mulaw_decode, mulaw_encode
from tests.conftest import refvec_root
from tests.refvec import RefCase, require_case

# The reference's class name (meta.json "class") -> ours
REFERENCE_CLASSES = {
    "AmplitudeTokenizer": AmplitudeTokenizer,
    "AmplitudeTokenizerMix": AmplitudeMixTokenizer,
    "DelimitedTokenizer": DelimitedTokenizer,
}
TOKENIZER_CLASSES = (AmplitudeTokenizer, AmplitudeMixTokenizer, DelimitedTokenizer)


def _flat_tokenizer_cases():
    root = refvec_root()
    cases = []
    if root.exists():
        for meta_path in sorted(root.glob("*/meta.json")):
            meta = json.loads(meta_path.read_text())
            if meta.get("class", "").startswith("brain_gen.models.tokenizers.flat_tokenizers."):
                cases.append(pytest.param(RefCase(meta_path.parent, meta), id=meta_path.parent.name))
    return cases or [pytest.param(None, id="refvec-missing")]


def _reduced_shape(model_kwargs):
    t, h, w = model_kwargs["input_shape"]
    spatial = model_kwargs.get("spatial_reduction", 1)
    sh, sw = (spatial, spatial) if isinstance(spatial, int) else spatial
    return (t // model_kwargs.get("temporal_reduction", 1), h // sh, w // sw)


def _random_signal(batch=3, channels=4, steps=17, seed=0):
    """Gaussian signal with the extremes forced in: beyond +-1, exactly +-1, +-0.999 and 0."""
    x = torch.randn(batch, channels, steps, generator=torch.Generator().manual_seed(seed)) * 0.6
    extremes = torch.tensor([-50.0, -1.0, -0.999, 0.0, 0.999, 1.0, 50.0])
    x[0].view(-1)[: extremes.numel()] = extremes
    return x


# ------------------------------------------------------------------------------------ parity


@pytest.mark.parametrize("case", _flat_tokenizer_cases())
def test_parity_flat_tokenizer(case):
    case = require_case(case)
    reference_name = case.meta["class"].rsplit(".", 1)[1]
    tokenizer = REFERENCE_CLASSES[reference_name].from_model_kwargs(**case.model_kwargs)
    x, codes = case.inputs["x"], case.outputs["codes"]

    assert torch.equal(tokenizer.flatten(x), codes)
    assert torch.equal(tokenizer.encode_signal(x), codes)
    assert torch.equal(tokenizer.encode_signal(x, fast=False), codes)
    assert tokenizer([tokenizer.decode(row) for row in codes])["input_ids"] == codes.tolist()

    expected_tps = case.meta["scalars"]["forecast_tokens_per_step"]["value"]
    tokens_per_step = tokenizer.forecast_tokens_per_step(codes, x, _reduced_shape(case.model_kwargs))
    assert tokens_per_step == expected_tps

    # every recorded strip: `tok.forecast_strip_tokens(<input>[, tokens_per_step])`
    for key, record in case.meta["tensors"].items():
        if not key.startswith("outputs:strip"):
            continue
        source, *rest = re.fullmatch(r"tok\.forecast_strip_tokens\((.*)\)", record["method"]).group(1).split(", ")
        seq = case.inputs.get(source, case.outputs.get(source))
        expected = case.outputs[key.split(":", 1)[1]]
        if rest:
            assert torch.equal(tokenizer.forecast_strip_tokens(seq, tokens_per_step), expected), key
        assert torch.equal(tokenizer.forecast_strip_tokens(seq), expected), key  # one argument always works
        assert torch.equal(tokenizer.strip_forecast(seq), expected), key

    # decoding inverts the flattening and the mu-law
    decoded = tokenizer.decode_signal(codes)
    expected_signal = mulaw_decode(x.reshape(x.shape[0], x.shape[1], -1)).transpose(1, 2)
    assert torch.equal(decoded, expected_signal)


# ------------------------------------------------------------------------------------ HF round trips


@pytest.mark.parametrize("tokenizer_class", TOKENIZER_CLASSES)
def test_save_pretrained_auto_tokenizer_round_trip(tokenizer_class, tmp_path):
    tokenizer = tokenizer_class(num_channels=4)
    x = _random_signal()
    tokenizer.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == tokenizer_class.__name__
    assert config["num_channels"] == 4 and config["mu"] == 255

    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert type(loaded) is tokenizer_class
    assert (loaded.num_channels, loaded.mu, len(loaded)) == (4, 255, len(tokenizer))
    assert loaded.get_vocab() == tokenizer.get_vocab()
    assert torch.equal(loaded.encode_signal(x), tokenizer.encode_signal(x))
    texts = tokenizer.signal_to_text(x)
    assert loaded(texts)["input_ids"] == tokenizer(texts)["input_ids"]
    assert list(loaded(texts)) == ["input_ids"]  # no attention mask / token types by default
    ids = tokenizer.encode_signal(x)
    assert loaded.batch_decode(ids) == texts  # no spaces, no special tokens added
    assert torch.equal(loaded.decode_signal(ids), tokenizer.decode_signal(ids))


def test_push_to_hub_and_load(local_hub, hub_repo_id):
    tokenizer = DelimitedTokenizer(num_channels=4)
    tokenizer.push_to_hub(hub_repo_id)
    with local_hub.fresh_cache():
        loaded = AutoTokenizer.from_pretrained(hub_repo_id)
    x = _random_signal()
    assert type(loaded) is DelimitedTokenizer and loaded.num_channels == 4
    assert torch.equal(loaded.encode_signal(x), tokenizer.encode_signal(x))


def test_vocabulary_sizes_and_no_special_tokens():
    assert len(AmplitudeTokenizer()) == len(AmplitudeMixTokenizer()) == 256
    assert len(DelimitedTokenizer()) == 257 and DelimitedTokenizer().delimiter_id == 256
    assert len(AmplitudeTokenizer(mu=15)) == 16
    tokenizer = AmplitudeTokenizer()
    assert tokenizer.all_special_ids == []
    text = tokenizer.signal_to_text(torch.zeros(1, 2, 3))[0]
    assert tokenizer(text)["input_ids"] == [128] * 6


def test_loading_a_folder_whose_config_disagrees_with_its_vocab_fails(tmp_path):
    AmplitudeTokenizer(num_channels=2).save_pretrained(tmp_path)
    config_path = tmp_path / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["mu"] = 127
    config_path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="does not match"):
        AutoTokenizer.from_pretrained(tmp_path)


def test_tokenizers_package_import_is_light():
    code = (
        "import sys, brain_gen_hf.tokenizers; assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------------------------ bulk path == HF path


@pytest.mark.parametrize("tokenizer_class", TOKENIZER_CLASSES)
@pytest.mark.parametrize("family", ["torch", "numpy"])
def test_bulk_path_matches_tokenizers_path(tokenizer_class, family):
    tokenizer = tokenizer_class(num_channels=4)
    x = _random_signal(batch=3, channels=4, steps=257, seed=1)
    x = x if family == "torch" else x.numpy()
    fast = tokenizer.encode_signal(x)
    assert isinstance(fast, torch.Tensor if family == "torch" else np.ndarray) and fast.dtype in (torch.int64, np.int64)
    texts = tokenizer.signal_to_text(x)
    via_call = tokenizer(texts)["input_ids"]
    via_backend = [encoding.ids for encoding in tokenizer.backend_tokenizer.encode_batch(texts)]
    assert np.asarray(fast).tolist() == via_call == via_backend
    assert np.asarray(tokenizer.encode_signal(x, fast=False)).tolist() == via_call
    # every amplitude bin, both extremes included, appears and round-trips through the strings
    all_bins = torch.arange(256).reshape(1, 4, 64)
    assert tokenizer(tokenizer.signal_to_text(all_bins))["input_ids"] == tokenizer.encode_signal(all_bins).tolist()
    assert set(np.unique(np.asarray(fast))) >= {0, 255}


@pytest.mark.parametrize("tokenizer_class", TOKENIZER_CLASSES)
def test_signal_round_trip_and_input_layouts(tokenizer_class):
    tokenizer = tokenizer_class(num_channels=4)
    x = _random_signal(batch=2, channels=4, steps=9)
    bins = mulaw_encode(x)
    ids = tokenizer.encode_signal(x)
    assert torch.equal(tokenizer.encode_signal(bins), ids)  # already-quantised bins, same layout
    grid = bins.transpose(1, 2).unsqueeze(-1)  # the reference's (B, T, C, W)
    assert torch.equal(tokenizer.encode_signal(grid), ids) and torch.equal(tokenizer.flatten(grid), ids)
    assert torch.equal(tokenizer.unflatten(ids), bins.transpose(1, 2))
    assert torch.equal(tokenizer.decode_signal(ids), mulaw_decode(bins))
    single = tokenizer.encode_signal(x[0])  # (C, T) is a batch of one
    assert torch.equal(single, tokenizer.encode_signal(x[:1]))
    assert isinstance(tokenizer.decode_signal(ids.numpy()), np.ndarray)


def test_flattening_orders():
    grid = torch.arange(2 * 3 * 2).reshape(2, 3, 2, 1)  # (B=2, T=3, C=2, W=1), values are positions
    assert AmplitudeTokenizer().flatten(grid).tolist() == [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]]
    # one row per channel, channel-major within each example
    assert AmplitudeMixTokenizer().flatten(grid).tolist() == [[0, 2, 4], [1, 3, 5], [6, 8, 10], [7, 9, 11]]
    assert DelimitedTokenizer().flatten(grid)[0].tolist() == [256, 0, 1, 256, 2, 3, 256, 4, 5, 256]
    assert DelimitedTokenizer().flatten(grid).shape == (2, 1 + 3 * (2 + 1))


# ------------------------------------------------------------------------------------ forecasting


def test_tokens_per_step():
    assert AmplitudeTokenizer(num_channels=5).tokens_per_step() == 5
    assert AmplitudeMixTokenizer(num_channels=5).tokens_per_step() == 1
    assert DelimitedTokenizer(num_channels=5).tokens_per_step() == 6
    assert AmplitudeTokenizer().tokens_per_step(3) == 3
    # reference hooks: the (T', H', W') grid decides for AmplitudeTokenizer, the raw grid for Delimited
    assert AmplitudeTokenizer().forecast_tokens_per_step(None, None, (10, 4, 2)) == 8
    assert DelimitedTokenizer(num_channels=9).forecast_tokens_per_step(None, torch.zeros(1, 5, 3, 1), (5, 9, 1)) == 4
    assert DelimitedTokenizer().forecast_tokens_per_step(None, None, (5, 7, 1)) == 8


def test_delimited_strip_in_forecasting():
    tokenizer = DelimitedTokenizer(num_channels=3)
    x = _random_signal(batch=2, channels=3, steps=7)
    context, future = x[..., :4], x[..., 4:]
    assert tokenizer.encode_signal(context)[:, -1].eq(256).all()  # the context ends on a delimiter
    # a generator continues after that delimiter: [x_4, D, x_5, D, x_6, D]
    generated = tokenizer.encode_signal(future)[:, 1:]
    expected = mulaw_encode(future).transpose(1, 2)  # (B, 3 steps, C)
    assert generated.shape[1] == 3 * tokenizer.tokens_per_step()

    assert torch.equal(tokenizer.strip_forecast(generated), expected.reshape(2, -1))  # one argument
    assert torch.equal(tokenizer.forecast_strip_tokens(generated), expected.reshape(2, -1))
    assert torch.equal(tokenizer.strip_forecast_steps(generated), expected)
    # a leading delimiter is skipped
    with_leading = torch.cat([torch.full((2, 1), 256), generated], dim=1)
    assert torch.equal(tokenizer.strip_forecast(with_leading), expected.reshape(2, -1))
    # a partial last step (2 of 3 channels generated) is dropped
    partial = torch.cat([generated, generated[:, :2]], dim=1)
    assert torch.equal(tokenizer.strip_forecast(partial), expected.reshape(2, -1))
    assert tokenizer.strip_forecast(generated[:, :3]).shape == (2, 0)
    # decoding the generated stream: strict, so the partial step is an error there
    assert torch.equal(tokenizer.decode_signal(generated), mulaw_decode(expected).transpose(1, 2))
    with pytest.raises(ValueError, match="not a whole number of steps"):
        tokenizer.decode_signal(partial)
    # numpy in, numpy out
    assert isinstance(tokenizer.strip_forecast(generated.numpy()), np.ndarray)


def test_amplitude_strips():
    x = _random_signal(batch=2, channels=3, steps=5)
    bins = mulaw_encode(x).transpose(1, 2)  # (B, T, C)
    amplitude, mix = AmplitudeTokenizer(num_channels=3), AmplitudeMixTokenizer(num_channels=3)
    assert torch.equal(amplitude.strip_forecast(amplitude.encode_signal(x)), bins)
    assert torch.equal(mix.strip_forecast(mix.encode_signal(x)), bins)
    assert torch.equal(amplitude.strip_forecast(amplitude.encode_signal(x), 3), bins)


# ------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("tokenizer_class", TOKENIZER_CLASSES)
def test_bad_signals_raise_value_error(tokenizer_class):
    tokenizer = tokenizer_class(num_channels=3)
    signal = torch.zeros(2, 3, 4)
    for bad, match in [
        (signal.clone().index_fill_(2, torch.tensor([1]), float("nan")), "NaN or inf"),
        (signal.clone().index_fill_(2, torch.tensor([1]), float("inf")), "NaN or inf"),
        (torch.zeros(3), "rank-1"),
        (torch.zeros(1, 2, 3, 4, 5), "rank-5"),
        (torch.zeros(2, 3, 0), "empty"),
        (torch.zeros(2, 3, 4, dtype=torch.bool), "dtype"),
        (torch.full((2, 3, 4), 256), r"\[0, 255\]"),
        (torch.zeros(2, 5, 4), "configured for num_channels=3"),
        ([[0.1, 0.2], [0.3]], "ragged"),
    ]:
        with pytest.raises(ValueError, match=match):
            tokenizer.encode_signal(bad)
    with pytest.raises(ValueError, match="integer bins"):
        tokenizer.flatten(torch.zeros(2, 4, 3))


@pytest.mark.parametrize("tokenizer_class", TOKENIZER_CLASSES)
def test_bad_ids_raise_value_error(tokenizer_class):
    tokenizer = tokenizer_class(num_channels=3)
    vocab = len(tokenizer)
    for bad, match in [
        (torch.tensor([[0, 1, vocab]]), f"\\[0, {vocab - 1}\\]"),
        (torch.tensor([[-1, 0, 1]]), f"\\[0, {vocab - 1}\\]"),
        (torch.zeros(1, 0, dtype=torch.long), "empty"),
        (torch.zeros(1, 3, 3, dtype=torch.long), "shape"),
        (torch.zeros(1, 3), "integers"),
    ]:
        with pytest.raises(ValueError, match=match):
            tokenizer.decode_signal(bad)
    with pytest.raises(ValueError, match="number of channels"):
        tokenizer_class().decode_signal(torch.zeros(1, 6, dtype=torch.long))


def test_token_counts_that_do_not_fit_the_channels_raise():
    with pytest.raises(ValueError, match="not a whole number of time steps of 3 channels"):
        AmplitudeTokenizer(num_channels=3).decode_signal(torch.zeros(2, 7, dtype=torch.long))
    with pytest.raises(ValueError, match="B\\*C rows"):
        AmplitudeMixTokenizer(num_channels=3).decode_signal(torch.zeros(4, 5, dtype=torch.long))
    delimited = DelimitedTokenizer(num_channels=2)
    with pytest.raises(ValueError, match="delimiter 256 after every 2 channel tokens"):
        delimited.decode_signal(torch.tensor([[256, 1, 2, 3, 4, 5, 256]]))
    with pytest.raises(ValueError, match="where a channel token was expected"):
        delimited.decode_signal(torch.tensor([[256, 1, 256, 256]]))
    with pytest.raises(ValueError, match="tokens_per_step must be >= 2"):
        delimited.strip_forecast(torch.tensor([[1, 256]]), tokens_per_step=1)


def test_bad_configuration_raises_value_error():
    with pytest.raises(ValueError, match="mu must be a positive integer"):
        AmplitudeTokenizer(mu=0)
    with pytest.raises(ValueError, match="num_channels must be a positive integer"):
        AmplitudeTokenizer(num_channels=0)
    with pytest.raises(ValueError, match="delimiter_id must be mu \\+ 1"):
        DelimitedTokenizer(delimiter_id=3)
    with pytest.raises(ValueError, match="token symbols"):
        AmplitudeTokenizer(mu=10_000)
    with pytest.raises(ValueError, match="vocab_size=300"):
        AmplitudeTokenizer.from_model_kwargs(input_shape=[4, 3, 1], vocab_size=300, hidden_size=8)
