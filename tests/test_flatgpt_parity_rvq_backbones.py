"""RVQ FlatGPT cases, backbone and corruption in isolation (the full variants: tests/test_flatgpt_rvq_parity.py).

The reference's backbone input (`pre_embedding`) is fed to our backbone with the converted `transformer.*`
weights; hidden states, 3-D positions and RoPE tables must match, and so must the seeded token corruption.
"""

import pytest
import torch

from brain_gen_hf.models.flatgpt.backbones import FlatGPTBackbone
from brain_gen_hf.models.flatgpt.configuration_flatgpt import FlatGPTConfig
from brain_gen_hf.models.flatgpt.convert_flatgpt import backbone_config_from_reference
from brain_gen_hf.models.flatgpt.flatgpt_layers import corrupt_tokens, corruption_schedule
from tests.refvec import assert_float_close, discover_cases, require_case

CASES = discover_cases({"FlatGPTRVQ", "FlatGPTMixRVQ", "FlatGPTEmbedsRVQ"})


def _rope_grid(registry_name: str, kwargs: dict) -> list[int]:
    T, H, W = kwargs["input_shape"]
    spatial = kwargs.get("spatial_reduction", 1)
    spatial = [spatial, spatial] if isinstance(spatial, int) else spatial
    reduced = [T // kwargs.get("temporal_reduction", 1), H // spatial[0], W // spatial[1]]
    if registry_name == "FlatGPTRVQ":  # one position per (t, latent) RVQ stack
        return [reduced[0], reduced[1], 1]
    if registry_name == "FlatGPTMixRVQ":  # one position per time step
        return [reduced[0], 1, 1]
    return reduced


def _backbone(case) -> FlatGPTBackbone:
    kwargs = case.model_kwargs
    backbone, block_size, _ = backbone_config_from_reference(kwargs["trf_class"], kwargs["trf_args"])
    config = FlatGPTConfig(
        backbone_config=backbone,
        hidden_size=kwargs["hidden_size"],
        vocab_size=kwargs["vocab_size"],
        input_shape=_rope_grid(case.registry_name, kwargs),
        block_size=block_size,
    )
    module = FlatGPTBackbone(config, keep_token_embedding=True).eval()
    weights = {k[len("transformer.") :]: v for k, v in case.state_dict.items() if k.startswith("transformer.")}
    module.load_state_dict(weights, strict=True)
    return module


@pytest.mark.parametrize("case", CASES)
def test_parity_flatgpt_rvq_backbone(case):
    case = require_case(case)
    backbone, expected = _backbone(case), case.outputs
    with torch.no_grad():
        hidden = backbone(expected["pre_embedding"]).last_hidden_state
    assert_float_close(hidden, expected["transformer.last_hidden_state"], "transformer.last_hidden_state")
    if backbone.grid is None:
        return
    _, batch, length = expected["position_ids"].shape
    position_ids = backbone.position_ids(0, length, batch, None)
    assert torch.equal(position_ids, expected["position_ids"])
    rotary = backbone.model.rotary_emb
    if expected["rope.cos"].ndim == 4:  # Qwen2.5 records the per-axis tables, Qwen3 the merged ones
        cos, sin = rotary.axis_tables(torch.zeros(1), position_ids)
    else:
        cos, sin = rotary(torch.zeros(1), position_ids)
    # Recorded in another process: cos/sin kernels may round differently on another CPU (dtype-aware tolerances).
    torch.testing.assert_close(cos, expected["rope.cos"])
    torch.testing.assert_close(sin, expected["rope.sin"])


@pytest.mark.parametrize("case", CASES)
def test_parity_flatgpt_rvq_token_corruption(case):
    case = require_case(case)
    meta = case.meta["tensors"].get("outputs:token_corruption.codes")
    if meta is None:
        assert "token_corruption_cfg" not in case.model_kwargs
        return
    cfg = meta["args"]["cfg"]
    schedule = corruption_schedule(len(case.outputs["token_corruption.schedule"]), cfg["p_start"], cfg["p_end"])
    assert_float_close(schedule, case.outputs["token_corruption.schedule"], "token_corruption.schedule")
    torch.manual_seed(meta["args"]["torch.manual_seed"])
    corrupted = corrupt_tokens(
        case.outputs["encode.codes"],
        case.model_kwargs["vocab_size"],
        p_start=cfg["p_start"],
        p_end=cfg["p_end"],
        tokens_per_step=cfg["tokens_per_step"],
        block_len_steps=cfg["block_len_steps"],
    )
    assert torch.equal(corrupted, case.outputs["token_corruption.codes"])
