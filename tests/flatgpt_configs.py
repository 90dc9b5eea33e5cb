"""Tiny FlatGPT configs shared by the FlatGPT test files."""

from brain_gen_hf.models.flatgpt.configuration_flatgpt import FlatGPTConfig, FlatGPTEmbedsConfig, FlatGPTMixConfig

V = 16


def qwen_backbone(mrope_section=1, theta=1e4, max_positions=64):
    return {
        "model_type": "qwen2_5_vl_text",
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "intermediate_size": 32,
        "rms_norm_eps": 1e-6,
        "rope_theta": theta,
        "max_position_embeddings": max_positions,
        "rope_scaling": {"rope_type": "default", "mrope_section": mrope_section},
    }


def smollm3_backbone():
    return {
        "model_type": "smollm3",
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "intermediate_size": 32,
        "rope_theta": 1e4,
        "max_position_embeddings": 64,
        "no_rope_layers": [1, 0],
    }


def flatgpt_config(backbone=None, **kwargs):
    kwargs.setdefault("input_shape", [8, 3, 1])
    return FlatGPTConfig(vocab_size=V, hidden_size=24, backbone_config=backbone or qwen_backbone(), **kwargs)


def embeds_config(backbone=None, **kwargs):
    kwargs.setdefault("input_shape", [8, 3, 1])
    return FlatGPTEmbedsConfig(vocab_size=V, hidden_size=24, backbone_config=backbone or qwen_backbone(), **kwargs)


def mix_config(backbone=None, **kwargs):
    kwargs.setdefault("input_shape", [8, 3, 1])
    return FlatGPTMixConfig(vocab_size=V, hidden_size=24, backbone_config=backbone or qwen_backbone(), **kwargs)
