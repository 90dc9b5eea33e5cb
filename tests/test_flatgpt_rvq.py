"""RVQ FlatGPT variants: generation, signal forecasts, tokenizer composition, config and input errors."""

import pytest
import torch
from transformers import AutoModel, AutoModelForCausalLM, GenerationConfig

from brain_gen_hf.models.flatgpt.configuration_flatgpt_rvq import FlatGPTMixRVQConfig
from brain_gen_hf.models.flatgpt.modeling_flatgpt import sampler
from tests.flatgpt_configs import qwen_backbone, smollm3_backbone
from tests.flatgpt_rvq_configs import BRAINOMNI, BRAINTOKMIX, K, build, rvq_config, signal

GREEDY = GenerationConfig(do_sample=False)
VARIANTS = {
    "embeds_rvq": lambda: build("flatgpt_embeds_rvq"),
    "embeds_rvq_smollm3": lambda: build("flatgpt_embeds_rvq", backbone=smollm3_backbone()),
    "embeds_rvq_brainomni": lambda: build(
        "flatgpt_embeds_rvq", tokenizer=BRAINOMNI, input_shape=[16, 2, 2], spatial_reduction=[1, 1]
    ),
    "rvq_joint": lambda: build("flatgpt_rvq"),
    "rvq_tied": lambda: build("flatgpt_rvq", quantizer_head="tied"),
    "mix_rvq": lambda: build("flatgpt_mix_rvq"),
    "mix_rvq_none_tied": lambda: build("flatgpt_mix_rvq", mix_method="none", quantizer_head="tied"),
}


def _pos(model, batch=2):
    channels = model.config.input_shape[1]
    return torch.zeros(batch, channels, 2), torch.zeros(batch, channels, dtype=torch.long)


def _context(model, length=8, batch=2):
    pos, sensor_type = _pos(model, batch)
    return signal(batch, length, pos.shape[1]), pos, sensor_type


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_generate_with_and_without_cache_is_identical(name):
    model = VARIANTS[name]()
    x, pos, sensor_type = _context(model)
    input_ids = model.encode(x, pos, sensor_type)
    new = 2 * model.config.tokens_per_time_step
    with_cache = model.generate(input_ids, max_new_tokens=new, do_sample=False, use_cache=True)
    without = model.generate(input_ids, max_new_tokens=new, do_sample=False, use_cache=False)
    assert with_cache.shape == (2, input_ids.shape[1] + new)
    assert torch.equal(with_cache, without)
    assert with_cache.min() >= 0 and with_cache.max() < K
    rolled = model.generate_windowed(input_ids, new, sampler(GREEDY), window=input_ids.shape[1] + new)
    assert torch.equal(rolled, with_cache[:, input_ids.shape[1] :])


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_signal_forecast_cache_equals_no_cache_across_window_slides(name):
    model = VARIANTS[name]()
    x, pos, sensor_type = _context(model)
    kwargs = {"pos": pos, "sensor_type": sensor_type, "sliding_window_overlap": 0.5}  # window = context: slides
    cached = model.forecast(x, 10, GenerationConfig(do_sample=False, use_cache=True), **kwargs)
    uncached = model.forecast(x, 10, GenerationConfig(do_sample=False, use_cache=False), **kwargs)
    assert cached.values.shape == (2, x.shape[1], 10) and torch.isfinite(cached.values).all()
    torch.testing.assert_close(cached.values, uncached.values, rtol=0, atol=0)
    assert torch.equal(cached.tokens, uncached.tokens)


def test_forecast_is_the_decoded_greedy_rollout_and_roulette_is_seeded():
    model = VARIANTS["embeds_rvq"]()
    x, pos, sensor_type = _context(model)
    codes = model.encode(x)
    new = 2 * model.config.tokens_per_time_step
    rolled = model.generate_windowed(codes, new, sampler(GREEDY), window=codes.shape[1] + new)
    forecast = model.forecast(x, 8, max_context_tokens=codes.shape[1] + new)
    torch.testing.assert_close(forecast.values, model.decode(rolled), rtol=0, atol=0)
    assert torch.equal(forecast.tokens, rolled)
    assert torch.equal(forecast.codes, model.tokenizer.unflatten_codes(rolled))
    sampling = GenerationConfig(do_sample=True, temperature=0.7, top_k=5)
    torch.manual_seed(4)
    a = model.forecast(x, 8, sampling)
    torch.manual_seed(4)
    b = model.forecast(x, 8, sampling)
    torch.testing.assert_close(a.values, b.values, rtol=0, atol=0)
    with pytest.raises(ValueError, match="horizon must be a positive int"):  # the forecast contract: no empty forecasts
        model.forecast(x, 0)


@pytest.mark.parametrize("name", ["rvq_joint", "mix_rvq", "mix_rvq_none_tied"])
def test_stacked_variants_are_causal_per_position(name):
    model = VARIANTS[name]()
    input_ids = torch.randint(0, K, (2, 16), generator=torch.Generator().manual_seed(2))
    out = model(input_ids)
    out.embeddings.retain_grad()
    block, positions = model.prediction_block, out.embeddings.shape[1]
    half = positions // 2
    out.logits[:, : half * block].sum().backward()
    grad = out.embeddings.grad.abs().sum(-1)  # (batch rows, positions)
    assert grad[:, :half].gt(0).all() and grad[:, half:].eq(0).all()


def test_the_tokenizer_is_a_frozen_sub_module_saved_with_the_lm(tmp_path):
    model = VARIANTS["embeds_rvq"]()
    assert not any(p.requires_grad for p in model.tokenizer.parameters())
    assert all(p.requires_grad for p in model.pre_embedding.parameters())
    model.train()
    assert model.training and not model.tokenizer.training
    model.eval().save_pretrained(tmp_path)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert not any(p.requires_grad for p in reloaded.tokenizer.parameters())
    state = reloaded.state_dict()
    assert any(k.startswith("tokenizer.quantizer.rvq.layers.0._codebook") for k in state)
    assert "transformer.model.embed_tokens.weight" not in state
    x, pos, sensor_type = _context(model)
    assert torch.equal(reloaded.encode(x), model.encode(x))
    trainable = build("flatgpt_embeds_rvq", train_tokenizer=True)
    assert all(p.requires_grad for p in trainable.tokenizer.parameters())


def test_from_pretrained_tokenizer_builds_a_new_lm_around_it(tmp_path):
    torch.manual_seed(0)
    tokenizer = AutoModel.from_config(rvq_config("flatgpt_rvq").tokenizer_config).eval()
    tokenizer.init_codebooks(signal(4, 32), seed=5)
    tokenizer.save_pretrained(tmp_path)
    from brain_gen_hf.models.flatgpt.modeling_flatgpt_rvq import FlatGPTRVQForCausalLM

    model = FlatGPTRVQForCausalLM.from_pretrained_tokenizer(
        tmp_path, hidden_size=24, input_shape=[16, 4, 2], backbone_config=qwen_backbone()
    ).eval()
    # grid fields not given are derived from the tokenizer
    assert model.config.vocab_size == K and model.config.temporal_reduction == 4
    assert model.config.spatial_reduction == [2, 1] and model.config.reduced_shape == (4, 2, 2)
    for key, value in tokenizer.state_dict().items():
        assert torch.equal(model.tokenizer.state_dict()[key], value), key
    x = signal()
    assert torch.equal(model.encode(x), tokenizer.flatten_codes(tokenizer.encode(x).codes))


def test_embedding_corruptor_only_acts_in_training():
    model = build(
        "flatgpt_embeds_rvq", tokenizer={**BRAINTOKMIX, "num_quantizers": 4}, input_shape=[16, 4, 4], corrupt=True
    )
    codes = torch.randint(0, K, (2, 32), generator=torch.Generator().manual_seed(1))
    plain = torch.cat([model.pre_embedding.emb[i % 4](codes[:, i : i + 1]) for i in range(32)], dim=1)
    torch.testing.assert_close(model.pre_embedding(codes), plain, rtol=0, atol=0)
    model.train()
    torch.manual_seed(0)
    noisy = model.pre_embedding(codes)
    assert not torch.equal(noisy, plain)
    null_rows = (noisy[:, :, None, :] == model.pre_embedding.null_embed[None, None]).all(-1).any(-1)
    assert null_rows.any()  # some codes became the learned null embedding
    with pytest.raises(ValueError, match="corruption_p_levels"):
        rvq_config("flatgpt_embeds_rvq", corrupt=True)  # 2 levels: brain-gen's 4 defaults do not fit
    assert rvq_config("flatgpt_embeds_rvq", corrupt=True, corruption_p_levels=[0.1, 0.2]).corrupt


def test_resize_context_grows_the_grid():
    model = VARIANTS["embeds_rvq"]()
    x, pos, sensor_type = _context(model, length=32)
    with pytest.raises(ValueError, match="exceed"):
        model(input_values=x)
    model.resize_context(input_shape=[32, 4, 2], rope_theta=2e4)
    assert model.config.reduced_shape == (8, 2, 2)
    assert model(input_values=x).logits.shape == (2, 32, K)


def test_config_errors():
    with pytest.raises(ValueError, match="codebook_size"):
        rvq_config("flatgpt_rvq", vocab_size=32)  # tokenizer / backbone vocabulary mismatch
    with pytest.raises(ValueError, match="n_neuro"):
        rvq_config("flatgpt_rvq", input_shape=[16, 6, 2], spatial_reduction=[2, 1])  # 3 latents, tokenizer has 2
    with pytest.raises(ValueError, match="n_neuro"):
        rvq_config("flatgpt_rvq", spatial_reduction=[1, 1])
    with pytest.raises(ValueError, match="hop"):
        rvq_config("flatgpt_rvq", temporal_reduction=2)
    with pytest.raises(ValueError, match="one position per RVQ level"):
        rvq_config("flatgpt_embeds_rvq", input_shape=[16, 4, 3])
    with pytest.raises(ValueError, match="quantizer_levels"):
        rvq_config("flatgpt_rvq", quantizer_levels=3)
    with pytest.raises(ValueError, match="window_length"):
        rvq_config("flatgpt_rvq", input_shape=[12, 4, 2])
    with pytest.raises(ValueError, match="divisible by the 4 concatenated"):
        FlatGPTMixRVQConfig(
            tokenizer_config=dict(BRAINTOKMIX),
            hidden_size=22,
            input_shape=[16, 4, 2],
            backbone_config={**qwen_backbone(), "num_attention_heads": 2, "num_key_value_heads": 1},
        )
    with pytest.raises(ValueError, match="quantizer_embed_dim"):
        rvq_config("flatgpt_rvq", quantizer_embed_dim=8)
    with pytest.raises(ValueError, match="quantizer_head"):
        rvq_config("flatgpt_rvq", quantizer_head="shared")
    with pytest.raises(ValueError, match="tokenizer_config.model_type"):
        rvq_config("flatgpt_rvq", tokenizer={"model_type": "wavenet3d"})
    with pytest.raises(ValueError, match="block_size"):
        rvq_config("flatgpt_rvq", block_size=2)


def test_input_errors():
    model = VARIANTS["rvq_joint"]()
    x, pos, sensor_type = _context(model)
    codes = model.encode(x)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        model.generate(codes + K, max_new_tokens=4)
    with pytest.raises(ValueError, match="multiple"):
        model.generate(codes, max_new_tokens=3)  # half a stack
    with pytest.raises(ValueError, match="exceed"):  # past the 8-position grid without a sliding window
        model.generate(codes, max_new_tokens=12)
    long = signal(2, 24)
    with pytest.raises(ValueError, match="exceed"):  # a context longer than the grid, window = context
        model.forecast(long, 4)
    assert model.forecast(long, 4, max_context_tokens=16).values.shape == (2, 4, 4)  # the sliding window takes it
    with pytest.raises(ValueError, match="whole number of token steps"):
        model.forecast(x, 4, max_context_tokens=10)
    with pytest.raises(ValueError, match="horizon"):
        model.forecast(x, -1)
    with pytest.raises(ValueError, match="channels"):
        model.forecast(signal(channels=3), 4)
    with pytest.raises(ValueError, match="whole token steps"):
        model.decode(codes[:, :6])
