"""A tiny saved token LM (FlatGPTEmbedsRVQ over a BrainTokMix tokenizer) matching `tiny_meg_dataset`: 102
magnetometers at 100 Hz, a 1.28 s grid. Untrained: the evaluation tests check the pipeline, not the model."""

from __future__ import annotations

import pytest

from tests.tiny_configs import CHANNELS, TINY_QWEN
from tests.tiny_configs import TINY_BRAINTOKMIX as TOKENIZER

QWEN = {**TINY_QWEN, "max_position_embeddings": 512}


@pytest.fixture(scope="session")
def tiny_eval_model(tmp_path_factory):
    import torch
    from transformers import AutoModel, AutoModelForCausalLM

    import brain_gen_hf  # noqa: F401
    from brain_gen_hf.models.braintokmix.configuration_braintokmix import BrainTokMixConfig
    from brain_gen_hf.models.flatgpt.configuration_flatgpt_rvq import FlatGPTEmbedsRVQConfig

    torch.manual_seed(0)
    tokenizer = AutoModel.from_config(BrainTokMixConfig(num_sensors=CHANNELS, sampling_rate=100.0, **TOKENIZER))
    tokenizer.init_codebooks(torch.randn(4, CHANNELS, 64), seed=1)
    config = FlatGPTEmbedsRVQConfig(
        tokenizer_config=tokenizer.config.to_dict(),
        hidden_size=16,
        backbone_config=QWEN,
        input_shape=[128, CHANNELS, 2],
    )
    model = AutoModelForCausalLM.from_config(config).eval()
    model.tokenizer.load_state_dict(tokenizer.state_dict())
    folder = tmp_path_factory.mktemp("tiny_eval_model") / "model"
    model.save_pretrained(folder)
    return folder
