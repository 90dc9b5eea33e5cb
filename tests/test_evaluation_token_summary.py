"""Token summary (spec 5.9): bits/token, perplexity, unigram perplexity, bits/s and decoded MSE."""

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from brain_gen_hf.evaluation.token_summary import (
    TokenSummaryConfig,
    per_step,
    step_positions,
    token_summary,
    window_mean,
)


class FixedLogits(torch.nn.Module):
    """A token LM whose logits come from a function of the input ids (block 1, `step` tokens per step)."""

    def __init__(self, vocab_size, logits_fn, step=2, temporal_reduction=None):
        super().__init__()
        self.config = SimpleNamespace(vocab_size=vocab_size, temporal_reduction=temporal_reduction)
        self.prediction_block, self.sequence_step = 1, step
        self.logits_fn = logits_fn
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, labels=None):
        return SimpleNamespace(logits=self.logits_fn(input_ids))


def test_uniform_logits_give_log2_v_bits_and_perplexity_v():
    vocab = 8
    model = FixedLogits(vocab, lambda ids: torch.zeros(*ids.shape, vocab))
    ids = torch.randint(0, vocab, (3, 9), generator=torch.Generator().manual_seed(0))
    result = token_summary(model, [{"input_ids": ids}], {}, sfreq=None)
    assert result["summary"]["bits_per_token"] == pytest.approx(3.0)  # log2(8)
    assert result["summary"]["perplexity"] == pytest.approx(8.0)
    curve = result["metrics"]["bits_per_token"]
    assert len(curve["mean"]) == 4  # 8 scored tokens, 2 per step
    np.testing.assert_allclose(curve["median"], 3.0)
    np.testing.assert_allclose(result["metrics"]["perplexity"]["mean"], 8.0)
    assert curve["lengths"] == [3, 3, 3, 3]
    assert "bits_per_second" not in result["metrics"]  # no rate known


def test_half_probability_targets_give_one_bit_and_unigram_from_counts():
    # The logits put probability 1/2 on the true next token (ids alternate 0, 1) and spread the rest evenly.
    vocab = 4

    def logits_fn(ids):
        following = 1 - ids  # the token after 0 is 1 and after 1 is 0
        probs = torch.full((*ids.shape, vocab), 0.5 / (vocab - 1))
        probs.scatter_(-1, following.unsqueeze(-1), 0.5)
        return probs.log()

    ids = torch.tensor([[0, 1, 0, 1, 0, 1, 0]])
    model = FixedLogits(vocab, logits_fn, step=3, temporal_reduction=2)
    result = token_summary(model, [ids], {"decoded_mse": False}, sfreq=100.0)
    assert result["summary"]["bits_per_token"] == pytest.approx(1.0)
    # Targets [1, 0, 1, 0, 1, 0]: unigram p = 1/2 each, so 1 bit and perplexity 2.
    assert result["summary"]["unigram_perplexity"] == pytest.approx(2.0)
    # 3 tokens per step every 2 samples at 100 Hz: 150 tokens/s, so 150 bits/s.
    assert result["tokens_per_second"] == pytest.approx(150.0)
    np.testing.assert_allclose(result["metrics"]["bits_per_second"]["mean"], [150.0, 150.0], rtol=1e-5)
    assert result["context_unit"] == "seconds"
    assert result["decoded_mse_skipped"] == "disabled in the config"


def test_per_step_drops_leading_tokens():
    values = torch.arange(7.0)[None]
    np.testing.assert_allclose(per_step(values, 3).numpy(), [[2.0, 5.0]])  # drops token 0: (1,2,3), (4,5,6)


def test_real_rvq_model_matches_its_loss_and_writes_files(tmp_path):
    from tests.flatgpt_rvq_configs import build, signal

    model = build("flatgpt_embeds_rvq")
    values = signal(batch=2, length=16)
    with torch.no_grad():
        loss = model(input_values=values).loss.item()
    result = token_summary(model, [{"input_values": values}], {}, sfreq=100.0, out_dir=tmp_path)
    assert result["summary"]["bits_per_token"] == pytest.approx(loss / math.log(2), rel=1e-5)
    assert result["tokens_per_step"] == model.sequence_step
    saved = json.loads((tmp_path / "token_summary.json").read_text())
    assert set(saved["metrics"]) == {
        "bits_per_token",
        "perplexity",
        "unigram_perplexity",
        "bits_per_second",
        "decoded_mse",
    }
    assert all(np.isfinite(saved["metrics"]["decoded_mse"]["mean"]))
    assert (tmp_path / "token_summary.png").stat().st_size > 0


@pytest.mark.parametrize(
    "config, message",
    [
        ({"tokens_per_step": 0}, "tokens_per_step must be a positive int"),
        ({"token_per_step": 2}, r"unknown keys \['token_per_step'\] in token summary"),
        ({"tokens_per_second": -1.0}, "tokens_per_second must be positive"),
    ],
)
def test_bad_config(config, message):
    with pytest.raises(ValueError, match=message):
        TokenSummaryConfig.from_dict(config)


def test_bad_inputs():
    vocab = 4
    model = FixedLogits(vocab, lambda ids: torch.full((*ids.shape, vocab), float("nan")))
    with pytest.raises(ValueError, match="NaN/inf"):
        token_summary(model, [torch.zeros(1, 5, dtype=torch.long)])
    with pytest.raises(ValueError, match="needs a token language model"):
        token_summary(torch.nn.Linear(2, 2), [torch.zeros(1, 5, dtype=torch.long)])
    uniform = FixedLogits(vocab, lambda ids: torch.zeros(*ids.shape, vocab))
    with pytest.raises(ValueError, match="read no batches"):
        token_summary(uniform, [])
    with pytest.raises(ValueError, match=r"got \['codes'\]"):
        token_summary(uniform, [{"codes": torch.zeros(1, 5, dtype=torch.long)}])


def test_time_axis_and_smoothing():
    # input_shape 24 samples reduced to 6 steps: 4 samples per step; at 10 Hz the steps end at 0.4, 0.8, 1.2 s.
    np.testing.assert_allclose(step_positions(3, 4, 10.0), [0.4, 0.8, 1.2])
    np.testing.assert_allclose(step_positions(3, None, None), [1, 2, 3])
    # 10 tokens/s at 2 tokens per step: 5 steps per second, so the smoothing window is 5 points.
    np.testing.assert_allclose(window_mean(np.arange(10), 5), [2.0, 7.0])


def test_amplitude_flatgpt_reads_a_signal_through_its_own_tokens():
    from transformers import AutoModelForCausalLM

    import tests.flatgpt_configs as configs

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(configs.flatgpt_config()).eval()
    signal = torch.rand(2, 3, 4, generator=torch.Generator().manual_seed(3)) * 2 - 1
    ids = model.tokenize(model.context_bins(signal).transpose(1, 2))
    with torch.no_grad():
        loss = model(input_ids=ids, labels=ids).loss.item()
    result = token_summary(model, [signal], {}, sfreq=100.0)
    assert result["summary"]["bits_per_token"] == pytest.approx(loss / math.log(2), rel=1e-5)
    assert result["decoded_mse_skipped"] == "FlatGPTForCausalLM has no decode(codes)"
