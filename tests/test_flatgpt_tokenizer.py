"""FlatGPT's token layout is the flat HF tokenizer: built from the LM config, saved with the LM, loaded by
AutoTokenizer; forecasts read signals or bins through it."""

import json

import pytest
import torch
from transformers import AutoConfig, AutoTokenizer, GenerationConfig, PreTrainedConfig

from brain_gen_hf.models.flatgpt.configuration_flatgpt import FlatTokenizerConfig
from brain_gen_hf.models.flatgpt.tokenization_flatgpt import tokenizer_from_lm_config
from brain_gen_hf.tokenizers import AmplitudeMixTokenizer, AmplitudeTokenizer, DelimitedTokenizer
from brain_gen_hf.tokenizers.mulaw import mulaw_decode, mulaw_encode
from tests.flatgpt_configs import V, embeds_config, flatgpt_config, mix_config, smollm3_backbone
from tests.flatgpt_rvq_configs import build as build_rvq

DELIMITED = {"tokenizer_class": "DelimitedTokenizer", "delimiter_id": V - 1}
VARIANTS = {
    "flatgpt": (lambda: flatgpt_config(), AmplitudeTokenizer, V - 1),
    "flatgpt_delimited": (
        lambda: flatgpt_config(smollm3_backbone(), tokenizer_config=DELIMITED),
        DelimitedTokenizer,
        V - 2,
    ),
    "embeds": (lambda: embeds_config(), AmplitudeTokenizer, V - 1),
    "mix": (lambda: mix_config(), AmplitudeMixTokenizer, V - 1),
}


def _model(name):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(VARIANTS[name][0]()).eval()


def _grid(steps=4, high=V - 1, batch=2):
    return torch.randint(0, high, (batch, steps, 3, 1), generator=torch.Generator().manual_seed(3))


def _expected_ids(name, grid):
    """The reference layouts written out element by element (independent of the tokenizer code)."""
    B, T, C = grid.shape[:3]
    if name == "mix":
        return torch.tensor([[int(grid[b, t, c, 0]) for t in range(T)] for b in range(B) for c in range(C)])
    rows = []
    for b in range(B):
        row = [V - 1] if name == "flatgpt_delimited" else []
        for t in range(T):
            row += [int(grid[b, t, c, 0]) for c in range(C)]
            if name == "flatgpt_delimited":
                row.append(V - 1)
        rows.append(row)
    return torch.tensor(rows)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_the_model_encodes_with_the_tokenizer_its_config_describes(name):
    model = _model(name)
    _, tokenizer_class, mu = VARIANTS[name]
    tokenizer = model.tokenizer
    assert type(tokenizer) is tokenizer_class
    assert (tokenizer.mu, tokenizer.num_channels, len(tokenizer)) == (mu, 3, V)
    grid = _grid(high=mu + 1)
    assert torch.equal(model.tokenize(grid), _expected_ids(name, grid))
    assert torch.equal(tokenizer.flatten(grid), _expected_ids(name, grid))
    assert isinstance(model.config.tokenizer_config, FlatTokenizerConfig)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_decoding_a_continuation_reads_the_channel_count_from_the_config(name):
    model = _model(name)
    tokenizer = model.tokenizer
    steps = _grid(steps=2, high=VARIANTS[name][2] + 1)
    continuation = _expected_ids(name, steps)
    if name == "flatgpt_delimited":
        continuation = continuation[:, 1:]  # a rollout starts right after the context's final delimiter
    # Another grid of another channel count tokenized first changes nothing (the old layout kept the last call's C).
    AmplitudeTokenizer(mu=15).flatten(torch.zeros(1, 2, 5, 1, dtype=torch.long))
    assert torch.equal(tokenizer.continuation_to_bins(continuation), steps[..., 0])
    with pytest.raises(ValueError, match="whole number|cannot be regrouped"):
        tokenizer.continuation_to_bins(continuation[:, :-1] if name != "mix" else continuation[:-1])


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_auto_tokenizer_loads_the_tokenizer_of_a_saved_lm(name, tmp_path):
    model = _model(name)
    model.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    _, tokenizer_class, mu = VARIANTS[name]
    assert type(loaded) is tokenizer_class and (loaded.mu, loaded.num_channels) == (mu, 3)
    grid = _grid(high=mu + 1)
    assert torch.equal(loaded.flatten(grid), model.tokenize(grid))
    # A folder written without the tokenizer files (e.g. by an older release) still gives the LM's tokenizer.
    (tmp_path / "tokenizer_config.json").unlink()
    (tmp_path / "tokenizer.json").unlink()
    bare = AutoTokenizer.from_pretrained(tmp_path)
    assert type(bare) is tokenizer_class and (bare.mu, bare.num_channels) == (mu, 3)
    assert type(tokenizer_from_lm_config(AutoConfig.from_pretrained(tmp_path))) is tokenizer_class


@pytest.mark.parametrize("model_type", ["flatgpt_rvq", "flatgpt_mix_rvq", "flatgpt_embeds_rvq"])
def test_auto_tokenizer_on_an_rvq_lm_names_the_brain_tokenizer_inside(model_type, tmp_path):
    model = build_rvq(model_type)
    model.save_pretrained(tmp_path)
    message = r"tokenizer is the brain tokenizer model inside it.*model\.encode\(signal\)"
    with pytest.raises(ValueError, match=message):  # was AttributeError: 'NoneType' object has no attribute ...
        AutoTokenizer.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="brain tokenizer model inside it"):
        tokenizer_from_lm_config(model.config)
    assert isinstance(model.config.tokenizer_config, PreTrainedConfig)  # one shape: a nested config everywhere
    assert not (tmp_path / "tokenizer_config.json").exists()


def test_tokenizer_config_is_a_nested_config_with_a_short_form():
    config = flatgpt_config(smollm3_backbone(), tokenizer_config=DELIMITED)
    saved = config.to_dict()["tokenizer_config"]
    assert saved["model_type"] == "flat_signal_tokenizer" and saved["delimiter_id"] == V - 1
    reloaded = type(config).from_dict(json.loads(json.dumps(config.to_dict())))
    assert reloaded.tokenizer_config.tokenizer_class == "DelimitedTokenizer"
    assert reloaded.tokenizer_config.delimiter_id == V - 1
    with pytest.raises(ValueError, match=r"delimiter id 7 must be the last id of the vocabulary"):
        flatgpt_config(tokenizer_config={"tokenizer_class": "DelimitedTokenizer", "delimiter_id": 7})
    with pytest.raises(ValueError, match="unknown `tokenizer_config` keys"):
        flatgpt_config(tokenizer_config={"tokenizer_class": "AmplitudeTokenizer", "mu": 3})
    with pytest.raises(ValueError, match="must be one of"):
        flatgpt_config(tokenizer_config={"tokenizer_class": "AmplitudeMixTokenizer"})  # FlatGPTMix's layout
    with pytest.raises(ValueError, match="flat_signal_tokenizer"):
        flatgpt_config(tokenizer_config={"model_type": "braintokmix"})


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_forecast_of_a_signal_is_the_forecast_of_its_mu_law_bins(name):
    model = _model(name)
    mu = VARIANTS[name][2]
    signal = torch.rand(2, 3, 4, generator=torch.Generator().manual_seed(1)) * 2 - 1
    from_signal = model.forecast(signal, 5)
    from_bins = model.forecast(mulaw_encode(signal, mu), 5)
    assert torch.equal(from_signal.codes, from_bins.codes) and torch.equal(from_signal.tokens, from_bins.tokens)
    assert from_signal.codes.shape == (2, 3, 5)
    assert 0 <= int(from_signal.codes.min()) <= int(from_signal.codes.max()) <= mu
    torch.testing.assert_close(from_signal.values, mulaw_decode(from_signal.codes, mu))
    with pytest.raises(ValueError, match=rf"ids in \[{mu + 1}, {mu + 1}\], outside the vocabulary \[0, {mu}\]"):
        model.forecast(torch.full((2, 3, 4), mu + 1), 2)  # beyond the tokenizer's mu (Delimited: the delimiter)


def test_delimited_rollouts_keep_the_trained_layout():
    model = _model("flatgpt_delimited")
    bins = _grid()[..., 0].transpose(1, 2)
    for config in (GenerationConfig(do_sample=False), GenerationConfig(do_sample=True, top_k=0, temperature=2.0)):
        torch.manual_seed(0)
        out = model.forecast(bins, 6, config)
        steps = out.tokens.reshape(2, 6, 4)
        assert (steps[..., 3] == V - 1).all()  # every step ends with the delimiter
        assert (steps[..., :3] < V - 1).all()  # and holds bins
        assert torch.equal(out.codes, steps[..., :3].transpose(1, 2))
