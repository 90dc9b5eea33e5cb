"""NTD: model contract, the scheduler (diffusers' interface, OU prior), sampling / in-painting / forecasting, seeded
reproducibility, training through the shared trainer with exact resume, and parity with brain-gen vectors."""

import json
import math
import re

import pytest
import torch
from transformers import AutoModel, GenerationConfig, TemperatureLogitsWarper, set_seed

from brain_gen_hf.conversion import config_from_reference, convert_reference_checkpoint
from brain_gen_hf.models.ntd.configuration_ntd import NTDConfig
from brain_gen_hf.models.ntd.scheduling_ntd import NTDScheduler
from tests.model_contract import ModelContract
from tests.refvec import assert_float_close, discover_cases, require_case

C, L, T = 2, 24, 6


def small_config(**overrides):
    return NTDConfig(**{**SMALL, **overrides})


SMALL = dict(
    signal_length=L,
    signal_channel=C,
    diffusion_time_steps=T,
    schedule="quad",
    start_beta=1e-4,
    end_beta=0.2,
    ou_sigma2=1.5,
    ou_ell=5.0,
    net_hidden_channel=3,
    net_slconv_kernel_size=3,
    net_num_scales=2,
    net_num_blocks=2,
    net_num_off_diag=1,
    net_use_pos_emb=True,
    mask_channel=1,
    p_forecast=0.5,
)


def build(seed=0, **overrides):
    torch.manual_seed(seed)
    return AutoModel.from_config(small_config(**overrides)).eval()


def signal(batch=2, steps=L, seed=1):
    return torch.randn(batch, C, steps, generator=torch.Generator().manual_seed(seed))


def fixed_draws(batch=2):
    """Noise, steps and an observed prefix, so a forward is deterministic."""
    g = torch.Generator().manual_seed(5)
    mask = torch.zeros(batch, L)
    mask[:, : L // 3] = 1.0
    return {
        "labels": torch.randn(batch, C, L, generator=g),
        "timesteps": torch.tensor([1, 4])[:batch],
        "forecast_mask": mask,
    }


class TestNTDContract(ModelContract):
    output_key = "pred_noise"
    main_input = "input_values"
    causal = True
    causal_input_key = None  # differentiate against the clean signal

    def make_config(self):
        return small_config()

    def make_inputs(self):
        return {"input_values": signal(), **fixed_draws()}

    def bad_inputs(self):
        x, draws = signal(), fixed_draws()
        return [
            ({"input_values": x[:, :1], **draws}, "1 channels"),
            ({"input_values": x[..., :-1]}, "exactly signal_length"),
            ({"input_values": x.long()}, "floating-point"),
            ({"input_values": x.masked_fill(x > 1.5, float("nan"))}, "NaN/inf"),
            ({"input_values": x, "labels": draws["labels"][..., :5]}, "labels .the noise to add."),
            ({"input_values": x, "timesteps": torch.tensor([0, T])}, r"timesteps must be in \[0, 5\]"),
            ({"input_values": x, "timesteps": torch.tensor([0.5, 1.0])}, "integer diffusion steps"),
            ({"input_values": x, "forecast_mask": draws["forecast_mask"] * 0.5}, "0 .unobserved. and 1"),
            ({"input_values": x, "forecast_mask": draws["forecast_mask"][:, :-1]}, r"shape \(B, L\)"),
            ({"input_values": x, "cond": x}, "cond_dim = 0"),
        ]


# ------------------------------------------------------------------------------------------------ config
def test_config_validation_errors():
    for overrides, match in [
        ({"net_num_scales": 5}, "shorter than `signal_length`"),
        ({"schedule": "cosine"}, "`schedule` must be one of"),
        ({"noise_process": "pink"}, "`noise_process`"),
        ({"mask_channel": 2}, "`mask_channel` must be 0 or 1"),
        ({"mask_channel": 0}, "set `mask_channel=1`"),
        ({"net_num_off_diag": 4}, "cannot exceed"),
        ({"end_beta": 1.5}, r"`end_beta` must be in \(0, 1\)"),
        ({"ou_ell": 0.0}, "`ou_ell` must be a positive number"),
        ({"known_part_update": "exact"}, "known_part_update"),
        ({"channel_names": ["a", "b", "c"]}, "3 channels but `signal_channel` is 2"),
    ]:
        with pytest.raises(ValueError, match=match):
            small_config(**overrides)


# ---------------------------------------------------------------------------------------------- scheduler
def test_ou_prior_has_the_ou_covariance():
    """The factor U of the precision gives cov = (U^T U)^-1 = sigma2 * exp(-|i - j| / ell), the OU kernel."""
    scheduler = NTDScheduler.from_model_config(small_config())
    u = scheduler._dense_upper(torch.device("cpu")).double()
    covariance = torch.linalg.inv(u.T @ u)
    steps = torch.arange(L, dtype=torch.float64)
    expected = 1.5 * torch.exp(-(steps[:, None] - steps[None]).abs() / 5.0)
    torch.testing.assert_close(covariance, expected, rtol=1e-4, atol=1e-5)
    # Drawn samples follow it (loosely: 4000 draws).
    draws = scheduler.sample_noise((4000, 1, L), generator=torch.Generator().manual_seed(0))[:, 0].double()
    torch.testing.assert_close(draws.T @ draws / 4000, expected, rtol=0, atol=0.15)


def test_causal_mahalanobis_keeps_the_reference_index_shift():
    """y_t = d_t r_t + u_{t-1} r_{t-1} (u_t = U[t-1, t]): causal, and the coefficient is taken one index early."""
    scheduler = NTDScheduler.from_model_config(small_config())
    u = scheduler._dense_upper(torch.device("cpu"))
    r = torch.randn(1, 1, L, generator=torch.Generator().manual_seed(2))
    y = scheduler.sqrt_mahalanobis(r)[0, 0]
    d, off = torch.diagonal(u), torch.diagonal(u, 1)  # off[t - 1] = U[t - 1, t]
    assert torch.isclose(y[0], d[0] * r[0, 0, 0]) and torch.isclose(y[1], d[1] * r[0, 0, 1])  # y_1 has no r_0 term
    for t in range(2, L):
        assert torch.isclose(y[t], d[t] * r[0, 0, t] + off[t - 2] * r[0, 0, t - 1], rtol=1e-5, atol=1e-6)
    white = NTDScheduler(noise_process="white", ou_sigma2=2.0, signal_length=L)
    torch.testing.assert_close(white.sqrt_mahalanobis(r), r / 2.0)


def test_scheduler_follows_the_diffusers_interface(tmp_path):
    scheduler = NTDScheduler.from_model_config(small_config())
    betas = torch.linspace(1e-4**0.5, 0.2**0.5, T) ** 2  # "quad"
    torch.testing.assert_close(scheduler.betas, betas)
    torch.testing.assert_close(scheduler.alphas_cumprod, torch.cumprod(1 - betas, 0))
    assert scheduler.timesteps.tolist() == [5, 4, 3, 2, 1, 0] and len(scheduler) == T
    scheduler.set_timesteps(3)
    assert scheduler.timesteps.tolist() == [4, 2, 0] and scheduler.previous_timestep(4) == 2
    for bad in (0, 7, 2.0, True):
        with pytest.raises(ValueError, match="num_inference_steps"):
            scheduler.set_timesteps(bad)
    x, eps, z = torch.randn(3, 1, C, L).unbind(0)
    # A strided step uses alpha = alpha_bar_t / alpha_bar_prev and the posterior variance between the two steps.
    ab = scheduler.alphas_cumprod
    alpha = ab[4] / ab[2]
    sigma = ((1 - ab[2]) / (1 - ab[4]) * (1 - alpha)).sqrt()
    expected = (x - (1 - alpha) / (1 - ab[4]).sqrt() * eps) / alpha.sqrt() + sigma * z
    torch.testing.assert_close(scheduler.step(eps, 4, x, variance_noise=z).prev_sample, expected)
    # No noise after the last step; the known part of "repaint" is then the signal itself.
    last = scheduler.step(eps, 0, x, variance_noise=z).prev_sample
    torch.testing.assert_close(last, (x - (1 - ab[0]) / (1 - ab[0]).sqrt() * eps) / ab[0].sqrt())
    assert torch.equal(scheduler.known_part(x, 0, z), x)
    torch.testing.assert_close(scheduler.known_part(x, 4, z), ab[2].sqrt() * x + (1 - ab[2]).sqrt() * z)
    noisy = scheduler.add_noise(x, eps, torch.tensor([3]))
    torch.testing.assert_close(noisy, ab[3].sqrt() * x + (1 - ab[3]).sqrt() * eps)
    assert torch.equal(scheduler.scale_model_input(x, 3), x)
    # scheduler_config.json round trip, and refusals.
    scheduler.save_pretrained(tmp_path)
    data = json.loads((tmp_path / "scheduler_config.json").read_text())
    assert data["_class_name"] == "NTDScheduler" and data["num_train_timesteps"] == T
    again = NTDScheduler.from_pretrained(tmp_path)
    assert again.config == scheduler.config and torch.equal(again.ou_band, scheduler.ou_band)
    (tmp_path / "scheduler_config.json").write_text(json.dumps({**data, "clip_sample": True}))
    with pytest.raises(ValueError, match="unknown scheduler arguments.*clip_sample"):
        NTDScheduler.from_pretrained(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(OSError, match="no scheduler_config.json"):
        NTDScheduler.from_pretrained(tmp_path / "empty")


def test_model_folder_holds_the_scheduler(tmp_path):
    model = build()
    model.save_pretrained(tmp_path)
    scheduler = NTDScheduler.from_pretrained(tmp_path)
    assert scheduler.config == model.scheduler.config
    reloaded = AutoModel.from_pretrained(tmp_path)
    assert reloaded.scheduler.config == scheduler.config
    assert not any(k.startswith(("betas", "noise_sampler")) for k in reloaded.state_dict())


# ------------------------------------------------------------------------------------------ forward / loss
def test_forward_draws_in_the_reference_order_and_is_seeded():
    model = build(p_forecast=1.0)
    x = signal()
    a = model(x, generator=torch.Generator().manual_seed(3))
    b = model(x, generator=torch.Generator().manual_seed(3))
    for key in ("noise", "timesteps", "forecast_mask", "loss"):
        assert torch.equal(a[key], b[key]), key
    assert a.forecast_mask[:, 0].all() and not a.forecast_mask[:, -1].any()  # p_forecast 1: an observed prefix
    # The loss leaves the observed prefix out and weights the rest by the OU Mahalanobis transform.
    elementwise = model.loss(a.noise, a.pred_noise, a.forecast_mask, reduction="none")
    assert elementwise[..., a.forecast_mask[0] == 1].abs().max() == 0
    torch.testing.assert_close(elementwise.mean(), a.loss)
    set_seed(7)
    c = model(x)
    set_seed(7)
    assert torch.equal(model(x).noise, c.noise)  # torch's global RNG when no generator is given


def test_loss_of_the_past_does_not_depend_on_the_future():
    model = build(p_forecast=1.0)
    x = signal().requires_grad_(True)
    out = model(x, generator=torch.Generator().manual_seed(0))
    model.loss(out.noise, out.pred_noise, None, reduction="none")[..., :-1].mean().backward()
    assert x.grad[..., :-1].abs().sum() > 0 and x.grad[..., -1].abs().max() == 0


def test_hidden_states_are_time_major():
    model = build()
    out = model(signal(), **fixed_draws(), output_hidden_states=True)
    assert len(out.hidden_states) == 3 and out.hidden_states[0].shape == (2, L, 9)


# ------------------------------------------------------------------------------------- sample / impute
def test_sample_is_seeded_and_strides_the_chain():
    model = build()
    a = model.sample(2, generator=torch.Generator().manual_seed(0))
    assert a.shape == (2, C, L) and torch.isfinite(a).all()
    assert torch.equal(a, model.sample(2, generator=torch.Generator().manual_seed(0)))
    assert not torch.equal(a, model.sample(2, generator=torch.Generator().manual_seed(1)))
    short = model.sample(1, generator=torch.Generator().manual_seed(0), num_inference_steps=2)
    assert short.shape == (1, C, L) and model.scheduler.timesteps.tolist() == [3, 0]
    with pytest.raises(ValueError, match="batch_size"):
        model.sample(0)


def test_impute_keeps_what_was_observed_and_needs_a_mask_channel():
    model = build()
    x = signal()
    mask = torch.zeros(2, L)
    mask[:, :10] = 1.0
    g = torch.Generator().manual_seed(0)
    filled = model.impute(x, mask, generator=g)
    assert torch.equal(filled[..., :10], x[..., :10])  # "repaint": the last step writes the signal back
    assert torch.isfinite(filled).all() and not torch.equal(filled[..., 10:], x[..., 10:])
    reference_update = build(known_part_update="reference").impute(x, mask, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(reference_update[..., :10], x[..., :10])  # brain-gen's update does not return them
    with pytest.raises(ValueError, match="same mask on every channel"):
        model.impute(x, torch.stack([mask, 1 - mask], dim=1))
    with pytest.raises(ValueError, match="mask channel"):
        build(mask_channel=0, p_forecast=0.0).impute(x, mask)


def test_forecast_in_paints_the_future():
    model = build()
    context = signal(steps=30)
    out = model.forecast(context, 17).values  # stride 12 (overlap 0.5): two windows
    assert out.shape == (2, C, 17) and torch.isfinite(out).all()
    assert torch.equal(out, model.forecast(context, 17).values)  # do_sample=False: a fixed seed
    # The first window is one in-painting of the latest 12 samples, every row drawn from a generator seeded 0.
    window = torch.zeros(1, C, L)
    mask = torch.zeros(1, L)
    mask[:, :12] = 1
    for row in range(2):
        window[..., :12] = context[row, :, -12:]
        first = model.impute(window, mask, generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(out[row, :, :12], first[0, :, 12:], rtol=1e-5, atol=1e-6)
    set_seed(1)
    sampled = model.forecast(context, 5, GenerationConfig(do_sample=True)).values
    set_seed(1)
    assert torch.equal(sampled, model.forecast(context, 5, GenerationConfig(do_sample=True)).values)
    set_seed(2)
    assert not torch.equal(sampled, model.forecast(context, 5, GenerationConfig(do_sample=True)).values)
    seeded = model.forecast(context, 5, generator=torch.Generator().manual_seed(4), sliding_window_overlap=20)
    assert seeded.values.shape == (2, C, 5)  # an int overlap is the stride
    model.train()
    model.forecast(context[..., :3], 2, num_inference_steps=2)  # a short context; the mode is restored
    assert model.training


def test_forecast_refuses_what_does_not_apply():
    model = build()
    context = signal(steps=10)
    with pytest.raises(ValueError, match="logits processors do not apply"):
        model.forecast(context, 3, GenerationConfig(do_sample=True, temperature=0.5))
    with pytest.raises(ValueError, match="logits processors do not apply"):
        model.forecast(context, 3, logits_processor=[TemperatureLogitsWarper(0.5)])
    for horizon in (0, 2.5, True):
        with pytest.raises(ValueError, match="horizon"):
            model.forecast(context, horizon)
    with pytest.raises(ValueError, match="NaN"):
        model.forecast(context * float("nan"), 3)
    with pytest.raises(ValueError, match="channels"):
        model.forecast(context[:, :1], 3)
    with pytest.raises(ValueError, match="sliding_window_overlap"):
        model.forecast(context, 3, sliding_window_overlap=1.5)
    with pytest.raises(TypeError, match="'use_cache'.*GenerationConfig"):
        model.forecast(context, 3, use_cache=True)


# ----------------------------------------------------------------------------------------------- training
def test_ntd_trains_through_the_trainer_and_resumes_exactly(tiny_meg_dataset, tmp_path):
    from brain_gen_hf.training.arguments import parse_run_config
    from brain_gen_hf.training.trainer import train

    config = dict(
        task="ntd",
        model_config={
            "diffusion_time_steps": 10,
            "net_hidden_channel": 1,
            "net_slconv_kernel_size": 3,
            "net_num_scales": 2,
            "net_num_blocks": 1,
            "net_num_off_diag": 1,
            "mask_channel": 1,
            "p_forecast": 0.5,
        },
        dataset=str(tiny_meg_dataset),
        example_seconds=0.32,
        overlap_seconds=0.0,
        batch_size=2,
        eval_split=None,
        output_dir=str(tmp_path / "full"),
        max_steps=4,
        learning_rate=1e-3,
        log_with="none",
        progress_bar=False,
        checkpoint_every=2,
    )
    full = train(*parse_run_config(config))
    assert sorted(full.losses) == [1, 2, 3, 4] and all(math.isfinite(v) for v in full.losses.values())
    config["output_dir"] = str(tmp_path / "split")
    train(*parse_run_config(config), stop_after_steps=2)
    resumed = train(*parse_run_config({**config, "resume_from": "latest"}))
    assert resumed.losses == full.losses  # the steps, noise and masks drawn after the resume are the same
    model = AutoModel.from_pretrained(resumed.final_model_dir)
    assert model.config.signal_length == 32 and model.config.sampling_rate == 100.0
    assert NTDScheduler.from_pretrained(resumed.final_model_dir).config == model.scheduler.config


# ------------------------------------------------------------------------------------------------ parity
def test_reference_kwargs_conversion_checks():
    kwargs = {**SMALL, "net_padding_mode": "circular", "net_use_fft_conv": False}  # what a reference YAML holds
    assert config_from_reference("NTD", kwargs).signal_length == L
    with pytest.raises(ValueError, match="net_use_fft_conv"):
        config_from_reference("NTD", {**kwargs, "net_use_fft_conv": True})
    model = build()
    state = {f"network.{k}": v for k, v in model.network.state_dict().items()}
    # A reference model saved before its first forward: the converter fixes the kernel norms as that forward would.
    norm_key = "network.blocks.0.conv.kernel_norm"
    expected_norm = state[norm_key].clone()
    state[norm_key] = torch.ones_like(expected_norm)
    state["network.blocks.0.conv.kernel_norm_initialized"] = torch.zeros((), dtype=torch.bool)
    converted = convert_reference_checkpoint("NTD", kwargs, state)
    torch.testing.assert_close(converted.get_buffer(norm_key), expected_norm)
    state["betas"] = model.scheduler.betas * 2
    with pytest.raises(ValueError, match="reference buffer betas"):
        convert_reference_checkpoint("NTD", kwargs, state)


def _forecast_call(case):
    """Context length, horizon and overlap of the recorded forecast (from its meta.json method string)."""
    entry = case.meta["tensors"]["outputs:forecast"]
    length = case.model_kwargs["signal_length"]
    bound = re.search(r"x\[\.\.\., :([^\]]+)\]", entry["method"]).group(1)
    halved = re.fullmatch(r"L\s*//\s*(\d+)", bound)
    context = length // int(halved.group(1)) if halved else int(bound)
    overlap = re.search(r"sliding_window_overlap=([0-9.]+)", entry["method"])
    return context, int(entry["args"]["horizon"]), float(overlap.group(1)) if overlap else None


@pytest.mark.parametrize("case", discover_cases({"NTD"}))
def test_parity_ntd(case, tmp_path):
    case = require_case(case)
    # brain-gen's in-painting update of the observed samples is kept for reproducing its forecasts.
    model = convert_reference_checkpoint(
        case.registry_name, case.model_kwargs, case.state_dict, known_part_update="reference"
    )
    model.save_pretrained(tmp_path)
    model = AutoModel.from_pretrained(tmp_path).eval()
    inputs, outputs = case.inputs, case.outputs
    x = inputs["x"]
    batch, channels, length = x.shape

    def seeded(key):
        return torch.Generator().manual_seed(case.call_seed(key))

    with torch.no_grad():
        pred, _ = model.network(inputs["network.noisy_in"], inputs["network.t"])
        assert_float_close(pred, outputs["network.pred_noise"], "network")
        out = model(x, generator=seeded("outputs:forward.noise"))
        assert torch.equal(out.timesteps, outputs["forward.captured_t"])
        assert_float_close(out.noise, outputs["forward.noise"], "forward.noise")
        assert_float_close(out.pred_noise, outputs["forward.pred_noise"], "forward.pred_noise")
        mask = outputs["forward.mask"]
        if model.config.mask_channel:
            assert torch.equal(out.forecast_mask, mask[:, 0])
            noisy_in = torch.cat([model.scheduler.add_noise(x, out.noise, out.timesteps), mask[:, :1]], dim=1)
        else:
            noisy_in = model.scheduler.add_noise(x, out.noise, out.timesteps)
        assert_float_close(noisy_in, outputs["forward.captured_network_input"], "network input")
        assert_float_close(out.loss, outputs["loss_NTDLoss"], "NTDLoss")
        elementwise = model.loss(outputs["forward.noise"], outputs["forward.pred_noise"], mask[:, 0], reduction="none")
        assert_float_close(elementwise, outputs["loss_elementwise"], "loss elementwise")
        residual = inputs["sqrt_mal.residual"]
        assert_float_close(model.scheduler.sqrt_mahalanobis(residual), outputs["sqrt_mal"], "sqrt_mal")
        ou = model.scheduler.sample_noise(tuple(outputs["ou_sample"].shape), generator=seeded("outputs:ou_sample"))
        assert_float_close(ou, outputs["ou_sample"], "OU sample")
        if model.config.mask_channel:
            context, horizon, overlap = _forecast_call(case)
            forecast = model.forecast(
                x[..., :context], horizon, generator=seeded("outputs:forecast"), sliding_window_overlap=overlap
            )
            assert_float_close(forecast.values, outputs["forecast"], "forecast")
        # The reference's unconditional sample feeds a random training mask to the denoiser; `sample()` feeds
        # "nothing observed". Its chain is rebuilt from the public pieces with the reference's mask draw.
        generator = seeded("outputs:sample")
        shape = tuple(outputs["sample"].shape)
        scheduler = model.scheduler
        scheduler.set_timesteps()
        state = scheduler.sample_noise(shape, generator=generator)
        drawn_mask = model.sample_forecast_mask(shape[0], generator) if model.config.mask_channel else None
        for t in scheduler.timesteps.tolist():
            step_noise = scheduler.sample_noise(shape, generator=generator)
            x_in = state if drawn_mask is None else torch.cat([state, drawn_mask[:, None]], dim=1)
            pred = model.network(x_in, torch.full((shape[0],), t))[0]
            state = scheduler.step(pred, t, state, variance_noise=step_noise).prev_sample
        assert_float_close(state, outputs["sample"], "sample (reference mask)")
        if drawn_mask is None or not drawn_mask.any():
            assert_float_close(model.sample(shape[0], generator=seeded("outputs:sample")), outputs["sample"], "sample")
