"""FlatGPTRVQ / FlatGPTMixRVQ / FlatGPTEmbedsRVQ: parity with brain-gen reference vectors (converted weights).

The brain tokenizer's config comes from the case's `tokenizer_class` / `tokenizer_kwargs`, the LM's from
`model_kwargs`; the frozen tokenizer's weights are inside the LM checkpoint (`tokenizer.*`).

Our models read flat codes and return flat logits in (time, latent, level) order; brain-gen's stacked
intermediates ((B, L, Q) codes, (B, L, Q, K) head logits, per-latent rows for Mix) are compared through
`positions_view` and a rearrange. brain-gen counts forecast windows in positions, we count flat codes.
"""

import copy

import pytest
import torch
from einops import rearrange
from transformers import GenerationConfig

from brain_gen_hf.conversion import config_from_reference, convert_reference_checkpoint
from tests.refvec import assert_float_close, discover_cases, require_case

CASES = discover_cases({"FlatGPTRVQ", "FlatGPTMixRVQ", "FlatGPTEmbedsRVQ"})


def _convert(case):
    tokenizer_config = config_from_reference(case.config["tokenizer_class"], case.config["tokenizer_kwargs"])
    return convert_reference_checkpoint(
        case.registry_name, case.model_kwargs, case.state_dict, tokenizer_config=tokenizer_config
    )


def _signal(case, key="x"):
    return case.inputs[key], case.inputs["pos"], case.inputs["sensor_type"]


def _stacked_head_logits(model, logits):
    """Our flat logits -> brain-gen's head output layout."""
    cfg = model.config
    if cfg.model_type == "flatgpt_rvq":
        return rearrange(logits, "b (l q) k -> b l q k", q=cfg.num_levels)
    if cfg.model_type == "flatgpt_mix_rvq":
        return rearrange(logits, "b (t c q) k -> (b c) t q k", c=cfg.num_latents, q=cfg.num_levels)
    return logits


@pytest.mark.parametrize("case", CASES)
def test_parity_flatgpt_rvq_forward(case):
    case = require_case(case)
    model, expected = _convert(case), case.outputs
    codes = model.encode(*_signal(case))
    assert torch.equal(codes, expected["encode.codes"])
    assert torch.equal(model.positions_view(codes), expected["model_encode_tokens.codes"])
    block = model.prediction_block
    with torch.no_grad():
        out = model(codes, labels=codes)
        x, pos, sensor_type = _signal(case)
        from_signal = model(input_values=x, pos=pos, sensor_type=sensor_type)
    assert_float_close(out.embeddings, expected["pre_embedding"], "pre_embedding")
    assert_float_close(out.last_hidden_state, expected["transformer.last_hidden_state"], "last_hidden_state")
    assert_float_close(_stacked_head_logits(model, out.logits), expected["head_logits_full"], "head_logits_full")
    assert_float_close(out.logits[:, :-block], expected["forward_pretokenized.logits"], "forward_pretokenized.logits")
    assert torch.equal(codes[:, block:], expected["forward_pretokenized.targets"])
    assert_float_close(from_signal.logits[:, :-block], expected["forward.logits"], "forward.logits")
    assert torch.equal(from_signal.input_ids[:, block:], expected["forward.targets"])
    assert_float_close(out.loss, expected["loss_CrossEntropyWithCodes"], "loss_CrossEntropyWithCodes")
    assert_float_close(from_signal.loss, expected["loss_CrossEntropyWithCodes"], "loss from the signal")


@pytest.mark.parametrize("case", CASES)
def test_parity_flatgpt_rvq_training_corruption(case):
    case = require_case(case)
    model, expected, tensors = _convert(case), case.outputs, case.meta["tensors"]
    if "outputs:token_corruption.codes" not in tensors:
        assert "token_corruption_cfg" not in case.model_kwargs
        return
    codes = expected["encode.codes"]
    model.train()
    assert not model.tokenizer.training  # a frozen tokenizer stays in eval mode
    torch.manual_seed(tensors["outputs:token_corruption.codes"]["args"]["torch.manual_seed"])
    assert torch.equal(model.maybe_corrupt(codes), expected["token_corruption.codes"])
    torch.manual_seed(tensors["outputs:train_forward_with_corruption.logits"]["args"]["torch.manual_seed"])
    with torch.no_grad():
        out = model(codes, labels=codes)
    assert_float_close(
        out.logits[:, :-1], expected["train_forward_with_corruption.logits"], "train_forward_with_corruption.logits"
    )
    assert torch.equal(codes[:, 1:], expected["train_forward_with_corruption.targets"])
    if "embedding_corruptor.train_output" in expected:
        torch.manual_seed(tensors["outputs:embedding_corruptor.train_output"]["args"]["torch.manual_seed"])
        with torch.no_grad():
            embedded = model.pre_embedding(codes)
        assert_float_close(embedded, expected["embedding_corruptor.train_output"], "embedding_corruptor.train_output")


@pytest.mark.parametrize("case", CASES)
def test_parity_flatgpt_rvq_resize_context(case):
    case = require_case(case)
    tensors = case.meta["tensors"]
    if "outputs:resize_context.inv_freq" not in tensors:
        return
    model = copy.deepcopy(_convert(case))
    args = tensors["outputs:resize_context.inv_freq"]["args"]
    model.resize_context(
        input_shape=args["input_shape"],
        rope_theta=args["rope_theta"],
        max_position_embeddings=args["max_position_embeddings"],
    )
    assert list(model.config.reduced_shape) == case.meta["scalars"]["resize_context.reduced_shape"]["value"]
    assert_float_close(
        model.transformer.model.rotary_emb.inv_freq,
        case.outputs["resize_context.inv_freq"],
        "resize_context.inv_freq",
        rtol=1e-6,
        atol=0,
    )  # pow kernels may round differently
    with torch.no_grad():
        out = model(
            input_values=case.inputs["resize_context.x_long"],
            pos=case.inputs["pos"],
            sensor_type=case.inputs["sensor_type"],
        )
    assert_float_close(
        out.logits[:, :-1], case.outputs["resize_context.forward.logits"], "resize_context.forward.logits"
    )
    assert torch.equal(out.input_ids[:, 1:], case.outputs["resize_context.forward.targets"])


def _greedy_forecast(model, case, args):
    """The decoded greedy rollout `(B, C, rollout_steps)` and the flat codes it sampled."""
    window = args["max_context_tokens"]
    window = window * model.prediction_block if window not in (None, -1) else window  # positions -> flat codes
    output = model.forecast(
        case.inputs["forecast.initial_x"],
        args["rollout_steps"],
        GenerationConfig(do_sample=False, use_cache=args["use_cache"]),
        pos=case.inputs["pos"],
        sensor_type=case.inputs["sensor_type"],
        max_context_tokens=window,
        sliding_window_overlap=args["sliding_window_overlap"],
    )
    return output.values, output.tokens


def _flat_sampled(model, sampled):
    """brain-gen's sampled blocks ((B, n, Q) stacks, (B*C, t, Q) rows) -> our flat code order."""
    if model.config.model_type == "flatgpt_mix_rvq":
        return rearrange(sampled, "(b c) t q -> b (t c q)", c=model.config.num_latents)
    return sampled.reshape(sampled.shape[0], -1)


@pytest.mark.parametrize("case", CASES)
def test_parity_flatgpt_rvq_greedy_forecast(case):
    case = require_case(case)
    model, tensors = _convert(case), case.meta["tensors"]
    recorded = [key for key in ("forecast", "forecast_nocache") if f"outputs:{key}.output" in tensors]
    assert "forecast" in recorded
    for key in recorded:
        args = tensors[f"outputs:{key}.output"]["args"]
        output, sampled = _greedy_forecast(model, case, args)
        assert torch.equal(sampled, _flat_sampled(model, case.outputs[f"{key}.sampled_tokens"])), key
        # brain-gen pads the decoded rollout to whole tokenizer windows; we return the `rollout_steps` samples.
        reference = case.outputs[f"{key}.output"]
        assert output.shape == (*reference.shape[:2], args["rollout_steps"])
        assert_float_close(output, reference[..., : args["rollout_steps"]], f"{key}.output")
    if "forecast_nocache" not in recorded:  # raises in brain-gen (ListEmbedding needs whole steps); works here
        assert "forecast_nocache" in case.meta["errors"]
        args = dict(tensors["outputs:forecast.output"]["args"], use_cache=False)
        output, sampled = _greedy_forecast(model, case, args)
        assert torch.equal(sampled, _flat_sampled(model, case.outputs["forecast.sampled_tokens"]))
        assert_float_close(output, case.outputs["forecast.output"][..., : args["rollout_steps"]], "forecast_nocache")
