"""Mu-law codec and token sampling: parity with the reference vectors, clipping, bad input."""

import json
import re

import numpy as np
import pytest
import torch

from brain_gen_hf.forecasting.sampling import reference_sample as sample
from brain_gen_hf.tokenizers.mulaw import mulaw_decode, mulaw_encode
from tests.conftest import refvec_root
from tests.refvec import RefCase, assert_float_close, require_case


def _utility_cases():
    """Reference cases recording `brain_gen.utils.{quantizers,eval}` (found by meta.json class)."""
    root = refvec_root()
    cases = []
    if root.exists():
        for meta_path in sorted(root.glob("*/meta.json")):
            meta = json.loads(meta_path.read_text())
            if meta.get("class") == "brain_gen.utils.{quantizers,eval}":
                cases.append(pytest.param(RefCase(meta_path.parent, meta), id=meta_path.parent.name))
    return cases or [pytest.param(None, id="refvec-missing")]


def _seed_of(case, output_key):
    return case.meta["tensors"][f"outputs:{output_key}"]["args"]["torch.manual_seed"]


@pytest.mark.parametrize("case", _utility_cases())
def test_parity_mulaw(case):
    case = require_case(case)
    signal, bins = case.inputs["signal"], case.inputs["bins"]
    expected_bins, expected_signal = case.outputs["mulaw_torch"], case.outputs["mulaw_inv_torch"]
    assert torch.equal(mulaw_encode(signal), expected_bins)
    assert np.array_equal(mulaw_encode(signal.numpy()), expected_bins.numpy())
    assert_float_close(mulaw_decode(bins), expected_signal, "mulaw_decode(torch)")
    assert_float_close(torch.from_numpy(mulaw_decode(bins.numpy())), expected_signal, "mulaw_decode(numpy)")


@pytest.mark.parametrize("case", _utility_cases())
def test_parity_sampling(case):
    case = require_case(case)
    logits, outputs, tensors = case.inputs["logits"], case.outputs, case.meta["tensors"]
    assert torch.equal(sample(logits, "argmax"), outputs["sample_argmax"])
    for strategy in ("roulette", "top_k", "top_p"):
        key = f"sample_{strategy}"
        record = tensors[f"outputs:{key}"]
        args = dict(record["args"])
        torch.manual_seed(args.pop("torch.manual_seed"))
        temperature = float(re.search(r"temperature=([0-9.]+)", record["method"]).group(1))
        got = sample(logits, strategy, temperature=temperature, **args)
        assert torch.equal(got, outputs[key]), f"{strategy}: {got.tolist()} != {outputs[key].tolist()}"


def test_mulaw_clips_instead_of_wrapping():
    x = torch.tensor([-1e6, -5.0, -1.0, -0.999, 0.0, 0.999, 1.0, 5.0, 1e6])
    bins = mulaw_encode(x)
    assert bins.tolist() == [0, 0, 0, 0, 128, 255, 255, 255, 255]
    assert mulaw_encode(x.numpy()).tolist() == bins.tolist()
    assert mulaw_encode(x.double()).tolist() == bins.tolist()


def test_mulaw_round_trip_and_families():
    bins = torch.arange(256)
    decoded = mulaw_decode(bins)
    assert decoded.dtype == torch.float32 and float(decoded.abs().max()) <= 1.0
    assert torch.equal(mulaw_encode(decoded), bins)  # every bin centre maps back to itself
    assert isinstance(mulaw_encode(np.zeros(3, np.float32)), np.ndarray)
    assert isinstance(mulaw_decode([0, 255]), np.ndarray)
    # numpy input goes through the same arithmetic: identical bins on a dense random signal
    x = torch.rand(200_000, generator=torch.Generator().manual_seed(0)) * 2.4 - 1.2
    assert np.array_equal(mulaw_encode(x.numpy()), mulaw_encode(x).numpy())
    assert mulaw_encode(torch.zeros(2, 3), mu=15).max() <= 15


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.tensor([0.1, float("nan")]), "NaN or inf"),
        (np.array([0.1, np.inf]), "NaN or inf"),
        (torch.tensor([1, 2]), "floating-point"),
    ],
)
def test_mulaw_encode_rejects_bad_signals(bad, match):
    with pytest.raises(ValueError, match=match):
        mulaw_encode(bad)


def test_mulaw_decode_rejects_bad_bins():
    with pytest.raises(ValueError, match=r"expected values in \[0, 255\]"):
        mulaw_decode(torch.tensor([0, 256]))
    with pytest.raises(ValueError, match=r"expected values in \[0, 255\]"):
        mulaw_decode(np.array([-1]))
    with pytest.raises(ValueError, match="integer bins"):
        mulaw_decode(torch.tensor([0.5]))
    with pytest.raises(ValueError, match="mu must be a positive integer"):
        mulaw_decode(torch.tensor([0]), mu=0)


def test_top_p_excludes_the_crossing_token():
    # probs [0.5, 0.4, 0.1]: cumulative [0.5, 0.9, 1.0]; p = 0.8 keeps only the first token.
    logits = torch.tensor([0.5, 0.4, 0.1]).log().expand(500, 3)
    torch.manual_seed(0)
    assert torch.equal(sample(logits, "top_p", top_p=0.8), torch.zeros(500, dtype=torch.long))


def test_sampling_edge_cases():
    logits = torch.randn(4, 5, 9, generator=torch.Generator().manual_seed(1))
    temperature = torch.full((4, 5, 1), 0.5)
    assert torch.equal(sample(logits, "top_k", temperature=temperature, top_k=1), logits.argmax(-1))
    # top_p = 1.0 is roulette: same frequencies over many draws (the reference's test)
    row = torch.tensor([1.0, 0.5, 0.0, -0.5, -2.0]).expand(20_000, 5)
    torch.manual_seed(3)
    top_p_one = torch.bincount(sample(row, "top_p", top_p=1.0), minlength=5) / 20_000
    roulette = torch.bincount(sample(row, "roulette"), minlength=5) / 20_000
    assert float((top_p_one - roulette).abs().max()) < 0.02
    with pytest.raises(ValueError, match="Unknown sampling strategy"):
        sample(logits, "nucleus")
    with pytest.raises(ValueError, match="top_k >= 1"):
        sample(logits, "top_k", top_k=0)
    with pytest.raises(ValueError, match="top_p must be in"):
        sample(logits, "top_p", top_p=1.5)
