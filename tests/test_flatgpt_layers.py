"""FlatGPT family: config validation, positions and masks, layers, corruption and context resizing."""

import pytest
import torch

from brain_gen_hf.models.flatgpt.backbones import block_causal_mask, grid_position_ids
from brain_gen_hf.models.flatgpt.flatgpt_layers import corrupt_tokens, corruption_schedule
from tests.flatgpt_configs import V, embeds_config, flatgpt_config, mix_config, qwen_backbone, smollm3_backbone


def test_config_validation_errors():
    with pytest.raises(ValueError, match="disagrees with `vocab_size`"):
        flatgpt_config({**qwen_backbone(), "vocab_size": 99})
    with pytest.raises(ValueError, match="delimiter id 256"):
        flatgpt_config(smollm3_backbone(), tokenizer_config={"tokenizer_class": "DelimitedTokenizer"})
    with pytest.raises(ValueError, match="multiple of `temporal_reduction`"):
        flatgpt_config(input_shape=[9, 3, 1], temporal_reduction=2)
    with pytest.raises(ValueError, match="reduces `input_shape`"):
        flatgpt_config(input_shape=[8, 3, 1], spatial_reduction=[4, 1])
    with pytest.raises(ValueError, match="summing to head_dim/2"):
        flatgpt_config(qwen_backbone(mrope_section=[1, 1, 2]))
    with pytest.raises(ValueError, match="model_type"):
        flatgpt_config({"model_type": "vit"})  # registered, but not a causal decoder
    with pytest.raises(ValueError, match="divisible by the 5 channels"):
        mix_config(input_shape=[8, 5, 1])
    with pytest.raises(ValueError, match="W' = 1"):
        embeds_config(input_shape=[8, 3, 2])
    with pytest.raises(ValueError, match="unknown `token_corruption` keys"):
        flatgpt_config(token_corruption={"p_end": 0.1, "typo": 1})


def test_grid_positions_and_block_mask():
    ids = grid_position_ids((2, 2, 1), 0, 4, 1)
    assert ids[0, 0].tolist() == [0, 0, 1, 1] and ids[1, 0].tolist() == [0, 1, 0, 1] and ids[2].abs().sum() == 0
    offset = grid_position_ids((2, 2, 1), 1, 2, 1)
    assert offset[0, 0].tolist() == [0, 1] and offset[1, 0].tolist() == [1, 0]
    with pytest.raises(ValueError, match="exceed the 4 cells"):
        grid_position_ids((2, 2, 1), 3, 2, 1)
    mask = block_causal_mask(2, 0, 4)[0, 0]
    assert mask.tolist() == [[True, True, False, False]] * 2 + [[True] * 4] * 2


def test_block_causal_model_is_causal_across_blocks():
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(flatgpt_config(smollm3_backbone(), block_size=2)).eval()
    out = model(torch.randint(0, V, (1, 12)))
    out.embeddings.retain_grad()
    out.logits[:, :10].sum().backward()
    grad = out.embeddings.grad[0].abs().sum(-1)
    assert grad[:10].gt(0).all() and grad[10:].eq(0).all()
    with pytest.raises(ValueError, match="blocks of 2"):
        model.generate(torch.zeros(1, 4, dtype=torch.long), max_new_tokens=2)


def test_token_corruption_schedule_and_replacement():
    schedule = corruption_schedule(10, 0.01, 0.05)
    torch.testing.assert_close(schedule[[0, -1]], torch.tensor([0.01, 0.05]), rtol=1e-2, atol=0)
    assert (schedule.diff() > 0).all()
    assert corruption_schedule(5, 0.0, 0.1)[0] == 0
    torch.manual_seed(0)
    codes = torch.randint(0, V, (4, 60))
    corrupted = corrupt_tokens(codes, V, p_start=0.5, p_end=0.9, tokens_per_step=3, block_len_steps=2)
    changed = corrupted != codes
    assert changed.any() and (corrupted < V).all()
    # whole steps are corrupted, and a corrupted token never keeps its id
    assert (changed.reshape(4, 20, 3).all(-1) == changed.reshape(4, 20, 3).any(-1)).all()
    with pytest.raises(ValueError, match="multiple of tokens_per_step"):
        corrupt_tokens(codes[:, :59], V, p_start=0.5, p_end=0.5, tokens_per_step=3, block_len_steps=2)


def test_corruption_only_in_training_and_targets_stay_clean():
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    config = flatgpt_config(token_corruption={"p_start": 0.9, "p_end": 0.9, "block_len_steps": 1})
    model = AutoModelForCausalLM.from_config(config)
    x = torch.randint(0, V, (2, 12))
    clean = model.eval()(x, labels=x)
    torch.manual_seed(1)
    noisy = model.train()(x, labels=x)
    assert not torch.equal(clean.logits, noisy.logits)
    model.eval()
    assert torch.equal(model(x).logits, clean.logits)


def test_resize_context_updates_grid_rope_and_positions():
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(flatgpt_config(qwen_backbone(max_positions=32), input_shape=[4, 1, 1]))
    old_inv_freq = model.transformer.model.rotary_emb.inv_freq.clone()
    with pytest.raises(ValueError, match="exceed"):
        model(torch.zeros(1, 8, dtype=torch.long))
    model.resize_context(input_shape=[8, 1, 1], rope_theta=2e5, max_position_embeddings=64)
    assert model.config.reduced_shape == (8, 1, 1) and model.transformer.max_positions == 8
    assert model.config.backbone_config.rope_parameters["rope_theta"] == 2e5
    assert model.config.backbone_config.max_position_embeddings == 64
    assert not torch.equal(model.transformer.model.rotary_emb.inv_freq, old_inv_freq)
    assert model(torch.zeros(1, 8, dtype=torch.long)).logits.shape == (1, 8, V)
    with pytest.raises(ValueError, match="cannot shrink"):
        model.resize_context(input_shape=[4, 1, 1])
    with pytest.raises(ValueError, match="only the time length"):
        model.resize_context(input_shape=[8, 2, 1])


def test_embeds_head_is_tied_to_the_next_slot():
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(embeds_config()).eval()
    hidden = torch.randn(1, 3, 24)
    logits = model.head(hidden, offset=0)
    for pos in range(3):
        expected = hidden[0, pos] @ model.pre_embedding.emb[(pos + 1) % 3].weight.T
        torch.testing.assert_close(logits[0, pos], expected)
    assert "transformer.model.embed_tokens.weight" not in model.state_dict()
