"""FlatGPT generation: transformers `generate()` with and without the KV cache, and windowed forecasts."""

import pytest
import torch
from transformers import AutoModelForCausalLM, GenerationConfig

from brain_gen_hf.models.flatgpt.modeling_flatgpt import sampler
from tests.flatgpt_configs import V, embeds_config, flatgpt_config, mix_config, smollm3_backbone

VARIANTS = {
    "flatgpt_qwen": lambda: flatgpt_config(),
    "flatgpt_smollm3": lambda: flatgpt_config(smollm3_backbone()),
    "flatgpt_delimited": lambda: flatgpt_config(
        smollm3_backbone(), tokenizer_config={"tokenizer_class": "DelimitedTokenizer", "delimiter_id": V - 1}
    ),
    "embeds": lambda: embeds_config(),
    "mix": lambda: mix_config(),
}


def _model(name):
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(VARIANTS[name]()).eval()


def _context(model, steps=4, batch=2):
    g = torch.Generator().manual_seed(3)
    return torch.randint(0, V - 1, (batch, steps, 3, 1), generator=g)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_generate_with_and_without_cache_is_identical(name):
    model = _model(name)
    input_ids = model.tokenize(_context(model))
    new = 6 if name != "mix" else 3
    with_cache = model.generate(input_ids, max_new_tokens=new, do_sample=False, use_cache=True)
    without = model.generate(input_ids, max_new_tokens=new, do_sample=False, use_cache=False)
    assert with_cache.shape == (input_ids.shape[0], input_ids.shape[1] + new)
    assert torch.equal(with_cache, without)
    # generate() and the forecast loop are the same greedy process inside one window
    rolled = model.generate_windowed(
        input_ids, new, sampler(GenerationConfig(do_sample=False)), window=input_ids.shape[1] + new
    )
    assert torch.equal(rolled, with_cache[:, input_ids.shape[1] :])


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_windowed_forecast_cache_equals_no_cache(name):
    model = _model(name)
    context = _context(model)
    kwargs = {"max_context_tokens": None, "sliding_window_overlap": 0.4}  # window = context: slides every step
    bins = context[..., 0].transpose(1, 2)  # forecast reads (B, C, T) bins
    cached = model.forecast(bins, 3, GenerationConfig(do_sample=False, use_cache=True), **kwargs)
    uncached = model.forecast(bins, 3, GenerationConfig(do_sample=False, use_cache=False), **kwargs)
    assert cached.codes.shape == (2, 3, 3)
    assert torch.equal(cached.codes, uncached.codes) and torch.equal(cached.tokens, uncached.tokens)


def test_forecast_roulette_is_seeded_and_in_vocabulary():
    model = _model("embeds")
    bins = _context(model)[..., 0].transpose(1, 2)
    sampling = GenerationConfig(do_sample=True, temperature=0.8, top_k=5)
    torch.manual_seed(5)
    a = model.forecast(bins, 3, sampling).codes
    torch.manual_seed(5)
    b = model.forecast(bins, 3, sampling).codes
    assert torch.equal(a, b) and a.min() >= 0 and a.max() < V
    with pytest.raises(ValueError, match="num_beams"):
        model.forecast(bins, 3, GenerationConfig(num_beams=2))


def test_generate_past_the_grid_needs_the_sliding_window():
    model = _model("flatgpt_qwen")
    input_ids = model.tokenize(_context(model, steps=7))  # 21 of the 24 grid cells
    with pytest.raises(ValueError, match="exceed the 24 cells"):
        model.generate(input_ids, max_new_tokens=6, do_sample=False)
    rolled = model.generate_windowed(input_ids, 12, sampler(GenerationConfig(do_sample=False)), window=24)
    assert rolled.shape == (2, 12)


def test_forecast_argument_errors():
    model = _model("flatgpt_qwen")
    bins = _context(model)[..., 0].transpose(1, 2)
    with pytest.raises(ValueError, match="horizon"):
        model.forecast(bins, -1)
    with pytest.raises(ValueError, match="int64 \\(or int32\\) ids"):  # a float context is a signal; bins are ids
        model.forecast(bins.short(), 2)
    with pytest.raises(ValueError, match="at least one time step"):
        model.forecast(bins, 2, max_context_tokens=2)
