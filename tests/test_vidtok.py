"""Vidtok / VidtokRVQ: model contract, parity with brain-gen vectors, conversion, FSQ annealing, causality."""

import pytest
import torch
from transformers import AutoModel

from brain_gen_hf.conversion import convert_reference_checkpoint
from brain_gen_hf.models.vidtok.configuration_vidtok import VidtokConfig, VidtokRVQConfig
from brain_gen_hf.models.vidtok.convert_vidtok import config_from_reference, loss_fields_from_reference
from tests.model_contract import ModelContract
from tests.refvec import assert_float_close, discover_cases, require_case

CASES = discover_cases({"Vidtok", "VidtokRVQ"})
RVQ_CASES = discover_cases({"VidtokRVQ"})
FSQ_CASES = discover_cases({"Vidtok"})

AUTOENCODER = dict(ch=8, ch_mult=[1, 2], num_res_blocks=1, z_channels=2, tempo_ds=[0], tempo_us=[1])
AUTOENCODER.update(time_downsample_factor=2)


def fsq_config(**overrides) -> VidtokConfig:
    kwargs = dict(AUTOENCODER, levels=[4, 4], commitment_loss_weight=0.25, aux_loss_weight=0.5)
    kwargs.update(temporal_pcc_weight=1.0, temporal_freq_amp_weight=1.0, temporal_freq_phase_weight=0.5)
    return VidtokConfig(**{**kwargs, **overrides})


def rvq_config(**overrides) -> VidtokRVQConfig:
    kwargs = dict(AUTOENCODER, codebook_size=8, codebook_dim=2, num_quantizers=2, aux_loss_weight=1.0)
    kwargs.update(temporal_pcc_weight=1.0, temporal_cov_weight=0.5)
    return VidtokRVQConfig(**{**kwargs, **overrides})


def video(batch=2, steps=8, size=8, seed=1) -> torch.Tensor:
    return torch.randn(batch, 1, steps, size, size, generator=torch.Generator().manual_seed(seed))


def build(config):
    torch.manual_seed(0)
    return AutoModel.from_config(config).eval()


class _VidtokContract(ModelContract):
    output_key = "reconstruction"
    main_input = "input_values"

    def make_inputs(self):
        return {"input_values": video()}

    def bad_inputs(self):
        x = video()
        return [
            ({"input_values": x[:, 0]}, "5 dimensions"),
            ({"input_values": x.expand(-1, 2, -1, -1, -1)}, "the model expects 1"),
            ({"input_values": x[..., :7, :7]}, "multiples of 2"),
            ({"input_values": x.masked_fill(x > 1, float("nan"))}, "NaN/inf"),
            ({"input_values": x.int()}, "floating-point"),
            ({"input_values": x, "global_step": -1}, "global_step must be an int"),
        ]


class TestVidtokContract(_VidtokContract):
    def make_config(self):
        return fsq_config(entropy_loss_weight=0.1, entropy_loss_annealing_steps=4, entropy_loss_annealing_factor=3.0)


class TestVidtokRVQContract(_VidtokContract):
    def build(self, seed: int = 0):
        model = super().build(seed)  # codebooks initialised explicitly (seeded): saved folders do not depend on RNG
        model.init_codebooks(video(), seed=seed)
        return model

    def make_config(self):
        return rvq_config()


# ------------------------------------------------------------------ parity
def converted(case, **loss_kwargs):
    return convert_reference_checkpoint(
        case.registry_name,
        case.model_kwargs,
        case.state_dict,
        **loss_fields_from_reference(loss_kwargs),
    )


def _global_step(case) -> int:
    return int(case.meta["tensors"]["outputs:forward.recon"]["args"]["global_step"])


@pytest.mark.parametrize("case", CASES)
def test_parity_eval(case):
    case = require_case(case)
    model, out, x = converted(case), case.outputs, case.inputs["x"]
    step = _global_step(case)
    with torch.no_grad():
        forward = model(x, global_step=step)
        encoding = model.encode(x, global_step=step)
        assert_float_close(forward.reconstruction, out["forward.recon"], "forward.recon")
        assert torch.equal(forward.codes, out["forward.indices"].long()), "forward.indices"
        assert_float_close(forward.aux_loss, out["forward.aux_loss"], "forward.aux_loss")
        assert_float_close(model.encoder(x), out["encoder.pre_quant"], "encoder.pre_quant")
        assert_float_close(encoding.latents, out["encode.z"], "encode.z")
        assert torch.equal(encoding.codes, forward.codes)
        assert_float_close(model.decode_latents(out["encode.z"]), out["decode.from_latent"], "decode.from_latent")
        codes = out["forward.indices"].long()
        assert_float_close(model.codes_to_latents(codes), out["indices_to_latent"], "indices_to_latent")
        assert_float_close(model.decode(codes), out["decode.from_indices"], "decode.from_indices")


@pytest.mark.parametrize("case", CASES)
def test_parity_losses(case):
    """Every recorded VidtokLoss configuration, with its recorded seed for the random pixels (the RNG's only use in
    an eval forward, so the draw is the reference's). The loss was computed on `model(x)` at the forward record's
    global step."""
    case = require_case(case)
    x, step = case.inputs["x"], _global_step(case)
    names = case.config["losses"]
    assert names
    for name, kwargs in names.items():
        key = f"loss_VidtokLoss.{name}"
        model = converted(case, **kwargs)
        torch.manual_seed(case.call_seed(f"outputs:{key}"))
        with torch.no_grad():
            loss = model(x, global_step=step).loss
        assert_float_close(loss, case.outputs[key], key)


@pytest.mark.parametrize("case", FSQ_CASES)
def test_parity_fsq_tables(case):
    """The reference's FSQ buffers (non-persistent there; computed from `levels` here) have the same values."""
    case = require_case(case)
    fsq, out = converted(case).regularization, case.outputs
    prefix = "nonpersistent_buffer.regularization."
    torch.testing.assert_close(fsq._levels("cpu"), out[prefix + "_levels"], rtol=0, atol=0)
    torch.testing.assert_close(fsq._basis("cpu"), out[prefix + "_basis"], rtol=0, atol=0)
    values, mask = fsq._level_values("cpu")
    torch.testing.assert_close(values, out[prefix + "_level_values"], rtol=0, atol=0)
    torch.testing.assert_close(mask, out[prefix + "_level_mask"], rtol=0, atol=0)
    implicit = fsq.indices_to_codes(torch.arange(fsq.codebook_size))
    torch.testing.assert_close(implicit, out[prefix + "implicit_codebook"], rtol=0, atol=0)


@pytest.mark.parametrize("case", RVQ_CASES)
def test_parity_rvq_train_step(case):
    """One seeded training-mode forward: the reconstruction and the EMA-updated codebook buffers (dead codes are
    replaced by rows drawn from the seeded RNG before anything else draws from it)."""
    case = require_case(case)
    model, out = converted(case), case.outputs
    model.train()
    torch.manual_seed(case.call_seed("outputs:train_step.output0"))
    with torch.no_grad():
        recon = model(case.inputs["x"]).reconstruction
    assert_float_close(recon, out["train_step.output0"], "train_step.output0")
    recorded = {k[len("train_step.buffer.") :]: v for k, v in out.items() if k.startswith("train_step.buffer.")}
    assert recorded
    state = model.state_dict()
    for key, value in recorded.items():
        assert_float_close(state[key], value, key)
    assert any(not torch.equal(state[k], case.state_dict[k]) for k in recorded), "the train step must move codebooks"


@pytest.mark.parametrize("explicit", [True, False], ids=["init_codebooks", "first_forward"])
@pytest.mark.parametrize("case", RVQ_CASES)
def test_parity_rvq_kmeans_init(case, explicit):
    case = require_case(case)
    model = converted(case)
    for layer in model.regularization.rvq.layers:
        for buffer in (layer._codebook.embed, layer._codebook.embed_avg, layer._codebook.cluster_size):
            buffer.zero_()
        layer._codebook.inited.zero_()
    x, seed = case.inputs["codebook_init.x"], case.procedure_seed("k-means init")
    if explicit:
        model.init_codebooks(x, seed=seed)
    else:
        torch.manual_seed(seed)
        with torch.no_grad():
            model(x)
    state = model.state_dict()
    keys = [k for k in case.state_dict if "._codebook." in k]
    assert keys
    for key in keys:
        assert_float_close(state[key], case.state_dict[key], f"k-means {key}")


# ------------------------------------------------------------------ behaviour
@pytest.mark.parametrize("make_config", [fsq_config, rvq_config], ids=["fsq", "rvq"])
def test_causal_gradient(make_config):
    """The reference's test: the loss on the first 4 reconstructed frames gets no gradient from input frames >= 4
    (Vidtok in eval mode, VidtokRVQ in train mode)."""
    model = build(make_config())
    x = video(batch=1).requires_grad_(True)
    if isinstance(model.config, VidtokRVQConfig):
        model.init_codebooks(x.detach(), seed=0)
        model.train()
    model(x).reconstruction[:, :, :4].sum().backward()
    assert x.grad[:, :, 4:].abs().max() == 0
    assert x.grad[:, :, :4].abs().sum() > 0


def test_entropy_annealing_follows_the_training_step():
    """aux = entropy * w(step // 2) with w falling linearly from factor * w0 to w0 (no commitment term here)."""
    model = build(fsq_config(commitment_loss_weight=0.0, entropy_loss_weight=0.1, entropy_loss_annealing_steps=200))
    model.config.entropy_loss_annealing_factor = 3.0
    model.regularization.entropy_loss_annealing_factor = 3.0
    x = video()
    with torch.no_grad():
        at = {step: model.encode(x, global_step=step).aux_loss for step in (0, 20, 400, 1000)}
        model.set_training_step(20)
        from_trainer = model(x).aux_loss
    torch.testing.assert_close(at[20] / at[0], torch.tensor(0.29 / 0.3))  # n = 10: 0.3 - 10/200 * 0.2
    torch.testing.assert_close(at[400] / at[0], torch.tensor(0.1 / 0.3))  # annealing over
    torch.testing.assert_close(at[1000], at[400])
    torch.testing.assert_close(from_trainer, at[20], rtol=0, atol=0)
    with pytest.raises(ValueError, match="training step"):
        model.set_training_step(-1)


def test_logvar_is_a_saved_parameter(tmp_path):
    model = build(fsq_config(logvar_init=0.5))
    assert "reconstruction_loss.logvar" in dict(model.named_parameters())
    assert model.reconstruction_loss.logvar.item() == 0.5
    with torch.no_grad():
        model.reconstruction_loss.logvar.fill_(-1.25)
    model.save_pretrained(tmp_path)
    assert AutoModel.from_pretrained(tmp_path).reconstruction_loss.logvar.item() == -1.25


def test_codes_round_trip_and_decode():
    model = build(fsq_config())
    x = video()
    with torch.no_grad():
        enc = model.encode(x)
        assert enc.codes.shape == (2, 4, 4, 4) and enc.codes.dtype == torch.int64
        torch.testing.assert_close(model.codes_to_latents(enc.codes), enc.latents, rtol=0, atol=0)
        assert model.decode(enc.codes).shape == x.shape
    with pytest.raises(ValueError, match="outside the vocabulary"):
        model.decode(enc.codes + 16)
    with pytest.raises(ValueError, match="4 dimensions"):
        model.decode(enc.codes[0])


def test_rvq_codebooks_update_only_in_training():
    model = build(rvq_config())
    x = video()
    model.init_codebooks(x, seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items() if "_codebook" in k}
    with torch.no_grad():
        model(x)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())
    model.train()
    with torch.no_grad():
        model(x)
    assert any(not torch.equal(model.state_dict()[k], v) for k, v in before.items())


def test_explicit_codebook_init_is_required_when_configured():
    model = build(rvq_config(codebook_init="explicit"))
    with pytest.raises(ValueError, match="init_codebooks"):
        model(video())
    model.init_codebooks(video(), seed=0)
    assert torch.isfinite(model(video()).loss)


def test_config_and_conversion_errors():
    with pytest.raises(ValueError, match="double_z"):
        fsq_config(double_z=True)
    with pytest.raises(ValueError, match="subset of `spatial_ds`"):
        fsq_config(tempo_ds=[1])
    with pytest.raises(ValueError, match="multiple of 4"):
        fsq_config(ch=6)
    with pytest.raises(ValueError, match="2 levels"):
        fsq_config(levels=[1, 4])
    encoder = {k: v for k, v in AUTOENCODER.items()}
    with pytest.raises(ValueError, match="must equal the encoder's `z_channels`"):
        config_from_reference("Vidtok", {"encoder": encoder, "regularizer": {"levels": [4, 4], "dim": 3}})
    with pytest.raises(ValueError, match="give_pre_end"):
        config_from_reference("Vidtok", {"encoder": {**encoder, "give_pre_end": True}, "regularizer": {}})
    with pytest.raises(ValueError, match="regularisers do not report"):
        loss_fields_from_reference({"regularization_weights": {"entropy": 1.0}})
    with pytest.raises(ValueError, match="unknown VidtokLoss"):
        loss_fields_from_reference({"temporal_weight": 1.0})
    assert loss_fields_from_reference({"learn_logvar": True, "regularization_weights": {"aux_loss": 0.5, "kl_loss": 1}})
    assert loss_fields_from_reference({"regularization_weights": {"aux_loss": 0.5, "kl_loss": 1e-6}}) == {
        "aux_loss_weight": 0.5
    }


# ------------------------------------------------------------------ training
def test_trains_through_the_trainer_and_resumes_exactly(tiny_meg_dataset, tmp_path):
    """Sensor-image videos from the simulated helmet, FSQ entropy annealing driven by the trainer's step: a run
    stopped and resumed reproduces the uninterrupted run's losses exactly (annealed weights included)."""
    from brain_gen_hf.training.arguments import parse_run_config
    from brain_gen_hf.training.trainer import train

    model_config = dict(AUTOENCODER, levels=[4, 4], image_size=8, entropy_loss_weight=0.1, aux_loss_weight=1.0)
    model_config.update(entropy_loss_annealing_steps=2, entropy_loss_annealing_factor=3.0, temporal_pcc_weight=1.0)
    config = dict(
        task="vidtok",
        model_config=model_config,
        dataset=str(tiny_meg_dataset),
        example_seconds=0.16,
        overlap_seconds=0.0,
        batch_size=2,
        eval_split="validation",
        eval_every=3,
        max_eval_batches=1,
        output_dir=str(tmp_path / "full"),
        max_steps=3,
        learning_rate=1e-3,
        log_with="none",
        progress_bar=False,
        checkpoint_every=2,
    )
    full = train(*parse_run_config(config))
    assert sorted(full.losses) == [1, 2, 3] and len(set(full.losses.values())) > 1
    split = {**config, "output_dir": str(tmp_path / "split")}
    train(*parse_run_config(split), stop_after_steps=2)
    resumed = train(*parse_run_config({**split, "resume_from": "latest"}))
    assert resumed.losses == full.losses  # step 3 (announced step 2) is the first with a lower entropy weight
    assert resumed.eval_losses == full.eval_losses
    model = AutoModel.from_pretrained(resumed.final_model_dir)
    assert model.config.image_size == 8 and model.config.sampling_rate == 100.0
