"""FlatGPT backbone: rotary modules rebuilt from the config on a RoPE change, and both KV-cache keywords."""

import pytest
import torch
from transformers import AutoModelForCausalLM

from brain_gen_hf.compat import CACHE_KWARG, cache_of
from brain_gen_hf.models.flatgpt.backbones import GridRotaryEmbedding
from tests.flatgpt_configs import V, flatgpt_config, qwen_backbone, smollm3_backbone


def _ids(length=12, seed=3):
    return torch.randint(0, V, (2, length), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("backbone", ["smollm3", "qwen"])
def test_new_rope_matches_a_model_built_with_it(backbone):
    """resize_context(rope_theta, max_position_embeddings) == building the model with those values."""

    def config(theta, max_positions):
        if backbone == "qwen":
            return flatgpt_config(qwen_backbone(theta=theta, max_positions=max_positions))
        return flatgpt_config({**smollm3_backbone(), "rope_theta": theta, "max_position_embeddings": max_positions})

    torch.manual_seed(0)
    resized = AutoModelForCausalLM.from_config(config(1e4, 64)).eval()
    before = resized(_ids()).logits
    old_rotary = resized.transformer.model.rotary_emb
    resized.resize_context(rope_theta=50.0, max_position_embeddings=96)
    rotary = resized.transformer.model.rotary_emb
    assert rotary is not old_rotary  # a fresh module, nothing edited inside the old one
    assert isinstance(rotary, GridRotaryEmbedding) == (backbone == "qwen")
    head_dim = 24 // 4
    expected_inv_freq = 1.0 / 50.0 ** (torch.arange(0, head_dim, 2).float() / head_dim)
    torch.testing.assert_close(rotary.inv_freq.cpu(), expected_inv_freq)

    built = AutoModelForCausalLM.from_config(config(50.0, 96)).eval()
    built.load_state_dict(resized.state_dict())
    after = resized(_ids()).logits
    assert not torch.allclose(after, before)  # the new theta changed the positions' rotation
    torch.testing.assert_close(after, built(_ids()).logits, rtol=0, atol=0)


def test_forward_takes_the_cache_under_either_keyword():
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(flatgpt_config()).eval()
    ids = _ids()
    full = model(ids).logits[:, -1]
    steps = {}
    for keyword in ("cache", "past_key_values"):
        out = model(ids[:, :-1], use_cache=True)
        assert CACHE_KWARG in out and cache_of(out) is not None  # the field the installed generate() reads
        steps[keyword] = model(ids[:, -1:], use_cache=True, **{keyword: cache_of(out)}).logits[:, -1]
    torch.testing.assert_close(steps["cache"], steps["past_key_values"], rtol=0, atol=0)
    torch.testing.assert_close(steps["cache"], full, rtol=1e-5, atol=1e-5)
    one, other = cache_of(model(ids[:, :-1], use_cache=True)), cache_of(model(ids[:, :-1], use_cache=True))
    with pytest.raises(ValueError, match="pass the KV cache once"):
        model(ids[:, -1:], use_cache=True, cache=one, past_key_values=other)
