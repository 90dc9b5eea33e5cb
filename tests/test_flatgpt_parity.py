"""FlatGPT / FlatGPTEmbeds / FlatGPTMix: parity with brain-gen reference vectors (converted weights).

Every constructor argument comes from the case's config.json; the reference's backbone config
(`meta.json -> backbone_config_resolved`) is checked against the converted one.
"""

import pytest
import torch
from transformers import GenerationConfig

from brain_gen_hf.conversion import convert_reference_checkpoint
from tests.refvec import assert_float_close, discover_cases, require_case

CASES = discover_cases({"FlatGPT", "FlatGPTEmbeds", "FlatGPTMix"})
# Architecture fields of the backbone that must survive conversion (rope fields are compared separately).
BACKBONE_FIELDS = (
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "hidden_act",
    "rms_norm_eps",
    "attention_dropout",
    "max_position_embeddings",
    "no_rope_layers",
    "attention_bias",
    "mlp_bias",
    "head_dim",
    "use_sliding_window",
)


def _convert(case):
    return convert_reference_checkpoint(case.registry_name, case.model_kwargs, case.state_dict)


@pytest.mark.parametrize("case", CASES)
def test_parity_flatgpt_backbone_config(case):
    case = require_case(case)
    model = _convert(case)
    resolved = case.meta["backbone_config_resolved"]
    ours = model.config.backbone_config
    assert ours.model_type == resolved["model_type"]
    for field in BACKBONE_FIELDS:
        if field in resolved:
            assert getattr(ours, field) == resolved[field], field
    rope = ours.rope_parameters
    assert rope["rope_theta"] == resolved["rope_theta"]
    if resolved.get("rope_scaling"):
        assert rope["mrope_section"] == resolved["rope_scaling"]["mrope_section"]


@pytest.mark.parametrize("case", CASES)
def test_parity_flatgpt_forward(case):
    case = require_case(case)
    model = _convert(case)
    inputs, expected = case.inputs, case.outputs
    codes = model.tokenize(inputs["x"])
    assert torch.equal(codes, expected["encode.codes"])
    block = model.config.block_size
    with torch.no_grad():
        out = model(codes, labels=codes)
    assert_float_close(out.last_hidden_state, expected["transformer.last_hidden_state"], "last_hidden_state")
    assert_float_close(out.logits, expected["head_logits_full"], "head_logits_full")
    for prefix in ("forward", "forward_pretokenized"):
        assert_float_close(out.logits[:, :-block], expected[f"{prefix}.logits"], f"{prefix}.logits")
        assert torch.equal(codes[:, block:], expected[f"{prefix}.targets"])
    assert_float_close(out.loss, expected["loss_CrossEntropyWithCodes"], "loss_CrossEntropyWithCodes")
    if "pre_embedding" in expected:
        assert_float_close(out.embeddings, expected["pre_embedding"], "pre_embedding")


@pytest.mark.parametrize("case", CASES)
def test_parity_flatgpt_rope(case):
    case = require_case(case)
    model = _convert(case)
    expected = case.outputs
    rotary = model.transformer.model.rotary_emb
    inv_freq = expected["nonpersistent_buffer.transformer.model.rotary_emb.inv_freq"]
    # Float tables recorded in another process: pow/cos/sin kernels may round differently on another CPU.
    assert_float_close(rotary.inv_freq, inv_freq, "inv_freq", rtol=1e-6, atol=0)
    if "position_ids" not in expected:  # 1-D RoPE backbone: transformers' own rotary module
        return
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import apply_rotary_pos_emb

    _, batch, length = expected["position_ids"].shape
    position_ids = model.transformer.position_ids(0, length, batch, None)
    assert torch.equal(position_ids, expected["position_ids"])
    cos_axes, sin_axes = rotary.axis_tables(torch.zeros(1), position_ids)
    assert cos_axes.dtype == expected["rope.cos"].dtype == torch.bfloat16
    torch.testing.assert_close(cos_axes, expected["rope.cos"])  # bfloat16 tolerances: one rounding step
    torch.testing.assert_close(sin_axes, expected["rope.sin"])
    cos, sin = rotary(torch.zeros(1), position_ids)
    q, k = apply_rotary_pos_emb(case.inputs["rope.q"], case.inputs["rope.k"], cos, sin)
    assert_float_close(q, expected["rope.q_embed"], "rope.q_embed")
    assert_float_close(k, expected["rope.k_embed"], "rope.k_embed")


def _greedy_forecast(model, context, args):
    """The reference's greedy rollout of a bin grid `(B, T, C, W)`: decoded steps `(B, steps, C)` and the sampled
    tokens. `forecast` reads the bins as `(B, C, T)` and returns them as `codes` `(B, C, steps)`."""
    bins = context.flatten(2).transpose(1, 2)
    output = model.forecast(
        bins,
        args["rollout_steps"],
        GenerationConfig(do_sample=False, use_cache=args["use_cache"]),
        max_context_tokens=args["max_context_tokens"],
        sliding_window_overlap=args["sliding_window_overlap"],
    )
    return output.codes.transpose(1, 2), output.tokens.flatten(0, -2)  # FlatGPTMix: (B, C, t) -> (B*C, t) rows


def _assert_same_decoded(output, expected, name):
    """Tokens decoded in this process vs the recording: bins exactly, a mu-law signal up to exp/log rounding."""
    if expected.is_floating_point():
        assert_float_close(output, expected, name, rtol=1e-6, atol=1e-7)
    else:
        assert torch.equal(output, expected), name


@pytest.mark.parametrize("case", CASES)
def test_parity_flatgpt_greedy_forecast(case):
    case = require_case(case)
    model = _convert(case)
    context, tensors = case.inputs["forecast.initial_input"], case.meta["tensors"]
    recorded = [key for key in ("forecast", "forecast_nocache") if f"outputs:{key}.output" in tensors]
    for key in recorded:
        args = tensors[f"outputs:{key}.output"]["args"]
        output, sampled = _greedy_forecast(model, context, args)
        assert torch.equal(sampled, case.outputs[f"{key}.sampled_tokens"]), key
        _assert_same_decoded(output, case.outputs[f"{key}.output"], key)
    # Paths that raise in the reference (Delimited strip, Embeds without cache) work here and agree with the cache.
    for key in ("forecast", "forecast_nocache"):
        if key in recorded:
            continue
        assert key in case.meta["errors"], f"{key} neither recorded nor a documented reference error"
        args = (
            dict(tensors[f"outputs:{recorded[0]}.output"]["args"])
            if recorded
            else {"rollout_steps": 3, "max_context_tokens": None, "sliding_window_overlap": 0.5}
        )
        args["use_cache"] = key == "forecast"
        output, sampled = _greedy_forecast(model, context, args)
        other, other_sampled = _greedy_forecast(model, context, {**args, "use_cache": not args["use_cache"]})
        assert torch.equal(output, other) and torch.equal(sampled, other_sampled)
        if recorded:
            _assert_same_decoded(output, case.outputs[f"{recorded[0]}.output"], recorded[0])
        assert output.shape == (context.shape[0], args["rollout_steps"], context.shape[2])
