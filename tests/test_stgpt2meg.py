"""STGPT2MEG: parity with brain-gen vectors, the block wiring, the KV cache, generation, forecast, conversion,
training through the shared trainer, and the model contract."""

import pytest
import torch
from transformers import AutoModelForCausalLM, DynamicCache

from brain_gen_hf.compat import CACHE_KWARG
from brain_gen_hf.conversion import config_from_reference, convert_reference_checkpoint
from brain_gen_hf.models.stgpt2meg.configuration_stgpt2meg import STGPT2MEGConfig
from brain_gen_hf.tokenizers.mulaw import mulaw_encode
from tests.model_contract import ModelContract
from tests.refvec import assert_float_close, discover_cases, require_case

Q, C = 16, 4
ROWS, COLS = [0, 1, 2, 1], [0, 1, 2, 2]  # four channels on a 4x4 sensor grid

# One tiny config per block type / attention / MLP the family has.
VARIANTS = {
    "stgpt_standard_mlp": dict(mlp_type="standard", d_ff=24),
    "stgpt_moe_top2": dict(experts_per_token=2, moe_intermediate_size=8),
    "parallel": dict(block_type="STGPTBlockParallel"),
    "stblock": dict(block_type="STBlock"),
    "stconv": dict(block_type="STConvBlock", image_size=4, row_idx=ROWS, col_idx=COLS, conv_kernel=[2, 3, 3]),
    "gpt_oss_window": dict(attn_type="gpt_oss", head_dim=4, num_key_value_heads=1, sliding_window=3),
    "stblock_gpt_oss": dict(block_type="STBlock", attn_type="gpt_oss", head_dim=4, num_key_value_heads=2),
    "conditioned": dict(attn_type="conditioned", n_cond_tok=3, d_tok_emb=4, bias_rank=2, num_classes=3, class_emb=16),
    "subject": dict(subjects=3, sub_emb=16, rope=False),
}


def small_config(**overrides) -> STGPT2MEGConfig:
    kwargs = dict(num_channels=C, vocab_size=Q, d_model=16, layers=2, num_heads=2)
    return STGPT2MEGConfig(**{**kwargs, **overrides})


def tokens(batch=2, steps=6, seed=1):
    return torch.randint(0, Q, (batch, C, steps), generator=torch.Generator().manual_seed(seed))


def variant_inputs(name: str, steps: int, batch: int = 2) -> dict:
    g = torch.Generator().manual_seed(5)
    extra = {}
    if name == "conditioned":
        extra["condition"] = torch.randint(0, 3, (batch, 1, steps), generator=g)
    if name == "subject":
        extra["subject_ids"] = torch.arange(batch) % 3
    return extra


def build(name_or_config="stgpt_standard_mlp", seed=0):
    torch.manual_seed(seed)
    config = name_or_config if isinstance(name_or_config, STGPT2MEGConfig) else small_config(**VARIANTS[name_or_config])
    return AutoModelForCausalLM.from_config(config).eval()


def forecast_model():
    return build("stgpt_moe_top2")


def forecast_signal(batch=2, channels=C, steps=5, seed=0):
    """A normalised signal (training units: mu-law encoded after dividing by mulaw_max_value = 5)."""
    return 2 * torch.randn(batch, channels, steps, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------------------ parity
@pytest.mark.parametrize("case", discover_cases({"STGPT2MEG"}))
def test_parity_with_reference_vectors(case):
    case = require_case(case)
    model = convert_reference_checkpoint("STGPT2MEG", case.model_kwargs, case.state_dict)
    inputs, outputs = case.inputs, case.outputs
    with torch.no_grad():
        out = model(inputs["x"], labels=inputs["targets"])
    assert_float_close(out.logits, outputs["logits"], "logits")
    assert_float_close(out.last_hidden_state, outputs["hidden_normed"], "hidden_normed")
    assert_float_close(out.embeddings.flatten(0, 1), outputs["embeddings"], "embeddings")
    assert_float_close(out.loss, outputs["loss_CrossEntropy"], "loss_CrossEntropy")
    accuracy = (out.logits.argmax(-1) == inputs["targets"]).float().mean()
    assert_float_close(accuracy, outputs["metric_acc"], "metric_acc")
    buffers = dict(model.named_buffers())
    for key, value in outputs.items():
        if key.startswith("nonpersistent_buffer."):
            assert_float_close(buffers[key.removeprefix("nonpersistent_buffer.")], value, key)


# ------------------------------------------------------------------------------------------ block wiring
def _silence_sublayers(model):
    """Zero every projection of the blocks, so attention and MLP outputs vanish and only residuals remain."""
    with torch.no_grad():
        for name, param in model.blocks.named_parameters():
            if "norm" not in name:
                param.zero_()


@pytest.mark.parametrize(("block_type", "expected"), [("STGPTBlock", 4.0), ("STGPTBlockParallel", 4.0)])
def test_stgpt_blocks_double_the_identity_path(block_type, expected):
    """The reference's quirk, kept for its checkpoints: each STGPT block returns block(x) + x on top of the
    residuals inside it, so with silent sub-layers two blocks scale the embeddings by 2 * 2."""
    model = build(small_config(block_type=block_type, mlp_type="standard"))
    _silence_sublayers(model)
    with torch.no_grad():
        out = model(tokens(), output_hidden_states=True)
    torch.testing.assert_close(out.hidden_states[-1], expected * out.embeddings)


def test_stblock_mlp_adds_its_normalised_input_again():
    model = build(small_config(block_type="STBlock", layers=1))
    _silence_sublayers(model)
    with torch.no_grad():
        out = model(tokens(), output_hidden_states=True)
    x = out.embeddings
    torch.testing.assert_close(out.hidden_states[-1], x + torch.nn.functional.rms_norm(x, (x.shape[-1],)))


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_future_steps_get_zero_gradient_in_every_block_type(name):
    model = build(name)
    steps = 6
    out = model(tokens(steps=steps), **variant_inputs(name, steps))
    out.embeddings.retain_grad()
    out.logits[:, :, :3].sum().backward()
    grad = out.embeddings.grad
    assert grad[:, :, :3].abs().sum() > 0
    torch.testing.assert_close(grad[:, :, 3:], torch.zeros_like(grad[:, :, 3:]), rtol=0, atol=1e-7)


def test_gpt_oss_window_and_sinks():
    model = build("gpt_oss_window")
    with torch.no_grad():
        out = model(tokens(steps=6), output_attentions=True)
    temporal = out.attentions[0]  # (B * C, heads, T, T)
    assert temporal.shape == (2 * C, 2, 6, 6)
    query, key = torch.meshgrid(torch.arange(6), torch.arange(6), indexing="ij")
    outside = (key > query) | (key <= query - 3)
    assert bool((temporal[..., outside] == 0).all()) and bool((temporal[..., ~outside] > 0).all())
    # The sink takes part of every row's probability mass.
    assert bool((temporal.sum(-1) < 1).all())
    assert out.spatial_attentions[0].shape == (2 * 6, 2, C, C)


def test_conditioned_attention_reads_the_condition():
    model = build("conditioned")
    x = tokens(steps=5)
    cond = variant_inputs("conditioned", 5)["condition"]
    with torch.no_grad():
        first = model(x, condition=cond).logits
        other = model(x, condition=(cond + 1) % 3).logits
    assert not torch.allclose(first, other)
    with pytest.raises(ValueError, match="needs `condition`"):
        model(x)


# --------------------------------------------------------------------------------------------- caching
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_cached_steps_match_the_full_forward(name):
    """Prefill 3 steps, then feed one step at a time through the DynamicCache: the logits of every step equal the
    uncached forward over the whole sequence."""
    model = build(name)
    steps = 6
    x, extra = tokens(steps=steps), variant_inputs(name, steps)
    with torch.no_grad():
        full = model(x, **extra).logits
        cache = DynamicCache()
        pieces = []
        for start, stop in ((0, 3), (3, 4), (4, 5), (5, 6)):
            step_extra = {k: (v[..., start:stop] if k == "condition" else v) for k, v in extra.items()}
            out = model(x[..., start:stop], **step_extra, **{CACHE_KWARG: cache}, use_cache=True)
            pieces.append(out.logits)
        assert cache.get_seq_length() == steps
    torch.testing.assert_close(torch.cat(pieces, dim=2), full, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["stgpt_moe_top2", "stconv", "conditioned"])
def test_generate_cached_equals_uncached(name):
    model = build(name)
    x = tokens(steps=4)
    extra = variant_inputs(name, 4 + 3)
    cached = model.generate(x, max_new_tokens=3 * C, do_sample=False, use_cache=True, **extra)
    uncached = model.generate(x, max_new_tokens=3 * C, do_sample=False, use_cache=False, **extra)
    assert cached.shape == (2, C, 7) and torch.equal(cached[..., :4], x)
    assert torch.equal(cached, uncached)


def test_generate_flat_and_grid_layouts_agree():
    model = build("stgpt_standard_mlp")
    grid = tokens(steps=3)
    flat = grid.transpose(1, 2).reshape(2, -1)  # time-major: step t holds grid[:, :, t]
    out_grid = model.generate(grid, max_new_tokens=2 * C, do_sample=False)
    out_flat = model.generate(flat, max_new_tokens=2 * C, do_sample=False)
    assert torch.equal(out_flat, out_grid.transpose(1, 2).reshape(2, -1))
    with torch.no_grad():  # the first new step is the argmax of the last step's logits
        assert torch.equal(out_grid[..., 3], model(grid).logits[:, :, -1].argmax(-1))


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"max_new_tokens": C + 1}, f"multiple of {C}"),
        ({"max_new_tokens": C, "num_beams": 2}, "no beam search"),
        ({"max_new_tokens": C, "output_scores": True}, "sequences only"),
        ({"max_new_tokens": C, "not_an_option": 1}, "does not use"),
    ],
)
def test_generate_refuses_what_it_cannot_honour(kwargs, error):
    with pytest.raises(ValueError, match=error):
        build().generate(tokens(steps=2), **kwargs)


def test_generate_refuses_partial_steps_and_short_conditions():
    model = build("conditioned")
    with pytest.raises(ValueError, match="whole time steps"):
        model.generate(tokens(steps=2).reshape(2, -1)[:, :-1], max_new_tokens=C)
    with pytest.raises(ValueError, match=r"T \+ new steps"):
        model.generate(tokens(steps=2), max_new_tokens=C, condition=torch.zeros(2, 1, 2, dtype=torch.long))


# -------------------------------------------------------------------------------------------- forecast
def test_forecast_is_mulaw_in_signal_out():
    model = forecast_model()
    signal = forecast_signal()
    out = model.forecast(signal, 3)
    assert out.values.shape == (2, C, 3) and out.codes.shape == (2, C, 3)
    context = mulaw_encode(signal / 5.0, mu=Q - 1)
    generated = model.generate(context, max_new_tokens=3 * C, do_sample=False)
    assert torch.equal(out.codes, generated[..., 5:])
    uncached = model.forecast(signal, 3, generation_config=model.generation_config.__class__(use_cache=False))
    assert torch.equal(uncached.codes, out.codes)
    with pytest.raises(ValueError, match="channels"):
        model.forecast(signal[:, :2], 3)


# ----------------------------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"block_type": "STFancyBlock"}, "block_type"),
        ({"attn_type": "flash"}, "attn_type"),
        ({"mlp_type": "kan"}, "mlp_type"),
        ({"num_heads": 3}, "divisible by `num_heads`"),
        ({"experts_per_token": 5}, "cannot exceed"),
        ({"block_type": "STConvBlock"}, "set `row_idx` and `col_idx`"),
        ({"block_type": "STConvBlock", "row_idx": [0, 1, 2, 3], "col_idx": [0, 1, 2, 40]}, "outside the 32x32 grid"),
        ({"block_type": "STConvBlock", "row_idx": [0, 1], "col_idx": [0, 1]}, "one integer per channel"),
        ({"block_type": "STConvBlock", "row_idx": ROWS, "col_idx": COLS, "conv_kernel": [3, 2, 3]}, "must be odd"),
        ({"block_type": "STBlock", "attn_type": "conditioned"}, "STBlock supports"),
        ({"attn_type": "gpt_oss", "head_dim": 5}, "must be even"),
        ({"attn_type": "gpt_oss", "head_dim": 2, "num_key_value_heads": 2}, "YaRN needs"),
        ({"attn_type": "gpt_oss", "num_key_value_heads": 3}, "multiple of `num_key_value_heads`"),
        ({"class_emb": 8, "num_classes": 2}, "`class_emb` must be 0"),
        ({"sub_emb": 16}, "needs `subjects`"),
        ({"tie_word_embeddings": True}, "not tied"),
        ({"attention_dropout": 1.0}, "attention_dropout"),
        ({"channel_names": ["a", "b"]}, "lists 2 channels"),
        ({"layers": 0}, "`layers` must be a positive integer"),
    ],
)
def test_config_validation(kwargs, error):
    with pytest.raises(ValueError, match=error):
        small_config(**kwargs)


def test_config_defaults_and_block_mlp_defaults():
    assert STGPT2MEGConfig().mlp_type == "moe"  # constructible without arguments
    assert small_config(block_type="STBlock").mlp_type == "standard"
    assert small_config().num_attention_heads == 2 and small_config().hidden_size == 16


# ------------------------------------------------------------------------------------------- conversion
CONV_KWARGS = {
    "num_channels": C,
    "vocab_size": Q,
    "d_model": 16,
    "layers": 1,
    "trf_block": "STConvBlock",
    "trf_args": {"attn_args": {"d_model": 16, "nheads": 2, "rope": True}, "mlp_args": {"d_model": 16}, "image_size": 4},
}


def test_conversion_takes_the_grid_from_overrides_and_checks_the_checkpoint():
    with pytest.raises(ValueError, match="set `row_idx` and `col_idx`"):
        config_from_reference("STGPT2MEG", CONV_KWARGS)
    model = build(small_config(block_type="STConvBlock", layers=1, image_size=4, row_idx=ROWS, col_idx=COLS))
    state = dict(model.state_dict())
    state["blocks.0.cb1.row_idx"], state["blocks.0.cb1.col_idx"] = torch.tensor(ROWS), torch.tensor(COLS)
    converted = convert_reference_checkpoint("STGPT2MEG", CONV_KWARGS, state, row_idx=ROWS, col_idx=COLS)
    x = tokens()
    with torch.no_grad():
        torch.testing.assert_close(converted(x).logits, model(x).logits, rtol=0, atol=0)
    with pytest.raises(ValueError, match="does not match config.row_idx"):
        convert_reference_checkpoint("STGPT2MEG", CONV_KWARGS, state, row_idx=COLS, col_idx=ROWS)


@pytest.mark.parametrize(
    ("trf_args", "error"),
    [
        ({"attn_args": {"d_model": 16, "nheads": 2, "E_q": 8}}, "E_q"),
        ({"attn_args": {"d_model": 16, "nheads": 2, "skip_input_proj": True}}, "skip_input_proj"),
        ({"attn_args": {"d_model": 16, "nheads": 2, "wobble": 1}}, "wobble"),
        ({"attn_args": {"d_model": 8, "nheads": 2}}, "must equal d_model"),
        ({"attn_args": {"d_model": 16, "nheads": 2}, "attn_type": "linear"}, "linear"),
    ],
)
def test_conversion_refuses_what_the_port_cannot_express(trf_args, error):
    kwargs = {"num_channels": C, "vocab_size": Q, "d_model": 16, "layers": 1, "trf_args": trf_args}
    with pytest.raises(ValueError, match=error):
        config_from_reference("STGPT2MEG", kwargs)


# --------------------------------------------------------------------------------------------- training
def test_trains_through_the_shared_trainer_with_a_grid_from_the_layout(tiny_meg_dataset, tmp_path):
    from transformers import AutoModel

    from brain_gen_hf.training.arguments import parse_run_config
    from brain_gen_hf.training.trainer import train

    config = dict(
        task="stgpt2meg",
        dataset=str(tiny_meg_dataset),
        example_seconds=0.32,
        overlap_seconds=0.0,
        batch_size=2,
        eval_split="validation",
        eval_every=2,
        max_eval_batches=1,
        output_dir=str(tmp_path),
        max_steps=2,
        learning_rate=1e-3,
        log_with="none",
        progress_bar=False,
        model_config={"block_type": "STConvBlock", "image_size": 8, "d_model": 8, "layers": 1, "num_heads": 2},
    )
    result = train(*parse_run_config(config))
    assert result.step == 2 and all(torch.isfinite(torch.tensor(v)) for v in result.losses.values())
    model = AutoModel.from_pretrained(result.final_model_dir)
    assert model.config.sampling_rate == 100.0 and model.config.num_channels == len(model.config.channel_names)
    assert len(model.config.row_idx) == model.config.num_channels  # placed by grid_indices from the layout


# --------------------------------------------------------------------------------------------- contract
class TestSTGPT2MEGContract(ModelContract):
    auto_class = "AutoModelForCausalLM"
    main_input = "input_ids"
    causal = True
    causal_output_time_dim = 2  # logits (B, C, T, Q)
    causal_input_time_dim = 2  # embeddings (B, C, T, E)

    def make_config(self):
        return small_config(**VARIANTS["stgpt_moe_top2"])

    def make_inputs(self):
        x = tokens()
        return {"input_ids": x, "labels": torch.roll(x, -1, dims=-1)}

    def bad_inputs(self):
        x = tokens()
        return [
            ({"input_ids": x[:, :2]}, f"has 2 channels .* expects {C}"),
            ({"input_ids": x.float()}, "integer token ids"),
            ({"input_ids": x + Q}, "outside the vocabulary"),
            ({"input_ids": x[:, :, 0]}, "3 dimensions"),
            ({"input_ids": x[..., :0]}, "empty"),
            ({"input_ids": x, "labels": x[..., :3]}, "labels must have shape"),
            ({"input_ids": x, "condition": torch.zeros(2, 1, 6, dtype=torch.long)}, "no condition embedding"),
            ({"input_ids": x, "subject_ids": torch.zeros(2, dtype=torch.long)}, "no subject embedding"),
            ({"input_ids": x, "channel_ids": torch.tensor([0, 1])}, "channel embedding of each"),
            ({}, "pass `input_ids`"),
        ]
