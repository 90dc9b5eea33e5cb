"""Bad inputs to rollouts and to loading: a clear error instead of a hang, an unpickled file or a silent NaN model."""

from __future__ import annotations

import contextlib
import json
import signal

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModel, AutoModelForCausalLM, GenerationConfig

import brain_gen_hf  # noqa: F401
from brain_gen_hf.forecasting import resolve_generation_config
from brain_gen_hf.models.brainomni.configuration_brainomni import (
    BrainOmniCausalTokenizerConfig,
)
from brain_gen_hf.models.brainomni_forecast.configuration_brainomni_forecast import (
    BrainOmniCausalForecastConfig,
)
from brain_gen_hf.models.flatgpt.modeling_flatgpt import sampler
from brain_gen_hf.models.wavenet.configuration_wavenet import WavenetFullChannelConfig
from brain_gen_hf.models.wavenet.modeling_wavenet import WavenetFullChannelModel
from tests.flatgpt_configs import V, flatgpt_config, mix_config
from tests.flatgpt_rvq_configs import build as build_rvq
from tests.flatgpt_rvq_configs import signal as rvq_signal


@contextlib.contextmanager
def deadline(seconds: int):
    """Fail (instead of hanging the suite) if the block runs longer than `seconds`."""

    def expire(signum, frame):
        raise TimeoutError(f"still running after {seconds} s: the rollout does not advance")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# ----------------------------------------------------------------------------------------------- point 6: rollouts
def flatgpt():
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(flatgpt_config()).eval()


def grid(batch=2, steps=4):
    return torch.randint(0, V - 1, (batch, steps, 3, 1), generator=torch.Generator().manual_seed(3))


def bins(batch=2, steps=4):
    """`grid()` as the `(B, C, T)` bins `forecast` reads."""
    return grid(batch, steps)[..., 0].transpose(1, 2)


def greedy():
    return sampler(GenerationConfig(do_sample=False))


def test_window_of_one_time_step_is_refused_instead_of_hanging():
    model = flatgpt()
    input_ids = model.tokenize(grid())
    step = model.sequence_step
    with deadline(20), pytest.raises(ValueError, match="one time step .* cannot slide"):
        model.generate_windowed(input_ids, 2 * step, greedy(), window=step)
    with deadline(20), pytest.raises(ValueError, match="cannot slide"):
        model.forecast(bins(), 2, max_context_tokens=step)
    # a one-step window that never has to slide still works
    short = input_ids[:, :1]
    assert model.generate_windowed(short, step - 1, greedy(), window=step).shape == (2, step - 1)


def test_rvq_forecast_with_one_step_window_is_refused_instead_of_hanging():
    model = build_rvq("flatgpt_embeds_rvq")
    with deadline(20), pytest.raises(ValueError, match="cannot slide"):
        model.forecast(rvq_signal(2, 8), 8, max_context_tokens=model.sequence_step)


@pytest.mark.parametrize("overlap", [-2, float("nan"), float("inf")])
def test_bad_sliding_window_overlap_is_refused(overlap):
    model = flatgpt()
    with pytest.raises(ValueError, match="sliding_window_overlap must be a non-negative number"):
        model.generate_windowed(model.tokenize(grid()), 3, greedy(), sliding_window_overlap=overlap)


@pytest.mark.parametrize(
    "sampler, error, message",
    [
        (lambda logits: logits, ValueError, r"shape \(2, 1\)"),  # logits instead of ids
        (lambda logits: logits.argmax(-1)[:, :1].repeat(1, 3), ValueError, r"shape \(2, 1\)"),  # too many ids
        (lambda logits: logits.argmax(-1).float(), ValueError, "integer token ids"),
        (lambda logits: logits.argmax(-1).tolist(), TypeError, "must return a tensor"),
    ],
)
def test_custom_sampler_returning_the_wrong_thing_is_a_clear_error(sampler, error, message):
    model = flatgpt()
    with pytest.raises(error, match=message):
        model.generate_windowed(model.tokenize(grid()), 3, sampler)


def test_max_new_tokens_must_be_an_int():
    model = flatgpt()
    with pytest.raises(ValueError, match="max_new_tokens must be a non-negative int"):
        model.generate_windowed(model.tokenize(grid()), 2.5, greedy())


@pytest.mark.parametrize("top_p", [1.5, float("nan")])
def test_top_p_outside_the_unit_interval_is_refused(top_p):
    with pytest.raises(ValueError, match="top_p must be in"):
        resolve_generation_config(None, GenerationConfig(do_sample=True, top_p=top_p))


def test_flatgpt_rollout_progress_bar(capsys):
    model = flatgpt()
    input_ids = model.tokenize(grid())
    shown = model.generate_windowed(input_ids, 9, greedy(), progress=True)
    assert "rollout" in capsys.readouterr().err
    hidden = model.generate_windowed(input_ids, 9, greedy(), progress=False)
    assert capsys.readouterr().err == ""
    assert torch.equal(shown, hidden)
    model.generate_windowed(input_ids, 300, greedy())  # default: quiet when stderr is not a terminal
    assert capsys.readouterr().err == ""
    model.forecast(bins(), 3, progress=True)
    assert "rollout" in capsys.readouterr().err
    with pytest.raises(ValueError, match="progress"):
        model.generate_windowed(input_ids, 3, greedy(), progress="yes")


def build_forecaster():
    tokenizer = BrainOmniCausalTokenizerConfig(
        window_length=8,
        n_filters=2,
        ratios=[2],
        kernel_size=3,
        last_kernel_size=3,
        n_dim=8,
        n_neuro=2,
        n_head=2,
        codebook_dim=8,
        codebook_size=16,
        num_quantizers=2,
        num_sensors=8,
    )
    torch.manual_seed(0)
    model = AutoModel.from_config(
        BrainOmniCausalForecastConfig(tokenizer_config=tokenizer, lm_dim=16, lm_head=2, lm_depth=1)
    ).eval()
    model.tokenizer.init_codebooks(**forecaster_inputs(), seed=0)
    return model


def forecaster_inputs():
    g = torch.Generator().manual_seed(1)
    return {
        "input_values": torch.randn(2, 3, 16, generator=g),
        "pos": torch.randn(2, 3, 2, generator=g),
        "sensor_type": torch.zeros(2, 3, dtype=torch.long),
    }


def test_brainomni_forecaster_progress_bar(capsys):
    model = build_forecaster()
    shown = model.forecast(**forecaster_inputs(), horizon=6, progress=True)
    assert "rollout" in capsys.readouterr().err
    hidden = model.forecast(**forecaster_inputs(), horizon=6, progress=False)
    assert capsys.readouterr().err == ""
    assert torch.equal(shown.codes, hidden.codes)
    with pytest.raises(ValueError, match="horizon"):
        model.forecast(**forecaster_inputs(), horizon=True)


def test_flatgpt_forecast_horizon_counts_token_grid_steps():
    with pytest.raises(ValueError, match="horizon must be a positive int"):
        flatgpt().forecast(bins(), True)
    torch.manual_seed(0)
    reduced = AutoModelForCausalLM.from_config(flatgpt_config(temporal_reduction=2)).eval()
    torch.manual_seed(0)
    mix = AutoModelForCausalLM.from_config(mix_config(temporal_reduction=2)).eval()
    for model in (reduced, mix):
        # The bins' time axis is the token grid's (temporal_reduction only shapes the RoPE grid): every horizon is
        # a whole number of steps, and the forecast has exactly `horizon` of them.
        for horizon in (1, 3, 4):
            out = model.forecast(bins(), horizon)
            assert out.values.shape == out.codes.shape == (2, 3, horizon)
            assert out.tokens.shape[-1] == horizon * model.sequence_step  # FlatGPTMix: (B, C, t) rows


@pytest.mark.parametrize("window", [5.5, "6", True])
def test_window_length_must_be_an_int(window):
    model = flatgpt()
    with pytest.raises(ValueError, match="window must be an int"):
        model.generate_windowed(model.tokenize(grid()), 9, greedy(), window=window)
    with pytest.raises(ValueError, match="window must be an int"):
        model.forecast(bins(), 3, max_context_tokens=window)
    rvq = build_rvq("flatgpt_rvq")
    with pytest.raises(ValueError, match="max_context_tokens must be an int"):
        rvq.forecast(rvq_signal(2, 16), 4, max_context_tokens=window)


def test_rvq_forecast_of_a_partial_window_names_the_fix():
    model = build_rvq("flatgpt_rvq")
    # forecast already reads a context shorter than one window; a longer one must be whole windows
    with pytest.raises(ValueError, match=r"multiple of window_length \(8\); crop or pad the recording$"):
        model.forecast(rvq_signal(2, 12), 4)


def test_brainomni_forecaster_reads_a_context_shorter_than_a_window():
    model = build_forecaster()
    inputs = forecaster_inputs()
    short = {**inputs, "input_values": inputs["input_values"][..., :4]}  # two token steps of a window of 4
    with pytest.raises(ValueError, match=r"or pass allow_shorter_windows=True"):
        model.forecast(**short, horizon=4)
    out = model.forecast(**short, horizon=4, allow_shorter_windows=True)
    context = model.tokenizer.encode(**short, allow_shorter_windows=True).codes
    assert out.codes.shape == (2, 2, 2, 2) and out.values.shape == (2, 3, 4)  # two new token steps of 2 samples
    assert out.context_reconstruction.shape == (2, 3, 4)
    assert torch.equal(out.context_codes, context)
    with pytest.raises(ValueError, match=r"multiple of the hop \(2 samples\)"):
        model.forecast(
            **{**inputs, "input_values": inputs["input_values"][..., :3]}, horizon=4, allow_shorter_windows=True
        )


# ------------------------------------------------------------------------------------------------ point 8: loading
def wavenet():
    torch.manual_seed(0)
    return WavenetFullChannelModel(WavenetFullChannelConfig(in_channels=2, quant_levels=16, dilations=[1, 2])).eval()


@pytest.fixture
def never_unpickle(monkeypatch):
    """Any `torch.load` (the only way transformers reads a .bin) fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("a pickled checkpoint was opened")

    monkeypatch.setattr(torch, "load", refuse)


def saved(tmp_path, **save_kwargs):
    folder = tmp_path / "model"
    wavenet().save_pretrained(folder, **save_kwargs)
    return folder


def pickled_only(tmp_path, sharded=False):
    """A folder with config.json and only pickled weights (pytorch_model.bin, or its sharded form)."""
    folder = saved(tmp_path, max_shard_size="2KB") if sharded else saved(tmp_path)
    if not sharded:
        torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
        (folder / "model.safetensors").unlink()
        return folder
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    renamed = {}
    for shard in sorted(set(index["weight_map"].values())):
        renamed[shard] = shard.replace("model-", "pytorch_model-").replace(".safetensors", ".bin")
        torch.save(load_file(folder / shard), folder / renamed[shard])
        (folder / shard).unlink()
    index["weight_map"] = {key: renamed[shard] for key, shard in index["weight_map"].items()}
    (folder / "pytorch_model.bin.index.json").write_text(json.dumps(index))
    (folder / "model.safetensors.index.json").unlink()
    return folder


def edit_tensor(file, edit):
    """Rewrite one tensor of a safetensors file; returns its name."""
    tensors = load_file(file)
    name = min(tensors)
    tensors[name] = edit(tensors[name])
    save_file(tensors, file, metadata={"format": "pt"})
    return name


def last_shard(folder):
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    return folder / max(index["weight_map"].values())


def widen(tensor):
    return torch.zeros(*tensor.shape[:-1], tensor.shape[-1] + 1)


def with_nan(tensor):
    tensor = tensor.clone()
    tensor.view(-1)[0] = float("nan")
    return tensor


def with_inf(tensor):
    tensor = tensor.clone()
    tensor.view(-1)[-1] = float("-inf")
    return tensor


def test_use_safetensors_false_is_refused_without_unpickling(tmp_path, never_unpickle):
    folder = saved(tmp_path)
    torch.save(wavenet().state_dict(), folder / "pytorch_model.bin")  # a .bin beside the safetensors
    with pytest.raises(ValueError, match="loads safetensors weights only"):
        AutoModel.from_pretrained(folder, use_safetensors=False)
    with pytest.raises(ValueError, match="safetensors weights only"):
        WavenetFullChannelModel.from_pretrained(folder, use_safetensors=False)


@pytest.mark.parametrize("sharded", [False, True], ids=["single", "sharded"])
@pytest.mark.parametrize("use_safetensors", [None, True, "default"])
def test_folder_with_only_pickled_weights_is_refused_without_unpickling(
    tmp_path, never_unpickle, sharded, use_safetensors
):
    folder = pickled_only(tmp_path, sharded)
    kwargs = {} if use_safetensors == "default" else {"use_safetensors": use_safetensors}
    with pytest.raises(OSError, match="only pickled PyTorch weights .*never unpickles"):
        AutoModel.from_pretrained(folder, **kwargs)


@pytest.mark.parametrize("option", [{"from_tf": True}, {"from_flax": True}, {"gguf_file": "model.gguf"}])
def test_non_safetensors_formats_are_refused(tmp_path, option):
    with pytest.raises(ValueError, match="safetensors weights only"):
        WavenetFullChannelModel.from_pretrained(saved(tmp_path), **option)


@pytest.mark.parametrize("sharded", [False, True], ids=["single", "sharded"])
def test_wrong_shape_is_an_oserror_naming_the_key_and_both_shapes(tmp_path, sharded):
    folder = saved(tmp_path, max_shard_size="2KB") if sharded else saved(tmp_path)
    file = last_shard(folder) if sharded else folder / "model.safetensors"
    healthy = AutoModel.from_pretrained(folder)  # the checks pass a good checkpoint through unchanged
    assert all(torch.equal(healthy.state_dict()[k], v) for k, v in wavenet().state_dict().items())
    tensors = load_file(file)
    model_shape = tuple(tensors[min(tensors)].shape)
    name = edit_tensor(file, widen)
    saved_shape = (*model_shape[:-1], model_shape[-1] + 1)
    with pytest.raises(OSError) as error:
        AutoModel.from_pretrained(folder)
    message = str(error.value)
    assert name in message and str(saved_shape) in message and str(model_shape) in message


@pytest.mark.parametrize("sharded", [False, True], ids=["single", "sharded"])
@pytest.mark.parametrize("poison", [with_nan, with_inf], ids=["nan", "inf"])
def test_non_finite_weights_are_an_oserror_naming_tensor_and_file(tmp_path, sharded, poison):
    folder = saved(tmp_path, max_shard_size="2KB") if sharded else saved(tmp_path)
    file = last_shard(folder) if sharded else folder / "model.safetensors"
    name = edit_tensor(file, poison)
    with pytest.raises(OSError, match="NaN/inf") as error:
        AutoModel.from_pretrained(folder)
    assert name in str(error.value) and file.name in str(error.value)


def test_missing_shard_names_the_shard(tmp_path):
    folder = saved(tmp_path, max_shard_size="2KB")
    shard = last_shard(folder)
    shard.unlink()
    with pytest.raises(OSError, match=f"shard index .*{shard.name} is missing"):
        AutoModel.from_pretrained(folder)


# ----------------------------------------------------------------------------------------- the same on a Hub repo
def upload(local_hub, repo_id, folder):
    local_hub.api.create_repo(repo_id)
    local_hub.api.upload_folder(repo_id=repo_id, folder_path=str(folder))


def test_hub_repo_with_only_pickled_weights_is_refused_without_unpickling(
    local_hub, hub_repo_id, tmp_path, never_unpickle
):
    upload(local_hub, hub_repo_id, pickled_only(tmp_path))
    with local_hub.fresh_cache(), pytest.raises(OSError, match="only pickled PyTorch weights"):
        AutoModel.from_pretrained(hub_repo_id)
    with local_hub.fresh_cache(), pytest.raises(ValueError, match="safetensors weights only"):
        AutoModel.from_pretrained(hub_repo_id, use_safetensors=False)


def test_hub_repo_with_bad_weights_is_refused(local_hub, hub_repo_id, tmp_path):
    folder = saved(tmp_path, max_shard_size="2KB")
    nan_name = edit_tensor(last_shard(folder), with_nan)
    upload(local_hub, hub_repo_id, folder)
    with local_hub.fresh_cache(), pytest.raises(OSError, match=f"NaN/inf values in 1 tensor.*{nan_name}"):
        AutoModel.from_pretrained(hub_repo_id)
    wide = saved(tmp_path / "wide")
    wide_name = edit_tensor(wide / "model.safetensors", widen)
    upload(local_hub, f"{hub_repo_id}-wide", wide)
    with local_hub.fresh_cache(), pytest.raises(OSError, match=f"shape mismatch: {wide_name}: checkpoint"):
        AutoModel.from_pretrained(f"{hub_repo_id}-wide")


# ------------------------------------------------------------------------------------- audit: loading and saving
def test_from_pretrained_of_another_family_names_the_model_type(tmp_path):
    from brain_gen_hf.models.bendr.modeling_bendr import BENDRForecastModel

    folder = saved(tmp_path)
    # used to load a default BENDR config and fail on every weight key
    with pytest.raises(
        ValueError,
        match=r"holds a 'wavenet_full_channel' model, but BENDRForecastModel loads "
        r"'bendr_forecast' models",
    ):
        BENDRForecastModel.from_pretrained(folder)
    assert isinstance(AutoModel.from_pretrained(folder), WavenetFullChannelModel)


def test_save_pretrained_into_an_existing_file_raises(tmp_path):
    file = tmp_path / "model"
    file.write_text("x")
    with pytest.raises(OSError, match="is an existing file"):  # was a raw FileExistsError after saving nothing
        wavenet().save_pretrained(file)


def test_generate_windowed_on_a_context_shorter_than_a_step_names_the_context():
    model = flatgpt()
    short = model.tokenize(grid())[:, :1]
    with pytest.raises(ValueError, match=r"the context \(1 tokens\) is shorter than one time step \(3 tokens\)"):
        model.generate_windowed(short, 5, greedy())


# ----------------------------------------------------------------------------------- audit: reference conversion
WAVENET_KWARGS = {"in_channels": 2, "quant_levels": 16, "dilations": [1, 2]}


def reference_state(edit=None):
    state = {k: v.clone() for k, v in wavenet().state_dict().items()}
    if edit is not None:
        name = min(state)
        state[name] = edit(state[name])
    return state


@pytest.mark.parametrize(
    "state, message",
    [
        (
            lambda: reference_state(widen),
            r"shape mismatch: layers\.0\.conv_dilation\.bias: checkpoint \(33,\) vs model",
        ),
        (lambda: reference_state(with_nan), r"NaN/inf values in 1 tensor\(s\): \['layers\.0\.conv_dilation\.bias'\]"),
        (lambda: reference_state(lambda t: t.tolist()), "values that are not tensors"),
        (lambda: [1, 2], "state_dict must be a mapping"),
    ],
    ids=["wrong_shape", "nan", "not_tensors", "not_a_mapping"],
)
def test_convert_reference_checkpoint_refuses_bad_weights(state, message):
    from brain_gen_hf.conversion import convert_reference_checkpoint

    # raw RuntimeError / TypeError from load_state_dict before, and NaN weights loaded silently
    with pytest.raises(ValueError, match=message):
        convert_reference_checkpoint("WavenetFullChannel", WAVENET_KWARGS, state())
    with pytest.raises(ValueError, match="reference_kwargs must be a mapping"):
        convert_reference_checkpoint("WavenetFullChannel", [1], reference_state())


def test_load_reference_state_dict_names_a_bad_file(tmp_path):
    from brain_gen_hf.conversion import load_reference_state_dict

    corrupt = tmp_path / "last.safetensors"
    corrupt.write_bytes(b"garbage")
    with pytest.raises(OSError, match="truncated or corrupted"):  # was a raw SafetensorError
        load_reference_state_dict(corrupt)
    tensor = tmp_path / "tensor.ckpt"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(OSError, match="holds a Tensor, not a state dict"):  # was an AttributeError
        load_reference_state_dict(tensor)
