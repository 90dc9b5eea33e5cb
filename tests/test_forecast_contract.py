"""The one forecast contract, checked over every registered forecasting family (tests/forecast_contract.py)."""

import pytest
import torch
from transformers import GenerationConfig, set_seed

from brain_gen_hf.forecasting import ForecastOutput, sampling
from tests.forecast_contract import FORECAST_CASES, drop_last_channel, row

CASES = [pytest.param(case, id=name) for name, case in FORECAST_CASES.items()]
SAMPLED = GenerationConfig(do_sample=True, temperature=1.5)


def forecast(case, model, batch=2, horizon=None, generation_config=None, **kwargs):
    input_values, metadata = case.inputs(batch)
    return model.forecast(input_values, horizon or case.horizon, generation_config, **metadata, **kwargs)


def assert_same(case, a, b):
    torch.testing.assert_close(a.values, b.values, rtol=case.rtol, atol=case.atol)
    for key in ("codes", "tokens"):
        if getattr(a, key) is not None:
            assert torch.equal(getattr(a, key), getattr(b, key)), key


@pytest.mark.parametrize("case", CASES)
def test_shape_dtype_and_finite(case):
    model = case.build()
    for horizon in filter(None, (case.horizon, case.long_horizon)):
        out = forecast(case, model, horizon=horizon)
        assert isinstance(out, ForecastOutput)
        input_values, _ = case.inputs(2)
        assert out.values.shape[:2] == (2, model._forecast_channels(input_values) or out.values.shape[1])
        assert out.values.shape == (2, out.values.shape[1], horizon)
        assert out.values.is_floating_point() and bool(torch.isfinite(out.values).all())
        for key in ("codes", "tokens"):
            value = getattr(out, key)
            if value is not None:
                assert value.dtype == torch.long and value.shape[0] == 2, key


@pytest.mark.parametrize("case", CASES)
def test_greedy_is_deterministic_and_the_default(case):
    model = case.build()
    first = forecast(case, model)
    assert_same(case, first, forecast(case, model))
    assert_same(case, first, forecast(case, model, generation_config=GenerationConfig(do_sample=False)))


@pytest.mark.parametrize("case", CASES)
def test_batch_rows_are_independent(case):
    model = case.build()
    input_values, metadata = case.inputs(2)
    batched = model.forecast(input_values, case.horizon, **metadata)
    for i in range(2):
        alone_input, alone_metadata = row(case, input_values, metadata, i)
        alone = model.forecast(alone_input, case.horizon, **alone_metadata)
        torch.testing.assert_close(batched.values[i : i + 1], alone.values, rtol=case.rtol, atol=case.atol)
        for key in ("codes", "tokens"):
            if getattr(batched, key) is not None:
                assert torch.equal(getattr(batched, key)[i : i + 1], getattr(alone, key)), key


@pytest.mark.parametrize("case", CASES)
def test_seeded_sampling(case):
    model = case.build()
    if not case.samples:
        with pytest.raises(ValueError, match="do_sample"):
            forecast(case, model, generation_config=SAMPLED)
        return
    set_seed(0)
    first = forecast(case, model, generation_config=SAMPLED)
    set_seed(0)
    assert_same(case, first, forecast(case, model, generation_config=SAMPLED))
    others = []
    for seed in (1, 2, 3):
        set_seed(seed)
        others.append(forecast(case, model, generation_config=SAMPLED))
    key = "codes" if first.codes is not None else "tokens" if first.tokens is not None else "values"
    assert any(not torch.equal(getattr(first, key), getattr(other, key)) for other in others)


@pytest.mark.parametrize("case", CASES)
def test_top_k_one_sampling_is_greedy(case):
    model = case.build()
    if not case.samples:  # a deterministic family refuses even a top-k=1 draw rather than ignoring do_sample
        with pytest.raises(ValueError, match="do_sample"):
            forecast(case, model, generation_config=GenerationConfig(do_sample=True, top_k=1, temperature=0.7))
        return
    set_seed(0)
    assert_same(
        case,
        forecast(case, model),
        forecast(case, model, generation_config=GenerationConfig(do_sample=True, top_k=1, temperature=0.7)),
    )


@pytest.mark.parametrize("case", CASES)
def test_bad_inputs_raise(case):
    model = case.build()
    input_values, metadata = case.inputs(2)
    for horizon in (0, -2, 2.5, True, "4", None):
        with pytest.raises(ValueError, match="horizon"):
            model.forecast(input_values, horizon, **metadata)
    with pytest.raises(ValueError, match="NaN"):
        model.forecast(input_values * float("nan"), case.horizon, **metadata)
    wrong, wrong_metadata = (case.wrong_channels or drop_last_channel)(input_values, metadata)
    with pytest.raises(ValueError, match="channel"):
        model.forecast(wrong, case.horizon, **wrong_metadata)
    with pytest.raises(TypeError, match="unexpected keyword argument.*'not_an_option'"):
        model.forecast(input_values, case.horizon, not_an_option=1, **metadata)
    with pytest.raises(TypeError, match="GenerationConfig"):
        model.forecast(input_values, case.horizon, do_sample=True, **metadata)
    with pytest.raises(TypeError, match="GenerationConfig"):
        model.forecast(input_values, case.horizon, {"do_sample": True}, **metadata)
    with pytest.raises(ValueError, match="num_beams"):
        model.forecast(input_values, case.horizon, GenerationConfig(num_beams=2), **metadata)


@pytest.mark.parametrize("case", CASES)
def test_progress_bar(case, capsys, monkeypatch):
    model = case.build()
    shown = forecast(case, model, progress=True)
    assert type(model).__name__ in capsys.readouterr().err  # the bar is named after the model
    hidden = forecast(case, model, progress=False)
    assert capsys.readouterr().err == ""
    assert_same(case, shown, hidden)
    forecast(case, model)  # default: quiet for a short forecast, and whenever stderr is not a terminal
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(sampling, "_interactive", lambda: True)
    monkeypatch.setattr(sampling, "LONG_FORECAST", 1)  # every forecast is "long" in an interactive session
    forecast(case, model)
    assert type(model).__name__ in capsys.readouterr().err
    with pytest.raises(ValueError, match="progress"):
        forecast(case, model, progress="yes")


@pytest.mark.parametrize("case", CASES)
def test_training_mode_is_restored(case):
    model = case.build().train()
    modes = [module.training for module in model.modules()]  # a frozen sub-model may stay in eval by design
    forecast(case, model)
    assert model.training and [module.training for module in model.modules()] == modes
    model.eval()
    forecast(case, model)
    assert not any(module.training for module in model.modules())


# ----------------------------------------------------------------------------------------- the core itself
def test_processors_follow_the_generation_config():
    from transformers import MinPLogitsWarper, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    from brain_gen_hf.forecasting import (
        ReferenceTopPLogitsWarper,
        build_logits_processor,
    )

    sampled = GenerationConfig(do_sample=True, temperature=0.7, top_k=5, top_p=0.9, min_p=0.1)
    processors = build_logits_processor(sampled)
    assert [type(p) for p in processors] == [
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
        MinPLogitsWarper,
    ]
    assert (processors[0].temperature, processors[1].top_k, processors[2].top_p, processors[3].min_p) == (
        0.7,
        5,
        0.9,
        0.1,
    )
    reference = build_logits_processor(sampled, reference_top_p=True)
    assert isinstance(reference[2], ReferenceTopPLogitsWarper) and reference[2].top_p == 0.9
    # neutral values add nothing; greedy decoding ignores the sampling fields; the caller's processors come first
    assert len(build_logits_processor(GenerationConfig(do_sample=True, temperature=1.0, top_k=0, top_p=1.0))) == 0
    assert len(build_logits_processor(GenerationConfig(temperature=0.7, top_k=5))) == 0
    mine = TemperatureLogitsWarper(2.0)
    assert build_logits_processor(GenerationConfig(do_sample=True, top_k=3), [mine])[0] is mine


def test_generation_config_is_resolved_and_validated():
    from brain_gen_hf.forecasting import resolve_generation_config

    class Bare:
        generation_config = None

    class WithConfig:
        generation_config = GenerationConfig(do_sample=True, top_k=4)

    greedy = resolve_generation_config(Bare())
    assert not greedy.do_sample
    own = resolve_generation_config(WithConfig())
    assert own.do_sample and own.top_k == 4 and own is not WithConfig.generation_config  # a copy
    for fields, match in [
        ({"temperature": 0.0}, "temperature"),
        ({"top_k": -1}, "top_k"),
        ({"top_k": 1.5}, "top_k"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_p": float("nan")}, "top_p"),
        ({"min_p": 2.0}, "min_p"),
        ({"num_beams": 2}, "num_beams"),
        ({"repetition_penalty": 1.2}, "repetition_penalty"),
    ]:
        with pytest.raises(ValueError, match=match):
            resolve_generation_config(Bare(), GenerationConfig(do_sample=True, **fields))
    with pytest.raises(TypeError, match="GenerationConfig"):
        resolve_generation_config(Bare(), {"do_sample": True})


def test_reference_top_p_drops_the_crossing_token():
    from transformers import TopPLogitsWarper

    from brain_gen_hf.forecasting import ReferenceTopPLogitsWarper

    # probabilities 1/8, 1/2, 1/8, 1/4: sorted 1/2, 1/4, 1/8, 1/8 -> cumulative 0.5, 0.75, 0.875, 1.0
    scores = torch.tensor([[0.125, 0.5, 0.125, 0.25]]).log()
    out = ReferenceTopPLogitsWarper(0.8)(None, scores.clone())
    assert torch.isinf(out).tolist() == [[True, False, True, False]]  # 0.875 > 0.8: the third token is dropped
    torch.testing.assert_close(out[0, [1, 3]], scores[0, [1, 3]], rtol=0, atol=0)  # kept scores untouched
    standard = TopPLogitsWarper(0.8)(None, scores.clone())  # transformers keeps the token that crosses 0.8
    assert torch.isinf(standard).sum() == 1
    assert torch.isinf(ReferenceTopPLogitsWarper(0.1)(None, scores.clone())).tolist() == [[True, False, True, True]]
    kept_three = ReferenceTopPLogitsWarper(0.1, min_tokens_to_keep=3)(None, scores.clone())
    assert torch.isinf(kept_three).sum() == 1
    with pytest.raises(ValueError, match="top_p"):
        ReferenceTopPLogitsWarper(1.5)


def test_choose_next():
    from brain_gen_hf.forecasting import build_logits_processor, choose_next

    logits = torch.randn(2, 3, 9, generator=torch.Generator().manual_seed(0))
    greedy = GenerationConfig()
    assert torch.equal(choose_next(logits, greedy), logits.argmax(-1))
    sampled = GenerationConfig(do_sample=True, temperature=0.5)
    set_seed(3)
    drawn = choose_next(logits, sampled, build_logits_processor(sampled))
    set_seed(3)  # one multinomial draw per row of the full table, as generate draws
    expected = torch.multinomial((logits.reshape(6, 9) / 0.5).softmax(-1), 1).reshape(2, 3)
    assert drawn.dtype == torch.long and torch.equal(drawn, expected)
    nan = logits.clone()
    nan[1, 2, 4] = float("nan")
    for config in (greedy, sampled):
        with pytest.raises(ValueError, match="1 NaN values"):
            choose_next(nan, config)
    masked = logits.clone()
    masked[..., logits.argmax(-1).unique()] = float("-inf")  # a masked token is fine, and never chosen
    assert not torch.isin(choose_next(masked, greedy), logits.argmax(-1).unique()).any()
    with pytest.raises(ValueError, match="masked every token"):
        choose_next(torch.full((2, 4), float("-inf")), sampled)


def test_progress_bar_rule(monkeypatch):
    from brain_gen_hf.forecasting import LONG_FORECAST, forecast_progress

    assert not forecast_progress(3, "x", True).disable
    assert forecast_progress(LONG_FORECAST, "x", False).disable
    monkeypatch.setattr(sampling, "_interactive", lambda: True)
    assert forecast_progress(LONG_FORECAST - 1, "x").disable  # short: quiet
    assert not forecast_progress(LONG_FORECAST, "x").disable  # long, in a terminal: shown
    monkeypatch.setattr(sampling, "_interactive", lambda: False)
    assert forecast_progress(LONG_FORECAST, "x").disable  # long, in a log: quiet
    with pytest.raises(ValueError, match="progress"):
        forecast_progress(3, "x", 1)


def test_mixin_enforces_the_output_contract():
    from brain_gen_hf.forecasting import ForecastMixin

    class Toy(ForecastMixin, torch.nn.Module):
        def __init__(self, result):
            super().__init__()
            self.result = result

        def _forecast(self, input_values, horizon, generation_config, logits_processor, *, progress=None):
            assert not self.training and not torch.is_grad_enabled()
            return self.result(input_values, horizon)

    x = torch.zeros(2, 3, 5)
    assert Toy(lambda x, h: ForecastOutput(values=x.new_zeros(2, 3, h))).forecast(x, 4).values.shape == (2, 3, 4)
    with pytest.raises(TypeError, match="ForecastOutput"):
        Toy(lambda x, h: x.new_zeros(2, 3, h)).forecast(x, 4)
    for wrong in ((2, 3, 3), (1, 3, 4), (2, 2, 4), (2, 4)):
        with pytest.raises(RuntimeError, match=r"\(B, C, horizon\) = \(2, 3, 4\)"):
            Toy(lambda x, h, wrong=wrong: ForecastOutput(values=x.new_zeros(wrong))).forecast(x, 4)
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) 'pos' \(it accepts no sensor metadata\)"):
        Toy(lambda x, h: None).forecast(x, 4, pos=None)
