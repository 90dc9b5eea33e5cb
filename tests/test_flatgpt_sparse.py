"""FlatGPT block-sparse attention (brain-gen `sparse: true`): the pattern, its three mask forms, the model."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM

from brain_gen_hf.compat import cache_of
from brain_gen_hf.models.flatgpt.sparse_attention import sparse_attention_mask
from tests.flatgpt_configs import V, flatgpt_config, qwen_backbone

# 2-token frames in 4-token blocks (2 frames per block), 24 tokens = 6 blocks, 4 heads of which 1 and 2 are global.
# local window 3 frames -> 2 blocks (rounded up); global window 3 frames -> 2 blocks; anchors every 7 frames ->
# every 3 blocks (rounded down).
PATTERN = {
    "tokens_per_frame": 2,
    "block_size": 4,
    "local_window_frames": 3,
    "global_window_frames": 3,
    "anchor_stride_frames": 7,
    "sink_frames": 0,
    "global_heads": [1, 2],
}
# Which key blocks (columns) each query block (rows) may see, written out by hand.
LOCAL_BLOCKS = [
    [1, 0, 0, 0, 0, 0],
    [1, 1, 0, 0, 0, 0],
    [0, 1, 1, 0, 0, 0],
    [0, 0, 1, 1, 0, 0],
    [0, 0, 0, 1, 1, 0],
    [0, 0, 0, 0, 1, 1],
]
GLOBAL_BLOCKS = [  # window of 2 blocks plus the anchor blocks 0 and 3
    [1, 0, 0, 0, 0, 0],
    [1, 1, 0, 0, 0, 0],
    [1, 1, 1, 0, 0, 0],
    [1, 0, 1, 1, 0, 0],
    [1, 0, 0, 1, 1, 0],
    [1, 0, 0, 1, 1, 1],
]
# Sinks: 4 frames -> blocks 0 and 1 always visible to global heads; anchor stride 100 frames -> 50 blocks (block 0).
SINK_PATTERN = {**PATTERN, "anchor_stride_frames": 100, "sink_frames": 4}
GLOBAL_SINK_BLOCKS = [
    [1, 0, 0, 0, 0, 0],
    [1, 1, 0, 0, 0, 0],
    [1, 1, 1, 0, 0, 0],
    [1, 1, 1, 1, 0, 0],
    [1, 1, 0, 1, 1, 0],
    [1, 1, 0, 0, 1, 1],
]
L, HEADS = 24, 4


def _expected(global_blocks) -> torch.Tensor:
    """(1, heads, L, L) boolean mask: causal inside the hand-written block pattern of each head."""
    causal = np.tril(np.ones((L, L), dtype=bool))
    per_head = []
    for head in range(HEADS):
        blocks = global_blocks if head in PATTERN["global_heads"] else LOCAL_BLOCKS
        per_head.append(np.kron(np.array(blocks), np.ones((4, 4))).astype(bool) & causal)
    return torch.from_numpy(np.stack(per_head))[None]


def _mask(pattern, past=0, length=L, kind="sdpa", dtype=torch.float32):
    return sparse_attention_mask(
        pattern, HEADS, past, length, attn_implementation=kind, dtype=dtype, device=torch.device("cpu")
    )


@pytest.mark.parametrize("pattern, global_blocks", [(PATTERN, GLOBAL_BLOCKS), (SINK_PATTERN, GLOBAL_SINK_BLOCKS)])
def test_dense_mask_is_the_hand_built_pattern(pattern, global_blocks):
    expected = _expected(global_blocks)
    assert torch.equal(_mask(pattern), expected)
    # A cached step at offset P attends with rows P .. P + n - 1 of the same pattern.
    for past, length in ((9, 1), (13, 3), (20, 4)):
        assert torch.equal(_mask(pattern, past, length), expected[:, :, past : past + length, : past + length])
    additive = _mask(pattern, 13, 3, kind="eager", dtype=torch.float16)
    assert additive.dtype == torch.float16
    want = torch.where(expected[:, :, 13:16, :16], 0.0, torch.finfo(torch.float16).min).to(torch.float16)
    assert torch.equal(additive, want)


@pytest.mark.parametrize("past, length", [(0, L), (13, 3)])
def test_flex_block_mask_attends_like_the_dense_mask(past, length):
    """flex_attention with the BlockMask == SDPA with the hand-built dense mask (flex runs unfused on CPU)."""
    from torch.nn.attention.flex_attention import BlockMask, flex_attention

    block_mask = _mask(PATTERN, past, length, kind="flex_attention")
    assert isinstance(block_mask, BlockMask)
    generator = torch.Generator().manual_seed(0)
    q = torch.randn(1, HEADS, length, 8, generator=generator)
    k, v = torch.randn(2, 1, HEADS, past + length, 8, generator=generator)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "flex_attention called without torch.compile()"
        flex = flex_attention(q, k, v, block_mask=block_mask)
    expected = _expected(GLOBAL_BLOCKS)[:, :, past : past + length, : past + length]
    dense = F.scaled_dot_product_attention(q, k, v, attn_mask=expected)
    torch.testing.assert_close(flex, dense, rtol=1e-5, atol=1e-5)


def _config(layers=2, **kwargs):
    kwargs.setdefault("sparse_attention", dict(PATTERN))
    backbone = {**qwen_backbone(max_positions=64), "num_hidden_layers": layers}
    return flatgpt_config(backbone, input_shape=[12, 2, 1], **kwargs)


def _ids(seed=0, length=L):
    return torch.randint(0, V, (2, length), generator=torch.Generator().manual_seed(seed))


def test_one_layer_model_sees_exactly_the_allowed_tokens():
    """With one decoder layer, logits at q depend on the token at k iff some head may attend q -> k."""
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(_config(layers=1)).eval()
    out = model(_ids())
    reach = _expected(GLOBAL_BLOCKS)[0].any(dim=0)  # (L, L) union over heads
    for q in range(L):
        (grad,) = torch.autograd.grad(out.logits[0, q].sum(), out.embeddings, retain_graph=True)
        depends = grad[0].abs().sum(dim=-1) > 0
        assert torch.equal(depends, reach[q]), q


def test_eager_and_sdpa_give_the_same_logits_and_dense_differs():
    torch.manual_seed(0)
    sdpa = AutoModelForCausalLM.from_config(_config()).eval()
    eager = AutoModelForCausalLM.from_config(_config(), attn_implementation="eager").eval()
    eager.load_state_dict(sdpa.state_dict())
    ids = _ids(1)
    torch.testing.assert_close(eager(ids).logits, sdpa(ids).logits, rtol=1e-5, atol=1e-5)
    dense = AutoModelForCausalLM.from_config(_config(sparse_attention=None)).eval()
    dense.load_state_dict(sdpa.state_dict())
    assert not torch.allclose(dense(ids).logits[:, 8:], sdpa(ids).logits[:, 8:])  # the pattern is in effect


def test_cached_steps_and_generation_match_uncached():
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(_config()).eval()
    ids = _ids(2)
    full = model(ids).logits
    out = model(ids[:, :10], use_cache=True)
    cache, steps = cache_of(out), [out.logits]
    for start, stop in ((10, 13), (13, 14), (14, L)):  # crosses block and window boundaries
        out = model(ids[:, start:stop], use_cache=True, cache=cache)
        cache = cache_of(out)
        steps.append(out.logits)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=1e-5, atol=1e-5)

    prompt = ids[:, :9]
    cached = model.generate(prompt, max_new_tokens=12, do_sample=False, use_cache=True)
    uncached = model.generate(prompt, max_new_tokens=12, do_sample=False, use_cache=False)
    assert cached.shape == (2, 21)
    assert torch.equal(cached, uncached)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"window": 3}, "unknown `sparse_attention` keys"),
        ({"block_size": 5}, "multiple of `tokens_per_frame`"),
        ({"global_heads": [4]}, r"query-head indices in \[0, 4\)"),
        ({"local_window_frames": 0}, "positive integer"),
    ],
)
def test_bad_sparse_configs_raise(change, message):
    with pytest.raises(ValueError, match=message):
        _config(sparse_attention={**PATTERN, **change})


def test_sparse_attention_and_block_prediction_are_exclusive():
    with pytest.raises(ValueError, match="cannot be combined"):
        _config(block_size=2)


# brain-gen configs/flatgpt/omega_only/qwen2p5/model_sparse.yaml (the one `sparse: true` config)
REFERENCE_SPARSE_LM = {
    "trf_class": "Qwen2_5_Video",
    "hidden_size": 1024,
    "vocab_size": 16384,
    "input_shape": [5760, 68, 4],
    "spatial_reduction": [8, 1],
    "temporal_reduction": 8,
    "tokenizer_path": "/vol/data/trainings/omega/1to50hz_ss/brainomni_tok/best.ckpt",
    "trf_args": {
        "intermediate_size": 4096,
        "num_hidden_layers": 12,
        "head_dim": 128,
        "num_attention_heads": 8,
        "num_key_value_heads": 2,
        "attention_dropout": 0.0,
        "max_position_embeddings": 32768,
        "rope_theta": 1000000.0,
        "rope_scaling": {"mrope_section": [24, 20, 20], "rope_type": "default"},
        "_attn_implementation": "sdpa",
        "sparse": True,
    },
}


def test_reference_sparse_config_converts_with_brain_gen_defaults():
    from brain_gen_hf.conversion import config_from_reference

    # The YAML does not pin its tokenizer checkpoint's config: a BrainOmni tokenizer matching its grid.
    tokenizer = config_from_reference(
        "BrainOmniCausalTokenizer",
        {"window_length": 5760, "ratios": [2, 2, 2], "n_neuro": 8, "num_quantizers": 4, "codebook_size": 16384},
    )
    config = config_from_reference("FlatGPTEmbedsRVQ", REFERENCE_SPARSE_LM, tokenizer_config=tokenizer)
    assert config.rope_grid == (720, 8, 4)  # 32 tokens per frame, as brain-gen's mask assumes
    assert config.sparse_attention == {
        "tokens_per_frame": 32,
        "block_size": 256,
        "local_window_frames": 8,
        "global_window_frames": 24,
        "anchor_stride_frames": 120,
        "sink_frames": 0,
        "global_heads": [3, 7],
    }
    assert "sparse" not in config.backbone_config.to_dict()


def test_reference_sparse_without_effect_converts_dense():
    from brain_gen_hf.models.flatgpt.convert_flatgpt import config_from_reference

    def kwargs(trf_class, backbone, **extra):
        trf_args = {k: v for k, v in backbone.items() if k != "model_type"}
        return {
            "trf_class": trf_class,
            "trf_args": {**trf_args, "sparse": True, **extra},
            "hidden_size": 24,
            "vocab_size": V,
            "input_shape": [8, 2, 1],
        }

    from tests.flatgpt_configs import smollm3_backbone

    with pytest.warns(UserWarning, match="backbone 'SmoLLM3'"):
        assert config_from_reference("FlatGPT", kwargs("SmoLLM3", smollm3_backbone())).sparse_attention is None
    with pytest.warns(UserWarning, match="block-causal mask"):
        config = config_from_reference("FlatGPT", kwargs("Qwen2_5_Video", qwen_backbone(), block_size=2))
    assert config.sparse_attention is None and config.block_size == 2
