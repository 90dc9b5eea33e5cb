"""Model inputs are checked against the contract, in every family.

* float16 / float64 signals (and sensor positions, signal targets) run in the model's dtype: the result equals
  that of the same values cast to float32 by hand;
* token ids, codes and condition ids are int64 or int32; smaller integer dtypes raise `ValueError` naming the dtype;
* labels are class / token ids in range (or -100); anything else raises `ValueError`;
* an unknown `forward` keyword raises `TypeError`, the keywords transformers itself passes are accepted;
* `channel_names` passed with a signal must equal `config.channel_names`; `config.channel_order(names)` is the
  explicit way to pick and reorder a recording's channels.
* the forecasters' `forecast` checks `channel_names` the same way; FlatGPT token grids are int64 or int32 ids;
* `encode_stream` refuses a state that cannot continue the stream (position, layer contexts, batch shape).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from brain_gen_hf.models.wavenet.configuration_wavenet import (
    Wavenet3DConfig,
    WavenetFullChannelConfig,
)
from tests import (
    test_bendr,
    test_brainomni,
    test_brainomni_forecast,
    test_braintokmix,
    test_classifier,
    test_flatgpt_contract_embeds_rvq,
    test_flatgpt_contract_mix,
    test_flatgpt_contract_qwen,
    test_flatgpt_contract_rvq,
    test_tasa3d,
    test_wavenet,
)
from tests.flatgpt_rvq_configs import build as build_rvq
from tests.flatgpt_rvq_configs import signal as rvq_signal
from tests.model_contract import first_tensor


def _embeddings(shape):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(2))


# name -> (contract class, inputs override or None for the contract's own `make_inputs()`)
SIGNAL_FAMILIES = {
    "bendr": (test_bendr.TestBENDRForecastContract, None),
    "classifier_continuous": (test_classifier.TestClassifierContinuousContract, None),
    "brainomni": (test_brainomni.TestBrainOmniContract, None),
    "braintokmix": (test_braintokmix.TestBrainTokMixContract, None),
    "brainomni_forecast": (test_brainomni_forecast.TestBrainOmniForecastContract, None),
    "flatgpt_embeds_rvq": (
        test_flatgpt_contract_embeds_rvq.TestFlatGPTEmbedsRVQContract,
        lambda: {"input_values": rvq_signal()},
    ),
    "tasa3d_inputs_embeds": (test_tasa3d.TestTASA3DContract, lambda: {"inputs_embeds": _embeddings((2, 4, 4, 8, 4))}),
}
TOKEN_FAMILIES = {
    "wavenet_full_channel": (test_wavenet.TestWavenetFullChannelContract, None),
    "wavenet3d": (test_wavenet.TestWavenet3DContract, None),
    "tasa3d": (test_tasa3d.TestTASA3DContract, None),
    "classifier_quantized": (test_classifier.TestClassifierQuantizedContract, None),
    "classifier_image": (test_classifier.TestClassifierQuantizedImageTASA3DContract, None),
    "flatgpt": (test_flatgpt_contract_qwen.TestFlatGPTQwenContract, None),
    "flatgpt_mix": (test_flatgpt_contract_mix.TestFlatGPTMixContract, None),
    "flatgpt_embeds_rvq_codes": (test_flatgpt_contract_embeds_rvq.TestFlatGPTEmbedsRVQContract, None),
    "flatgpt_rvq_codes": (test_flatgpt_contract_rvq.TestFlatGPTRVQContract, None),
}
ALL_FAMILIES = {**SIGNAL_FAMILIES, **TOKEN_FAMILIES}
# Families whose loss reads token / class ids from `labels` (the classifiers' range checks live in their contract).
TOKEN_LABEL_FAMILIES = [
    "wavenet_full_channel",
    "wavenet3d",
    "tasa3d",
    "flatgpt",
    "flatgpt_mix",
    "flatgpt_embeds_rvq_codes",
]
# name -> (attribute path from the model to the sub-model holding the signal contract, input with the channels)
NAMED_CHANNEL_FAMILIES = {
    "bendr": ((), "input_values"),
    "classifier_continuous": (("base_model",), "input_values"),
    "brainomni": ((), "input_values"),
    "braintokmix": ((), "input_values"),
    "brainomni_forecast": (("tokenizer",), "input_values"),
    "flatgpt_embeds_rvq": (("tokenizer",), "input_values"),
    "wavenet_full_channel": ((), "input_ids"),
    "classifier_quantized": (("base_model",), "input_ids"),
}


def family(name: str):
    """(contract, eval-mode model, inputs) of a tiny model of the family."""
    contract_class, make_inputs = ALL_FAMILIES[name]
    contract = contract_class()
    inputs = make_inputs() if make_inputs is not None else contract.make_inputs()
    return contract, contract.build(), inputs


def output(contract, model, inputs) -> torch.Tensor:
    return first_tensor(contract.run(model, inputs), contract.output_key)


# ----------------------------------------------------------------------------- float dtypes
@pytest.mark.parametrize("dtype", [torch.float16, torch.float64], ids=["float16", "float64"])
@pytest.mark.parametrize("name", sorted(SIGNAL_FAMILIES))
def test_half_and_double_signals_run_in_the_model_dtype(name, dtype):
    contract, model, inputs = family(name)
    floats = {k for k, v in inputs.items() if v.is_floating_point()}  # signal, sensor positions, signal targets
    given = {k: v.to(dtype) if k in floats else v for k, v in inputs.items()}
    by_hand = {k: v.to(dtype).float() if k in floats else v for k, v in inputs.items()}
    got = contract.run(model, given)
    expected = contract.run(model, by_hand)
    # Both run the same float32 path on the same values: bit-identical.
    torch.testing.assert_close(
        first_tensor(got, contract.output_key), first_tensor(expected, contract.output_key), rtol=0, atol=0
    )
    assert first_tensor(got, contract.output_key).dtype == model.dtype
    if expected.get("loss") is not None:
        torch.testing.assert_close(got["loss"], expected["loss"], rtol=0, atol=0)


def test_wavenet3d_dense_condition_runs_in_the_model_dtype():
    from transformers import AutoModel

    torch.manual_seed(0)
    config = Wavenet3DConfig(
        quant_levels=8, quant_emb=4, dilations=[1], spatial_kernel_size=3, image_size=[3, 3], cond_channels=2
    )
    model = AutoModel.from_config(config).eval()
    ids = torch.randint(0, 8, (1, 3, 3, 5), generator=torch.Generator().manual_seed(1))
    condition = torch.randn(1, 2, 3, 3, 5, generator=torch.Generator().manual_seed(2)).double()
    with torch.no_grad():
        got, expected = model(ids, condition=condition).logits, model(ids, condition=condition.float()).logits
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    with pytest.raises(ValueError, match="condition has 3 channels"):
        model(ids, condition=torch.zeros(1, 3, 3, 3, 5))


def test_double_signal_beyond_the_model_dtype_raises():
    _, model, inputs = family("bendr")
    x = inputs["input_values"].double()
    x[0, 0, 0] = 1e300
    with pytest.raises(ValueError, match=r"beyond the range of torch\.float32"):
        model(x)


# ----------------------------------------------------------------------------- integer dtypes
@pytest.mark.parametrize("name", sorted(TOKEN_FAMILIES))
def test_token_ids_are_int64_or_int32(name):
    contract, model, inputs = family(name)
    # int32 ids (and labels) are read as they are: the same result as int64.
    as_int32 = {k: v.int() if k in ("input_ids", "labels") else v for k, v in inputs.items()}
    torch.testing.assert_close(output(contract, model, as_int32), output(contract, model, inputs), rtol=0, atol=0)
    for dtype in (torch.int8, torch.uint8, torch.int16):
        with pytest.raises(ValueError, match=rf"input_ids must be int64 \(or int32\) ids, got dtype {dtype}"):
            contract.run(model, {**inputs, "input_ids": inputs["input_ids"].to(dtype)})


def _decode_codes(name, dtype, flat=False):
    _, model, inputs = family(name)
    with torch.no_grad():
        codes = model.encode(**inputs).codes
    codes = model.flatten_codes(codes) if flat else codes
    model.decode(codes.to(dtype), inputs.get("pos"), inputs.get("sensor_type"))


def _brainomni_sensor_type_int8():
    contract, model, inputs = family("brainomni")
    contract.run(model, {**inputs, "sensor_type": inputs["sensor_type"].to(torch.int8)})


def _wavenet_class_condition_int8():
    from transformers import AutoModel

    torch.manual_seed(0)
    config = WavenetFullChannelConfig(
        in_channels=2,
        quant_levels=8,
        quant_emb=4,
        residual_channels=4,
        dilation_channels=4,
        skip_channels=4,
        head_channels=4,
        dilations=[1],
        num_classes=3,
        class_emb=2,
    )
    model = AutoModel.from_config(config).eval()
    model(torch.zeros(1, 2, 5, dtype=torch.long), condition=torch.ones(1, 1, 5, dtype=torch.int8))


def _tasa3d_time_condition_int8():
    from transformers import AutoModel

    torch.manual_seed(0)
    model = AutoModel.from_config(test_tasa3d.small_config(n_cond_tok=3)).eval()
    model(test_tasa3d.token_images(batch=1, steps=6), condition=torch.zeros(1, 1, 1, 6, dtype=torch.int8))


def _classifier_labels_int8():
    contract, model, inputs = family("classifier_quantized")
    contract.run(model, {**inputs, "labels": inputs["labels"].to(torch.int8)})


# case -> (call, argument named in the error, dtype named in the error)
SMALL_INT_SIDE_INPUTS = {
    "brainomni_codes_int8": (lambda: _decode_codes("brainomni", torch.int8), "codes", "torch.int8"),
    "braintokmix_codes_int16": (lambda: _decode_codes("braintokmix", torch.int16), "codes", "torch.int16"),
    "braintokmix_flat_codes_uint8": (
        lambda: _decode_codes("braintokmix", torch.uint8, flat=True),
        "codes",
        "torch.uint8",
    ),
    "brainomni_sensor_type_int8": (_brainomni_sensor_type_int8, "sensor_type", "torch.int8"),
    "wavenet_class_condition_int8": (_wavenet_class_condition_int8, "condition", "torch.int8"),
    "tasa3d_time_condition_int8": (_tasa3d_time_condition_int8, "condition", "torch.int8"),
    "classifier_labels_int8": (_classifier_labels_int8, "labels", "torch.int8"),
}


@pytest.mark.parametrize("case", sorted(SMALL_INT_SIDE_INPUTS))
def test_small_integer_codes_conditions_and_labels_raise(case):
    call, name, dtype = SMALL_INT_SIDE_INPUTS[case]
    with pytest.raises(ValueError, match=rf"{name} must be int64 \(or int32\) ids, got dtype {dtype}"):
        call()


# ----------------------------------------------------------------------------- labels
@pytest.mark.parametrize("name", TOKEN_LABEL_FAMILIES)
def test_labels_must_be_token_ids_in_range(name):
    contract, model, inputs = family(name)
    labels = inputs["labels"]
    vocab = output(contract, model, inputs).shape[-1]
    too_big, negative = labels.clone(), labels.clone()
    too_big.view(-1)[-1] = vocab
    negative.view(-1)[-1] = -3
    for bad in (too_big, negative):
        with pytest.raises(ValueError, match=rf"labels must be class ids in \[0, {vocab - 1}\]"):
            contract.run(model, {**inputs, "labels": bad})
    with pytest.raises(ValueError, match="labels must be an integer tensor of class ids, got dtype torch.float32"):
        contract.run(model, {**inputs, "labels": labels.float()})
    ignored = labels.clone()
    ignored.view(-1)[-1] = -100  # the ignore index stays allowed
    assert torch.isfinite(contract.run(model, {**inputs, "labels": ignored})["loss"])


# ----------------------------------------------------------------------------- keywords
@pytest.mark.parametrize("name", sorted(ALL_FAMILIES))
def test_unknown_forward_keyword_raises_type_error(name):
    contract, model, inputs = family(name)
    with pytest.raises(TypeError, match=r"forward\(\) got unexpected keyword argument\(s\) 'bogus_kwarg'"):
        contract.run(model, {**inputs, "bogus_kwarg": 1})
    # What transformers' Trainer and pipelines pass to any model is accepted.
    expected = output(contract, model, inputs)
    known = {"return_dict": True, "output_attentions": False, "num_items_in_batch": 4}
    torch.testing.assert_close(output(contract, model, {**inputs, **known}), expected, rtol=0, atol=0)


@pytest.mark.parametrize("name", ["flatgpt", "flatgpt_embeds_rvq_codes"])
def test_language_models_accept_generation_keywords_and_nothing_else(name):
    contract, model, inputs = family(name)
    expected = output(contract, model, inputs)
    generation = {
        "past_key_values": None,
        "cache_position": None,
        "logits_to_keep": 0,
        "use_cache": False,
        "attention_mask": torch.ones_like(inputs["input_ids"]),
        "return_dict": True,
    }
    torch.testing.assert_close(output(contract, model, {**inputs, **generation}), expected, rtol=0, atol=0)
    with pytest.raises(TypeError, match="'use_cahce'"):
        contract.run(model, {**inputs, "use_cahce": True})
    with pytest.raises(TypeError, match="'inputs_embeds'"):  # would be silently ignored next to input_ids
        contract.run(model, {**inputs, "inputs_embeds": torch.zeros(2, 3, 4)})
    prompt = inputs["input_ids"][:, :4]
    assert model.generate(prompt, max_new_tokens=2, do_sample=False).shape == (prompt.shape[0], 6)


# ----------------------------------------------------------------------------- channel names
def _with_channel_names(name):
    path, key = NAMED_CHANNEL_FAMILIES[name]
    contract, model, inputs = family(name)
    holder = model
    for attr in path:
        holder = getattr(holder, attr)
    names = [f"MEG{i:03d}" for i in range(inputs[key].shape[1])]
    holder.config.channel_names = names
    return contract, model, inputs, key, names, holder.config


@pytest.mark.parametrize("name", sorted(NAMED_CHANNEL_FAMILIES))
def test_channel_names_must_match_the_config(name):
    contract, model, inputs, key, names, config = _with_channel_names(name)
    expected = output(contract, model, inputs)
    torch.testing.assert_close(output(contract, model, {**inputs, "channel_names": names}), expected, rtol=0, atol=0)
    reversed_names = names[::-1]
    with pytest.raises(ValueError, match=r"different order \(position 0: 'MEG00\d' where the model expects 'MEG000'"):
        contract.run(model, {**inputs, "channel_names": reversed_names})
    with pytest.raises(ValueError, match=r"missing: \['MEG000'\], unexpected: \['Fz'\]"):
        contract.run(model, {**inputs, "channel_names": ["Fz", *names[1:]]})
    with pytest.raises(ValueError, match=rf"{len(names) - 1} names but the input has {len(names)} channels"):
        contract.run(model, {**inputs, "channel_names": names[:-1]})
    # The explicit fix: a recording in another order is reordered with `config.channel_order`.
    recording = inputs[key].flip(1)
    reordered = recording[:, config.channel_order(reversed_names)]
    got = output(contract, model, {**inputs, key: reordered, "channel_names": names})
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_channel_order_picks_and_orders_a_recordings_channels():
    config = test_bendr.small_config(channel_names=["C3", "Cz", "C4"])
    assert config.channel_order(["C4", "Fz", "C3", "Cz"]) == [2, 3, 0]
    with pytest.raises(ValueError, match=r"lacks channels the model expects: \['Cz'\]"):
        config.channel_order(["C4", "C3"])
    with pytest.raises(ValueError, match="list of strings"):
        config.check_signal_metadata(channel_names="C3")
    with pytest.raises(ValueError, match="duplicates"):
        config.check_signal_metadata(channel_names=["C3", "C3", "C4"])


def test_channel_names_with_codes_instead_of_a_signal_raise():
    contract, model, inputs = family("flatgpt_embeds_rvq_codes")
    with pytest.raises(ValueError, match="pass it as `input_values`"):
        contract.run(model, {**inputs, "channel_names": ["a", "b", "c", "d"]})


# ----------------------------------------------------------------------------- channel names in forecasts
def _forecaster(name):
    """(model, config holding the signal contract, context, forecast(x, **kwargs) -> tensor) of a tiny forecaster."""
    if name == "bendr":
        model = test_bendr.build()
        return model, model.config, test_bendr.signal(), lambda x, **kw: model.forecast(x, 3, **kw).values
    if name == "brainomni_forecast":
        from tests.test_bad_inputs_loading import build_forecaster, forecaster_inputs

        model, inputs = build_forecaster(), forecaster_inputs()
        side = {"pos": inputs["pos"], "sensor_type": inputs["sensor_type"]}
        return (
            model,
            model.tokenizer.config,
            inputs["input_values"],
            lambda x, **kw: model.forecast(x, 4, **side, **kw).values,
        )  # 2 token steps of 2 samples
    model = build_rvq(name)
    return model, model.tokenizer.config, rvq_signal(2, 16), lambda x, **kw: model.forecast(x, 6, **kw).values


@pytest.mark.parametrize(
    "name", ["bendr", "brainomni_forecast", "flatgpt_embeds_rvq", "flatgpt_mix_rvq", "flatgpt_rvq"]
)
def test_forecast_channel_names_must_match_the_config(name):
    _, config, x, forecast = _forecaster(name)
    names = [f"MEG{i:03d}" for i in range(x.shape[1])]
    config.channel_names = names
    expected = forecast(x)
    torch.testing.assert_close(forecast(x, channel_names=names), expected, rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"different order .*`x\[:, config\.channel_order\(channel_names\)\]`"):
        forecast(x, channel_names=names[::-1])
    with pytest.raises(ValueError, match=r"missing: \['MEG000'\], unexpected: \['Fz'\]"):
        forecast(x, channel_names=["Fz", *names[1:]])
    # The explicit fix: reorder the recording, then name its channels as the model does.
    recording = x.flip(1)
    got = forecast(recording[:, config.channel_order(names[::-1])], channel_names=names)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


# ----------------------------------------------------------------------------- FlatGPT token grids
@pytest.mark.parametrize("name", ["flatgpt", "flatgpt_mix"])
def test_token_grid_is_int64_or_int32(name):
    _, model, _ = family(name)
    grid = torch.randint(0, model.config.vocab_size, (2, 4, 3, 1), generator=torch.Generator().manual_seed(4))
    assert torch.equal(model.tokenize(grid.int()), model.tokenize(grid))
    for dtype in (torch.int8, torch.uint8, torch.int16):
        message = rf"token grid must be int64 \(or int32\) ids, got dtype {dtype}"
        with pytest.raises(ValueError, match=message):
            model.tokenize(grid.to(dtype))
        # named as the argument the caller passed (forecast reads (B, C, T) bins), not as input_ids
        with pytest.raises(ValueError, match=rf"input_values must be int64 \(or int32\) ids, got dtype {dtype}"):
            model.forecast(grid[..., 0].transpose(1, 2).to(dtype), 1)


# ----------------------------------------------------------------------------- streaming state
def _stream(name):
    """(tokenizer, chunk (B, C, T), sensor inputs, a state in the middle of a window)."""
    _, model, inputs = family(name)
    x = inputs.pop("input_values")
    with torch.no_grad():
        _, state = model.encode_stream(x[..., : model.config.hop_length], **inputs)
    return model, x, inputs, state


def _other_model_state(model, x, inputs, state):
    other = type(model)(model.config).eval()  # same config, other layers: its context does not belong here
    return other.encode_stream(x[..., : model.config.hop_length], **inputs)[1]


def _other_batch_state(model, x, inputs, state):
    return model.encode_stream(x[:1, :, : model.config.hop_length], **{k: v[:1] for k, v in inputs.items()})[1]


# case -> (state from (model, x, inputs, mid-window state), error)
BAD_STREAM_STATES = {
    "negative_position": (lambda m, x, i, s: replace(s, position=-m.config.hop_length), "state.position must be"),
    "position_minus_window": (lambda m, x, i, s: replace(s, position=-m.config.window_length), "got -8"),
    "position_of_a_whole_window": (lambda m, x, i, s: replace(s, position=m.config.window_length), r"\[0, 8\)"),
    "position_inside_a_hop": (lambda m, x, i, s: replace(s, position=m.config.hop_length // 2), "multiple of the hop"),
    "float_position": (lambda m, x, i, s: replace(s, position=4.0), "got 4.0"),
    "bool_position": (lambda m, x, i, s: replace(s, position=True), "got True"),
    "not_a_state": (lambda m, x, i, s: {"position": 0, "layers": {}}, "must be the TokenizerStreamState"),
    "layers_not_a_dict": (lambda m, x, i, s: replace(s, layers=None), "state.layers must be a dict"),
    "layers_missing_mid_window": (lambda m, x, i, s: replace(s, layers={}), "got 0 entries"),
    "layers_of_another_model": (_other_model_state, "streaming encoder layers"),
    "layers_of_another_batch_size": (_other_batch_state, r"chunks of shape \(B, C\) = \(2, "),
}


@pytest.mark.parametrize("case", sorted(BAD_STREAM_STATES))
@pytest.mark.parametrize("name", ["brainomni", "braintokmix"])
def test_bad_stream_state_is_refused(name, case):
    model, x, inputs, state = _stream(name)
    make_state, message = BAD_STREAM_STATES[case]
    with torch.no_grad():
        bad = make_state(model, x, inputs, state)
        with pytest.raises(ValueError, match=message):
            model.encode_stream(x, **inputs, state=bad)
        # the state a stream returned continues it
        model.encode_stream(x[..., model.config.hop_length :], **inputs, state=state)


# ----------------------------------------------------------------------------- audit: configs
# field overrides of a tiny BrainOmni tokenizer config -> the error naming the field
BAD_CONFIG_VALUES = {
    "channel_names_as_a_string": ({"channel_names": "abc"}, r"`channel_names` must be a list of strings, got 'abc'"),
    "channel_types_as_a_string": ({"channel_types": "mag"}, r"`channel_types` must be a list of strings"),
    "sampling_rate_true": ({"sampling_rate": True}, r"`sampling_rate` must be a positive number in Hz, got True"),
    "position_not_a_number": ({"sensor_positions": [["x", 0, 0]]}, r"`sensor_positions\[0\]` must have 3 numbers"),
    "token_rate_inf": ({"token_rate": float("inf")}, r"`token_rate` must be a positive number, got inf"),
    "units_not_a_string": ({"units": 5}, r"`units` must be a string"),
    "normalization_not_a_dict": ({"normalization": [1, 2]}, r"`normalization` must be a dict"),
    "dropout_not_a_number": ({"dropout": "x"}, r"`dropout` must be in \[0, 1\), got 'x'"),
    "codebook_size_1": ({"codebook_size": 1}, r"`codebook_size` must be at least 2"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIG_VALUES))
def test_bad_config_values_name_the_field(case):
    overrides, message = BAD_CONFIG_VALUES[case]
    with pytest.raises(ValueError, match=message):
        test_brainomni.small_config(**overrides)


def test_wavenet_needs_two_quantisation_levels():
    with pytest.raises(ValueError, match=r"`quant_levels` must be at least 2"):
        WavenetFullChannelConfig(in_channels=2, quant_levels=1, dilations=[1])


def test_model_class_with_a_config_of_another_family_raises():
    from brain_gen_hf.models.bendr.modeling_bendr import BENDRForecastModel

    for build in (BENDRForecastModel, BENDRForecastModel._from_config):  # used to be an AttributeError
        with pytest.raises(
            ValueError,
            match=r"BENDRForecastModel needs a BENDRForecastConfig .*got a "
            r"BrainOmniCausalTokenizerConfig",
        ):
            build(test_brainomni.small_config())


# ----------------------------------------------------------------------------- audit: model inputs
@pytest.mark.parametrize("tokens_per_window", [-1, 0, 1.5, True])
def test_decode_tokens_per_window_must_be_a_positive_int(tokens_per_window):
    _, model, inputs = family("brainomni")
    with torch.no_grad():
        codes = model.encode(**inputs).codes
    # -1 / 1.5 used to fail deep in einops / torch, 0 and True silently meant the default / 1
    with pytest.raises(ValueError, match=r"tokens_per_window must be a positive int"):
        model.decode(codes, inputs["pos"], inputs["sensor_type"], tokens_per_window=tokens_per_window)


@pytest.mark.parametrize("name", ["bendr", "brainomni", "wavenet_full_channel", "flatgpt"])
def test_inputs_on_the_meta_device_raise(name):
    contract, model, inputs = family(name)
    key = "input_ids" if "input_ids" in inputs else "input_values"
    with pytest.raises(ValueError, match=rf"{key} is on the meta device"):  # was a raw `Tensor.item()` error
        contract.run(model, {**inputs, key: inputs[key].to("meta")})


@pytest.mark.parametrize("name", ["flatgpt", "flatgpt_mix"])
def test_token_grid_with_another_channel_count_raises(name):
    _, model, _ = family(name)
    grid = torch.randint(0, model.config.vocab_size - 1, (2, 4, 5, 1), generator=torch.Generator().manual_seed(4))
    # 5 channels laid out as if they were the model's 3: silently misaligned grid positions
    with pytest.raises(ValueError, match=r"has 5 channels per time step \(C \* W\), the model's input_shape has 3"):
        model.tokenize(grid)


@pytest.mark.parametrize("strategy", ["argmax", "roulette"])
def test_samplers_refuse_nan_logits(strategy):
    from transformers import GenerationConfig

    from brain_gen_hf.forecasting import choose_next
    from brain_gen_hf.forecasting import reference_sample as sample

    config = GenerationConfig(do_sample=strategy == "roulette")

    logits = torch.zeros(2, 1, 8)
    logits[1, 0, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):  # argmax picked the NaN, roulette failed in torch.multinomial
        choose_next(logits, config)
    with pytest.raises(ValueError, match="NaN"):
        sample(logits, strategy)
    masked = torch.zeros(2, 1, 8)
    masked[..., 0] = float("-inf")  # a masked token is fine
    assert (choose_next(masked, config) != 0).all()


# ----------------------------------------------------------------------------- audit: signal tokenizers
def test_signal_tokenizers_refuse_non_numeric_arrays():
    import numpy as np

    from brain_gen_hf.tokenizers import AmplitudeTokenizer

    with pytest.raises(ValueError, match="non-numeric input"):  # was torch's raw TypeError
        AmplitudeTokenizer(num_channels=3).encode_signal(np.array([["a", "b"], ["c", "d"]]))


def test_delimited_strip_forecast_checks_its_arguments():
    from brain_gen_hf.tokenizers import DelimitedTokenizer

    tokenizer = DelimitedTokenizer(num_channels=3)
    with pytest.raises(ValueError, match="tokens_per_step must be >= 2 .*an int, got 2.5"):  # int(2.5) regrouped by 2
        tokenizer.strip_forecast(torch.tensor([[0, 1, 2, 256]]), tokens_per_step=2.5)
    with pytest.raises(ValueError, match=r"Token ids must lie in \[0, 256\]"):  # was passed through
        tokenizer.strip_forecast(torch.tensor([[0, 1, 999, 256]]))
    assert torch.equal(
        tokenizer.strip_forecast(torch.tensor([[0, 1, 2, 256]]), tokens_per_step=4), torch.tensor([[0, 1, 2]])
    )


def test_tokenizer_save_pretrained_into_an_existing_file_raises(tmp_path):
    from brain_gen_hf.tokenizers import AmplitudeTokenizer

    file = tmp_path / "tokenizer"
    file.write_text("x")
    with pytest.raises(OSError, match="is an existing file"):  # transformers logged an error and saved nothing
        AmplitudeTokenizer(num_channels=3).save_pretrained(file)


def test_signal_tokenizer_decode_refuses_ids_outside_the_vocabulary():
    from brain_gen_hf.tokenizers import AmplitudeTokenizer

    tokenizer = AmplitudeTokenizer(num_channels=3)
    assert tokenizer.decode(torch.tensor([0, 1])) == tokenizer.decode([0, 1])
    for bad in ([0, 1, 300], torch.tensor([0, -1]), 256):  # the backend used to drop them silently
        with pytest.raises(ValueError, match=r"outside the vocabulary \[0, 255\]"):
            tokenizer.decode(bad)


def test_resize_context_and_init_codebooks_check_argument_types():
    _, model, _ = family("flatgpt")
    with pytest.raises(ValueError, match="max_position_embeddings must be a positive number, got 'big'"):
        model.resize_context(max_position_embeddings="big")  # was a raw TypeError from `>`
    _, tokenizer, inputs = family("brainomni")
    with pytest.raises(ValueError, match="seed must be an int or None, got 'a'"):  # was torch's int() error
        tokenizer.init_codebooks(**inputs, seed="a")


def test_model_card_arguments_are_checked():
    from brain_gen_hf.hub.model_card import render_model_card

    config = test_bendr.small_config()
    with pytest.raises(ValueError, match="metrics must be a dict"):  # was a jinja2 UndefinedError
        render_model_card(config, metrics="accuracy")
    assert "| accuracy | 0.9 |" in str(render_model_card(config, metrics={"accuracy": 0.9}))
