"""Tiny RVQ FlatGPT configs (BrainTokMix / BrainOmni tokenizer inside) shared by the RVQ test files."""

import torch

from brain_gen_hf.models.flatgpt.configuration_flatgpt_rvq import (
    FlatGPTEmbedsRVQConfig,
    FlatGPTMixRVQConfig,
    FlatGPTRVQConfig,
)
from tests.flatgpt_configs import qwen_backbone

K, CHANNELS, HIDDEN = 16, 4, 24
# window 8, hop 4 (2 token steps per window), 2 latents x 2 levels: 4 codes per token step
BRAINTOKMIX = {
    "model_type": "braintokmix",
    "window_length": 8,
    "n_filters": 2,
    "ratios": [2, 2],
    "n_dim": 8,
    "n_neuro": 2,
    "codebook_dim": 4,
    "codebook_size": K,
    "num_quantizers": 2,
    "num_sensors": CHANNELS,
    "lstm_layers": 0,
    "n_residual_layers": 1,
}
BRAINOMNI = {
    "model_type": "brainomni_causal_tokenizer",
    "window_length": 8,
    "n_filters": 2,
    "ratios": [2, 2],
    "n_dim": 8,
    "n_neuro": 2,
    "codebook_dim": 8,
    "codebook_size": K,
    "num_quantizers": 2,
    "num_sensors": 68,
    "lstm_layers": 0,
}
CONFIGS = {
    "flatgpt_rvq": FlatGPTRVQConfig,
    "flatgpt_mix_rvq": FlatGPTMixRVQConfig,
    "flatgpt_embeds_rvq": FlatGPTEmbedsRVQConfig,
}


def rvq_config(model_type, tokenizer=None, backbone=None, **kwargs):
    kwargs.setdefault("input_shape", [16, CHANNELS, 2])
    return CONFIGS[model_type](
        tokenizer_config=dict(tokenizer or BRAINTOKMIX),
        hidden_size=HIDDEN,
        backbone_config=backbone or qwen_backbone(),
        **kwargs,
    )


def signal(batch=2, length=16, channels=CHANNELS, seed=3):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, channels, length, generator=g)


def build(model_type, seed=0, **kwargs):
    """An eval-mode model whose tokenizer codebooks are k-means-initialised on a fixed batch."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(rvq_config(model_type, **kwargs)).eval()
    channels = model.config.input_shape[1]
    model.tokenizer.init_codebooks(signal(4, 32, channels, seed=11), torch.zeros(4, channels, 2), seed=5)
    return model
