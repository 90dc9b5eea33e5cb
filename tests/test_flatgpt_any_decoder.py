"""FlatGPT over any transformers decoder: MiniMax, Llama, Qwen3, Gemma 3, Falcon-H1, Falcon-Mamba and xLSTM build,
train and generate (cached == uncached) inside FlatGPT; block-causal masks where the decoder takes them, a config
error where it cannot."""

import subprocess
from pathlib import Path

import pytest
import torch
import yaml
from transformers import AutoModelForCausalLM

from brain_gen_hf.models.flatgpt.configuration_flatgpt import FlatGPTConfig
from brain_gen_hf.models.flatgpt.decoder_kinds import decoder_kind

V, HIDDEN = 16, 64
ATTENTION = {"num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 64}
BACKBONES = {
    "minimax": {
        **ATTENTION,
        "head_dim": 16,
        "num_local_experts": 2,
        "num_experts_per_tok": 1,
        "layer_types": ["linear_attention", "full_attention"],
        "max_position_embeddings": 128,
    },
    "llama": {**ATTENTION, "max_position_embeddings": 128},
    "qwen3": {**ATTENTION, "head_dim": 16, "max_position_embeddings": 128},
    "gemma3_text": {
        **ATTENTION,
        "head_dim": 16,
        "sliding_window": 6,
        "layer_types": ["sliding_attention", "full_attention"],
        "max_position_embeddings": 128,
    },
    "falcon_h1": {
        **ATTENTION,
        "head_dim": 16,
        "mamba_d_ssm": 64,
        "mamba_n_heads": 4,
        "mamba_d_head": 16,
        "mamba_d_state": 8,
        "mamba_n_groups": 1,
        "mamba_chunk_size": 4,
        "max_position_embeddings": 128,
    },
    "falcon_mamba": {"num_hidden_layers": 2, "intermediate_size": 64, "state_size": 4, "time_step_rank": 4},
    "xlstm": {"num_blocks": 2, "num_hidden_layers": 2, "num_heads": 2, "qk_dim_factor": 1.0, "chunk_size": 4},
}


def config(model_type, **kwargs):
    kwargs.setdefault("input_shape", [8, 2, 1])
    return FlatGPTConfig(
        vocab_size=V, hidden_size=HIDDEN, backbone_config={"model_type": model_type, **BACKBONES[model_type]}, **kwargs
    )


def build(model_type, seed=0, **kwargs):
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config(model_type, **kwargs))


@pytest.mark.parametrize("model_type", sorted(BACKBONES))
def test_backbone_trains_and_generates_with_its_own_cache(model_type):
    model = build(model_type)
    decoder = model.transformer.model
    assert decoder.config.model_type == model_type and type(decoder) is decoder_kind(decoder.config).decoder_class
    ids = torch.randint(0, V, (2, 16), generator=torch.Generator().manual_seed(1))

    # one training step moves the weights and keeps the loss finite
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    before = [p.detach().clone() for p in model.parameters()]
    loss = model(ids, labels=ids).loss
    assert torch.isfinite(loss)
    loss.backward()
    optimizer.step()
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))

    # the cache is the decoder's own kind, and a cached step continues the uncached forward
    model.eval()
    with torch.no_grad():
        full = model(ids).logits
        prefill = model(ids[:, :10], use_cache=True)
        cache = prefill.cache if hasattr(prefill, "cache") else prefill.past_key_values
        assert cache.get_seq_length() == 10 and isinstance(cache, type(model.new_cache()))
        step = model(
            ids[:, 10:11], use_cache=True, **{"cache" if hasattr(prefill, "cache") else "past_key_values": cache}
        )
    torch.testing.assert_close(step.logits[:, 0], full[:, 10], atol=2e-3, rtol=2e-3)

    # transformers' generate(): cached and uncached greedy output agree
    prompt = ids[:, :8]
    cached = model.generate(prompt, max_new_tokens=8, do_sample=False, use_cache=True)
    uncached = model.generate(prompt, max_new_tokens=8, do_sample=False, use_cache=False)
    assert cached.shape == (2, 16) and torch.equal(cached, uncached)


@pytest.mark.parametrize("model_type", ["gemma3_text", "llama"])
def test_block_causal_masks_reach_attention_decoders(model_type):
    model = build(model_type, block_size=2).eval()
    ids = torch.randint(0, V, (1, 16), generator=torch.Generator().manual_seed(2))
    out = model(ids)
    out.embeddings.retain_grad()
    out.logits[:, :12].sum().backward()
    grad = out.embeddings.grad[0].abs().sum(-1)
    # block-causal: positions < 12 (blocks 0..5) see tokens up to 11 (sliding window 6 keeps them) and never 12+
    assert bool((grad[12:] == 0).all()) and bool((grad[10:12] > 0).all())
    # a block's own later token is seen: logits at 10 depend on token 11
    out = model(ids)
    out.embeddings.retain_grad()
    out.logits[:, 10].sum().backward()
    assert bool(out.embeddings.grad[0, 11].abs().sum() > 0)
    generated = model.generate_windowed(ids[:, :8], 8, lambda logits: logits.argmax(-1), use_cache=True)
    assert torch.equal(generated, model.generate_windowed(ids[:, :8], 8, lambda x: x.argmax(-1), use_cache=False))


@pytest.mark.parametrize("model_type", ["minimax", "falcon_h1", "falcon_mamba", "xlstm"])
def test_block_prediction_is_refused_for_recurrent_layers(model_type):
    with pytest.raises(ValueError, match="block-causal attention mask in every layer"):
        config(model_type, block_size=2)


def test_sliding_window_must_hold_a_block():
    with pytest.raises(ValueError, match="exceeds the backbone's sliding_window"):
        config("gemma3_text", block_size=8)


@pytest.mark.parametrize(
    ("backbone", "match"),
    [
        ({"model_type": "bert"}, "is an encoder unless `is_decoder=True`"),
        ({"model_type": "t5"}, "not a causal decoder|composite"),
        ({"model_type": "no_such_decoder"}, "registered with AutoConfig"),
        ({"model_type": "xlstm", "embedding_dim": 32}, "embedding_dim"),
    ],
)
def test_unusable_decoders_are_refused(backbone, match):
    with pytest.raises(ValueError, match=match):
        FlatGPTConfig(vocab_size=V, hidden_size=HIDDEN, input_shape=[8, 2, 1], backbone_config=backbone)


def test_positions_follow_the_decoder_kind():
    kinds = {t: decoder_kind(config(t).backbone_config) for t in ("llama", "falcon_mamba", "xlstm")}
    assert kinds["llama"].positions == "sequence" and kinds["falcon_mamba"].positions == "none"
    assert kinds["xlstm"].positions == "none" and kinds["xlstm"].layer_types[0] == "recurrent"
    qwen = decoder_kind(
        FlatGPTConfig(vocab_size=V, hidden_size=24, input_shape=[8, 2, 1]).backbone_config
    )  # the default backbone
    assert qwen.positions == "grid"


def test_round_trip_and_variant_without_token_table(tmp_path):
    from brain_gen_hf.models.flatgpt.configuration_flatgpt import FlatGPTEmbedsConfig

    torch.manual_seed(0)
    embeds = FlatGPTEmbedsConfig(
        vocab_size=V,
        hidden_size=HIDDEN,
        input_shape=[8, 2, 1],
        backbone_config={"model_type": "falcon_h1", **BACKBONES["falcon_h1"]},
    )
    model = AutoModelForCausalLM.from_config(embeds).eval()
    assert model.transformer.model.embed_tokens is None
    assert not any(key.startswith("transformer.model.embed_tokens") for key in model.state_dict())
    model.save_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    ids = torch.randint(0, V, (1, 16), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, model(ids).logits)


def test_rvq_variant_over_a_recurrent_decoder():
    from tests.flatgpt_rvq_configs import build as build_rvq
    from tests.flatgpt_rvq_configs import signal

    backbone = {"model_type": "falcon_mamba", **BACKBONES["falcon_mamba"]}
    model = build_rvq("flatgpt_rvq", backbone=backbone)
    model.train()
    ids = model.tokenize(signal(2, 16))
    loss = model(ids, labels=ids).loss
    loss.backward()
    assert torch.isfinite(loss)
    model.eval()
    step = model.codes_per_position
    prompt = ids[:, : 2 * step]
    cached = model.generate(prompt, max_new_tokens=2 * step, do_sample=False, use_cache=True)
    assert torch.equal(cached, model.generate(prompt, max_new_tokens=2 * step, do_sample=False, use_cache=False))


# ------------------------------------------------------------------ the reference's configs convert
REFERENCE_REPO = Path(__file__).resolve().parents[2] / ".mirror" / "ricsinaruto+brain-gen" / "repo"
DATA = Path(__file__).parent / "data" / "reference_llm_configs"
# data file -> (reference path, variant, backbone model_type or the refusal it must raise)
REFERENCE_CONFIGS = {
    "minimax.yaml": ("configs/flatgpt/omega_only/minimax/model.yaml", "FlatGPTEmbedsRVQ", "minimax"),
    "falconh1.yaml": ("configs/flatgpt/omega_only/llms/model_falconh1.yaml", "FlatGPT", "falcon_h1"),
    "falconmamba.yaml": ("configs/flatgpt/omega_only/llms/model_falconmamba.yaml", "FlatGPT", "falcon_mamba"),
    "gemma.yaml": ("configs/flatgpt/omega_only/llms/model_gemma.yaml", "FlatGPT", "gemma3_text"),
    "xlstm.yaml": ("configs/flatgpt/omega_only/llms/model_xlstm.yaml", "FlatGPT", "xlstm"),
    "blt.yaml": ("configs/flatgpt/omega_only/llms/model_blt.yaml", "FlatGPT", "byte latent transformer"),
    "tasa.yaml": ("configs/flatgpt/omega_only/llms/model_tasa.yaml", "FlatGPT", "TASA3D down/up-sampling"),
}


def _reference_yaml(path: str) -> dict | None:
    if not REFERENCE_REPO.exists():
        return None
    shown = subprocess.run(
        ["git", "-C", str(REFERENCE_REPO), "show", f"HEAD:{path}"], capture_output=True, text=True, check=False
    )
    return yaml.safe_load(shown.stdout) if shown.returncode == 0 else None


def _convert(kwargs: dict, variant: str):
    from brain_gen_hf.conversion import config_from_reference

    extra = {}
    if variant.endswith("RVQ"):
        # The LM's YAML names its tokenizer by checkpoint path only: a BrainOmni tokenizer of the LM's grid stands in.
        extra["tokenizer_config"] = config_from_reference(
            "BrainOmniCausalTokenizer",
            {"window_length": 16, "ratios": [2, 2, 2], "n_filters": 2, "n_dim": 8, "n_neuro": 8, "codebook_dim": 8,
             "codebook_size": kwargs["vocab_size"], "num_quantizers": 4, "num_sensors": 68, "lstm_layers": 0},
        )  # fmt: skip
    return config_from_reference(variant, kwargs, **extra)


def _check_converted(kwargs: dict, variant: str, expected: str) -> None:
    if expected not in BACKBONES:
        with pytest.raises(ValueError, match=expected):
            _convert(kwargs, variant)
        return
    config = _convert(kwargs, variant)
    backbone = config.backbone_config
    args = kwargs["trf_args"]
    assert type(config).__name__ == variant + "Config" and backbone.model_type == expected
    # FlatGPT owns the width (the reference overwrote trf_args.hidden_size with it)
    assert config.hidden_size == backbone.hidden_size == kwargs["hidden_size"]
    assert config.vocab_size == kwargs["vocab_size"]
    layers = args.get("num_hidden_layers", args.get("num_blocks"))
    assert backbone.num_hidden_layers == layers
    for key in ("num_attention_heads", "num_key_value_heads", "intermediate_size", "sliding_window", "state_size"):
        if key in args:
            assert getattr(backbone, key) == args[key], key
    if expected == "minimax":
        # transformers' MiniMaxConfig never read `attn_type_list`: the reference ran its default alternation
        assert backbone.layer_types == ["full_attention", "linear_attention"] * (layers // 2)
        assert not hasattr(backbone, "attn_type_list")
    if expected == "gemma3_text":
        assert backbone.layer_types == args["layer_types"]
    if expected == "xlstm":
        assert backbone.embedding_dim == config.hidden_size and backbone.num_blocks == args["num_blocks"]
        assert backbone.chunkwise_kernel != args["chunkwise_kernel"]  # Triton kernels -> transformers' native ones
    assert decoder_kind(backbone).decoder_class.__name__  # a transformers decoder FlatGPT can drive


@pytest.mark.parametrize("name", sorted(REFERENCE_CONFIGS))
def test_reference_llm_configs_convert_from_test_data(name):
    path, variant, expected = REFERENCE_CONFIGS[name]
    kwargs = yaml.safe_load((DATA / name).read_text())
    _check_converted(kwargs, variant, expected)


@pytest.mark.parametrize("name", sorted(REFERENCE_CONFIGS))
def test_reference_llm_configs_convert_from_the_snapshot(name):
    path, variant, expected = REFERENCE_CONFIGS[name]
    kwargs = _reference_yaml(path)
    if kwargs is None:
        pytest.skip(f"the brain-gen reference snapshot ({REFERENCE_REPO}) is not available (it is not in CI)")
    _check_converted(kwargs, variant, expected)
    # the test data holds the reference's values for every field the converter reads
    data = yaml.safe_load((DATA / name).read_text())
    for key in ("trf_class", "hidden_size", "vocab_size", "input_shape"):
        assert data[key] == kwargs[key]
    if expected in BACKBONES:
        assert data["trf_args"] == kwargs["trf_args"]
