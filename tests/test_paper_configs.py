"""The shipped paper configs build the paper's models: parameter counts and token grids of spec models.md 3.2, 3.6
and 3.9b, pipeline.md 6.2. Built on the meta device (no memory, no init), from the YAML files themselves."""

from pathlib import Path

import pytest
import torch

from brain_gen_hf.training.arguments import read_run_config

CONFIGS = Path(__file__).resolve().parents[1] / "training_scripts" / "configs"
LM_PHASES = {  # config -> (input_shape T, RoPE theta, max positions) of the paper runs (pipeline.md 6.2)
    "flatgpt_paper.yaml": (6144, 1e6, 32768),
    "flatgpt_longcontext_p1_paper.yaml": (2048, 1e5, 8192),
}
RESUMED_PHASES = {  # resume_context of the later long-context phases
    "flatgpt_longcontext_p2_paper.yaml": (8192, 1.5e6, 32768, 81.92),
    "flatgpt_longcontext_p3_paper.yaml": (16384, 5e6, 65536, 163.84),
}


def millions(module: torch.nn.Module) -> float:
    return sum(p.numel() for p in module.parameters()) / 1e6


def tokenizer_config():
    from transformers import AutoConfig

    import brain_gen_hf  # noqa: F401

    model_args, _, _ = read_run_config(CONFIGS / "braintokmix_paper.yaml")
    return AutoConfig.for_model(model_args.model_type, **model_args.model_config)


def build_lm(name: str):
    from transformers import AutoConfig, AutoModel

    model_args, data_args, run_args = read_run_config(CONFIGS / name)
    fields = {**model_args.model_config, "tokenizer_config": tokenizer_config().to_dict()}
    with torch.device("meta"):
        model = AutoModel.from_config(AutoConfig.for_model(model_args.model_type, **fields))
    return model, data_args, run_args


def test_braintokmix_paper_config_has_the_papers_294_3_million_parameters():
    from transformers import AutoModel

    config = tokenizer_config()
    with torch.device("meta"):
        model = AutoModel.from_config(config)
    assert round(millions(model), 1) == 294.3
    assert round(millions(model.encoder), 1) == 147.2 and round(millions(model.decoder), 1) == 147.2
    assert sum(p.numel() for p in model.quantizer.parameters() if p.requires_grad) == 0
    # 100 Hz / hop 4 = 25 steps/s x 4 latents x 4 levels = 400 tokens/s: 4096 per 10.24 s window
    assert config.hop_length == 4 and config.window_length == 1024
    assert config.window_length // config.hop_length * config.n_neuro * config.num_quantizers == 4096


@pytest.mark.parametrize("name", sorted(LM_PHASES))
def test_flatgpt_paper_configs_build_the_paper_lm(name):
    model, data_args, run_args = build_lm(name)
    config = model.config
    T, theta, positions = LM_PHASES[name]
    assert type(model).__name__ == "FlatGPTEmbedsRVQForCausalLM"
    # Decoder: 12 layers of 19.9 M = 238.5 M (models.md 3.6 / 3.9b); per-level embeddings 4 x 16384 x 1200.
    layers = model.transformer.model.layers
    assert len(layers) == 12 and round(millions(layers), 1) == 238.5
    assert round(millions(layers[0]), 1) == 19.9
    assert round(millions(model.pre_embedding), 1) == 78.6
    # The reference's 336.8 M LM counted the backbone's unused 16384 x 1200 token embedding (19.7 M), which this
    # port does not allocate; the frozen tokenizer is the 294.3 M BrainTokMix.
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert round((trainable + 16384 * 1200) / 1e6, 1) == 336.8
    assert round(millions(model.tokenizer), 1) == 294.3
    backbone = config.backbone_config
    assert (config.hidden_size, backbone.num_attention_heads, backbone.num_key_value_heads) == (1200, 10, 2)
    assert (backbone.head_dim, backbone.intermediate_size) == (120, 4560)
    assert backbone.rope_parameters["rope_theta"] == theta and backbone.rope_parameters["mrope_section"] == 20
    assert backbone.max_position_embeddings == positions
    assert config.input_shape == [T, 68, 4] and config.reduced_shape == (T // 4, 4, 4)
    assert data_args.example_seconds * 100 == T
    assert run_args.mixed_precision == "bf16" and run_args.max_grad_norm == 1.0 and run_args.weight_decay == 0.1


def test_flatgpt_paper_grid_is_24576_tokens_per_61_44_s_with_the_papers_corruption():
    model, data_args, run_args = build_lm("flatgpt_paper.yaml")
    config = model.config
    assert config.reduced_shape == (1536, 4, 4) and config.max_context_tokens == 24576
    assert data_args.example_seconds == 61.44 and data_args.overlap_seconds == 30.0
    assert config.max_context_tokens / data_args.example_seconds == 400  # tokens per second of signal
    corruption = config.token_corruption
    assert corruption["enabled"] and corruption["p_start"] == 0.0 and corruption["p_end"] == 0.02
    assert corruption["block_len_steps"] == 16
    assert (run_args.learning_rate, run_args.warmup_steps, data_args.batch_size) == (2e-4, 2000, 8)


@pytest.mark.parametrize("name", sorted(RESUMED_PHASES))
def test_long_context_phases_resize_the_phase_1_model(name):
    """Phases 2 and 3 build phase 1's architecture and grow it with `resume_context`, as the trainer does."""
    model, data_args, run_args = build_lm(name)
    T, theta, positions, seconds = RESUMED_PHASES[name]
    assert run_args.resume_from and run_args.resume_lr == 1e-4
    assert data_args.example_seconds == seconds and data_args.example_seconds * 100 == T
    assert run_args.validate_before_resume == (name == "flatgpt_longcontext_p3_paper.yaml")
    model.resize_context(**run_args.resume_context)
    config = model.config
    assert config.reduced_shape == (T // 4, 4, 4) and config.max_context_tokens == T // 4 * 16
    assert config.backbone_config.rope_parameters["rope_theta"] == theta
    assert config.backbone_config.max_position_embeddings == positions
    assert round(millions(model.transformer.model.layers), 1) == 238.5  # the context changes no parameter
