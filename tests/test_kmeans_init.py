"""k-means codebook init against values the reference code produced (tests/data/kmeans_reference/README.md).

Every branch: rows sampled without / with replacement, k-means with fewer rows than clusters, chunked distances,
empty clusters, one iteration; residual VQ levels seeded one after another (explicit init and first forward), their
codes, and a training step; whole tokenizers with configurations the public vectors do not cover.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from brain_gen_hf.layers.quantizers import ResidualVectorQuantizer, kmeans, sample_rows
from tests import brain_tokenizer_checks as checks
from tests.refvec import RefCase, assert_float_close

DATA = Path(__file__).parent / "data" / "kmeans_reference"
TOKENIZER_CASES = sorted(p.name for p in DATA.iterdir() if (p / "meta.json").exists())


def _tensors(name: str) -> dict[str, torch.Tensor]:
    return load_file(DATA / f"{name}.safetensors")


def test_sample_rows_both_branches():
    t = _tensors("sampling_and_kmeans")
    torch.manual_seed(11)
    assert torch.equal(sample_rows(t["sample.samples"], 4), t["sample.without_replacement"])
    torch.manual_seed(12)
    assert torch.equal(sample_rows(t["sample.samples"], 25), t["sample.with_replacement"])


@pytest.mark.parametrize(
    "case, seed, clusters, iters, chunk_size",
    [
        ("few", 13, 9, 10, None),  # fewer rows than clusters: padded with random rows first
        ("chunked", 14, 6, 10, 7),
        ("empty", 15, 8, 10, None),  # repeated rows: some clusters end empty and keep their centre
        ("one_iter", 16, 5, 1, None),
    ],
)
def test_kmeans_branches(case, seed, clusters, iters, chunk_size):
    t = _tensors("sampling_and_kmeans")
    samples = t["kmeans.chunked.samples"] if case == "one_iter" else t[f"kmeans.{case}.samples"]
    torch.manual_seed(seed)
    centres, counts = kmeans(samples, clusters, iters, chunk_size=chunk_size)
    assert torch.equal(counts, t[f"kmeans.{case}.counts"])
    assert_float_close(centres, t[f"kmeans.{case}.centres"], f"kmeans {case} centres")


def _rvq(name: str) -> tuple[ResidualVectorQuantizer, dict, dict]:
    t, meta = _tensors(name), json.loads((DATA / "rvq_cases.json").read_text())[name]
    rvq = ResidualVectorQuantizer(meta["dim"], meta["codebook_dim"], meta["codebook_size"], meta["num_quantizers"])
    rvq.load_state_dict({k[len("before.") :]: v for k, v in t.items() if k.startswith("before.")})
    return rvq.eval(), t, meta


def _assert_state(rvq: ResidualVectorQuantizer, t: dict, prefix: str) -> None:
    state = rvq.state_dict()
    for key, value in t.items():
        if key.startswith(prefix):
            name = key[len(prefix) :]
            if name.endswith("cluster_size"):  # counts: exact, any difference is a different assignment
                assert torch.equal(state[name], value), f"{prefix}{name}: {state[name]} != {value}"
            else:
                assert_float_close(state[name], value, prefix + name)


# with replacement: 10 rows < 4 K = 48, duplicated rows give codewords that differ by a rounding error;
# without replacement: 60 rows >= 20, repeated rows (a flat stretch of signal) do the same through the means
@pytest.mark.parametrize("name", ["rvq_with_replacement", "rvq_without_replacement"])
@pytest.mark.parametrize("explicit", [True, False], ids=["init_codebooks", "first_forward"])
def test_residual_vq_init_codes_and_train_step(name, explicit):
    rvq, t, meta = _rvq(name)
    torch.manual_seed(meta["init_seed"])
    with torch.no_grad():
        if explicit:
            rvq.init_codebooks(t["x"])
        else:
            rvq(t["x"])
    _assert_state(rvq, t, "after_init.")
    with torch.no_grad():
        quantized, codes, commitment = rvq(t["x_eval"])
    assert torch.equal(codes, t["eval.codes"])
    assert_float_close(quantized, t["eval.quantized"], "eval quantized")
    assert_float_close(commitment, t["eval.commitment"], "eval commitment")
    rvq.train()
    torch.manual_seed(meta["train_seed"])
    with torch.no_grad():
        rvq(t["x_eval"])
    _assert_state(rvq, t, "after_train_step.")


def _tokenizer_case(folder: str) -> RefCase:
    return RefCase(DATA / folder, json.loads((DATA / folder / "meta.json").read_text()))


@pytest.mark.parametrize("folder", TOKENIZER_CASES)
@pytest.mark.parametrize("explicit", [True, False], ids=["init_codebooks", "first_forward"])
def test_tokenizer_kmeans_init_on_other_configs(folder, explicit):
    """Codebook size not a power of two, three levels, LSTM encoders, other seeds than the public vectors'."""
    case = _tokenizer_case(folder)
    checks.check_kmeans_init_parity(case, explicit)


@pytest.mark.parametrize("folder", TOKENIZER_CASES)
def test_tokenizer_codes_and_train_step_on_other_configs(folder):
    case = _tokenizer_case(folder)
    model = checks.converted(case)
    x, pos, sensor_type = checks.metadata(case)
    with torch.no_grad():
        assert torch.equal(model.encode(x, pos, sensor_type).codes, case.outputs["tokenize.indices"])
    checks.check_train_step_parity(case)
