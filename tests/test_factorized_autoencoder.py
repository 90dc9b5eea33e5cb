"""The factorized autoencoder: the model contract, and its behaviour against hand-computed expectations (no
reference vectors exist for it): shapes, parameter count, the factorisation, causality and the loss values."""

import math

import numpy as np
import pytest
import torch

from brain_gen_hf.models.factorized_autoencoder.configuration_factorized_autoencoder import (
    FactorizedAutoencoderConfig,
)
from brain_gen_hf.models.factorized_autoencoder.modeling_factorized_autoencoder import FactorizedAutoencoderModel
from tests.model_contract import ModelContract

C, T = 4, 16
SMALL = dict(c_in=C, c_down=2, t_down=4, f_hidden=3, d_latent=5, k_stem=3, k_down=3, k_up=2, k_refine=3)


def small_config(**overrides) -> FactorizedAutoencoderConfig:
    return FactorizedAutoencoderConfig(**{**SMALL, **overrides})


def signal(batch: int = 2, channels: int = C, steps: int = T, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, channels, steps, generator=torch.Generator().manual_seed(seed))


def build(seed: int = 0, **overrides) -> FactorizedAutoencoderModel:
    torch.manual_seed(seed)
    return FactorizedAutoencoderModel(small_config(**overrides)).eval()


class TestFactorizedAutoencoderContract(ModelContract):
    output_key = "reconstruction"
    main_input = "input_values"
    causal = True  # causal convolutions and forward repetition: the reconstruction at t sees inputs up to t
    causal_input_key = None

    def make_config(self):
        return small_config()

    def make_inputs(self):
        return {"input_values": signal()}

    def bad_inputs(self):
        x = signal()
        return [
            ({"input_values": x[:, :3]}, "3 channels.*expects 4"),
            ({"input_values": x.long()}, "floating-point"),
            ({"input_values": x.masked_fill(x > 1.5, float("nan"))}, "NaN/inf"),
            ({"input_values": x[0]}, "3 dimensions"),
            ({"input_values": x, "labels": x[:1]}, "labels hold 1 windows"),
            ({"input_values": x, "target_length": 0}, "positive int"),
            ({"input_values": x, "target_length": 9}, "target_length is 9 but the target has 16"),
        ]


def test_default_config_sizes_and_shapes_are_the_specified_ones():
    """models.md 3.20: 0.53 M parameters; stages (2, 2), (2, 2); (2, 68, 100) -> latents (2, 17, 25, 128)."""
    torch.manual_seed(0)
    model = FactorizedAutoencoderModel(FactorizedAutoencoderConfig()).eval()
    # Counted by hand from the architecture (F = 32, D = 128, kernels 7/5/4/7, channels 68 -> 34 -> 17):
    stem = 2176 * 7 + 2 * 2176
    down = (2176 * 5 + 2176 * 32 + 4 * 2176) + (1088 * 5 + 1088 * 32 + 4 * 1088)
    reduce = 34 * 68 + 17 * 34
    to_latent = 2176 * 32 + 2 * 2176
    from_latent = 544 * 128 + 2 * 544
    up = (1088 * 4 + 1088 * 32 + 4 * 1088) + (2176 * 4 + 2176 * 32 + 4 * 2176)
    refine = 2176 * 7 + 2176 * 32 + 4 * 2176
    to_signal = 68 * 32 + 68
    expected = stem + down + reduce + to_latent + from_latent + reduce + up + refine + to_signal
    assert sum(p.numel() for p in model.parameters()) == expected == 530264
    assert model.config.encoder_stages == [(2, 68, 34), (2, 34, 17)]
    assert model.config.decoder_stages == [(2, 17, 34), (2, 34, 68)]
    with torch.no_grad():
        out = model(signal(2, 68, 100), output_hidden_states=True)
    assert out.latents.shape == (2, 17, 25, 128) and out.reconstruction.shape == (2, 68, 100)
    shapes = [tuple(h.shape) for h in out.hidden_states]
    assert shapes == [(2, 68, 100, 32), (2, 34, 50, 32), (2, 17, 25, 32), (2, 17, 25, 128)]


def test_stage_plans_follow_the_factor_rules():
    # 2s first, then the odd remainder; the shorter list padded with 1s.
    config = FactorizedAutoencoderConfig(c_in=12, c_down=4, t_down=12)
    assert config.encoder_stages == [(2, 12, 6), (2, 6, 3), (3, 3, 3)]
    assert config.decoder_stages == [(2, 3, 6), (2, 6, 12), (3, 12, 12)]
    assert config.latent_length(100) == math.ceil(math.ceil(math.ceil(100 / 2) / 2) / 3) == 9
    # Explicit factors; the decoder defaults to the reversed ones.
    config = FactorizedAutoencoderConfig(c_in=12, c_down=6, t_down=6, t_down_factors=[3, 2], c_down_factors=[2, 3])
    assert config.encoder_stages == [(3, 12, 6), (2, 6, 2)]
    assert config.decoder_stages == [(2, 2, 6), (3, 6, 12)]
    # Explicit channel counts: the decoder starts from the encoder's last one (the reference decoder started from
    # c_out // c_down = 3 here and failed on the 5-channel latents).
    config = FactorizedAutoencoderConfig(c_in=12, t_down=4, c_stages=[8, 5])
    assert config.encoder_stages == [(2, 12, 8), (2, 8, 5)] and config.latent_channels == 5
    assert config.decoder_stages == [(2, 5, 8), (2, 8, 12)]
    model = FactorizedAutoencoderModel(FactorizedAutoencoderConfig(**{**SMALL, "c_in": 12, "c_stages": [8, 5]}))
    with torch.no_grad():
        out = model(signal(1, 12, 16))
    assert out.latents.shape == (1, 5, 4, 5) and out.reconstruction.shape == (1, 12, 16)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"c_in": 6, "c_down": 4}, r"`c_in` \(6\) must be divisible by `c_down` \(4\)"),
        ({"t_down_factors": [2, 3]}, r"multiply to 6, not `t_down` = 4"),
        ({"c_stages": [3]}, "`c_stages` has 1 entries but there are 2 temporal factors"),
        ({"c_up_stages": [3, 5]}, "must end at `c_out` = 4"),
        ({"recon_loss": "ssim"}, "`recon_loss` must be one of"),
        ({"tie_channel_mats": True, "channel_mlp_ratio": 0.5}, "needs linear channel mixing"),
        ({"tie_channel_mats": True}, "mirror the encoder's"),  # 4 -> 2 -> 2 is decoded 2 -> 4 -> 4
        ({"channel_names": ["a", "b"]}, "lists 2 channels but `c_in` is 4"),
    ],
)
def test_bad_configs_name_the_problem(overrides, message):
    with pytest.raises(ValueError, match=message):
        small_config(**overrides)


def test_channels_meet_in_the_per_time_normalisation_too():
    """The reference normalises all C x F features of a time step together (its 'channel LayerNorm'), so a channel
    whose column of the channel matrix is zero still shifts the latents of that step, through the statistics; a
    change at step t reaches no earlier step (causal)."""
    model = build(t_down=2, c_down=2)
    with torch.no_grad():
        model.encoder.channel_reducers[0].weight[:, 2] = 0.0
    x = signal()
    moved = x.clone()
    moved[:, 2, 9] += 3.0
    with torch.no_grad():
        before, after = model.encode(x), model.encode(moved)
    # latent step j reads input steps up to 2 * j: steps 0..4 come before the change at step 9
    torch.testing.assert_close(after[:, :, :5], before[:, :, :5], rtol=0, atol=0)
    assert not torch.allclose(after[:, :, 5:], before[:, :, 5:])


def test_channel_matrix_is_a_plain_weighted_sum_over_channels():
    model = build(t_down=2, c_down=2)
    reducer = model.encoder.channel_reducers[0]
    h = torch.randn(2, 4, 3, 5)  # (B, C, F, T)
    with torch.no_grad():
        reducer.weight.copy_(torch.tensor([[1.0, 0.0, 2.0, 0.0], [0.0, -1.0, 0.0, 0.5]]))
        out = reducer(h)
    torch.testing.assert_close(out[:, 0], h[:, 0] + 2 * h[:, 2])
    torch.testing.assert_close(out[:, 1], -h[:, 1] + 0.5 * h[:, 3])


def test_tied_decoder_uses_the_transposed_encoder_matrices():
    untied, tied = build(c_down=4), build(c_down=4, tie_channel_mats=True)
    count = sum(p.numel() for p in untied.parameters()) - sum(p.numel() for p in tied.parameters())
    assert count == 2 * 4 + 1 * 2  # the decoder's own (4 x 2) and (2 x 1) expansion matrices are gone
    assert not any(name.startswith("decoder.channel_expanders") for name in tied.state_dict())
    # Changing an encoder matrix changes the decoding of fixed latents: the decoder reads it.
    latents = torch.randn(2, 1, 4, 5)
    before = tied.decode(latents)
    with torch.no_grad():
        tied.encoder.channel_reducers[0].weight.mul_(2.0)
    assert not torch.allclose(tied.decode(latents), before)


def test_lowpass_is_the_normalised_binomial_and_causal():
    model = build()
    lowpass = model.encoder.down_blocks[0].lowpass
    torch.testing.assert_close(lowpass.kernel[0, 0], torch.tensor([0.25, 0.5, 0.25]))
    step = torch.zeros(1, lowpass.channels, 4)
    step[..., 1] = 1.0
    torch.testing.assert_close(lowpass(step)[0, 0], torch.tensor([0.0, 0.25, 0.5, 0.25]))
    assert "kernel" not in " ".join(model.state_dict())  # a constant, rebuilt from the config


def test_odd_lengths_give_ceil_latents_and_the_target_length():
    model = build()
    x = signal(steps=13)
    with torch.no_grad():
        out = model(x)
    assert out.latents.shape == (2, 2, math.ceil(math.ceil(13 / 2) / 2), 5) and out.reconstruction.shape == x.shape
    torch.testing.assert_close(model.decode(out.latents, target_length=13), out.reconstruction, rtol=0, atol=0)
    assert model.decode(out.latents).shape[-1] == 16  # 4 latent steps x t_up
    assert model.decode(out.latents, target_length=20)[..., 16:].abs().sum() == 0  # zero-padded on the right
    torch.testing.assert_close(model.encode(x), out.latents, rtol=0, atol=0)


@pytest.mark.parametrize("mode", ["mse", "l1", "huber"])
def test_loss_values_on_hand_set_weights(mode):
    """A decoder whose last projection is zero outputs its bias b_c everywhere, so the loss is a hand formula of
    the signal and b."""
    model = build(recon_loss=mode, huber_delta=0.5)
    bias = np.array([0.5, -1.0, 2.0, 0.0])
    with torch.no_grad():
        model.decoder.to_signal.weight.zero_()
        model.decoder.to_signal.bias.copy_(torch.from_numpy(bias))
    x = signal()
    target = signal(seed=2)

    def expected(target: torch.Tensor) -> float:
        error = np.abs(bias[None, :, None] - target.numpy().astype(np.float64))
        if mode == "mse":
            return (error**2).mean()
        if mode == "l1":
            return error.mean()
        return np.where(error < 0.5, 0.5 * error**2, 0.5 * (error - 0.25)).mean()  # Huber, delta 0.5

    out = model(x, labels=target)
    assert out.loss.dtype == torch.float32 and out.recon_loss is out.loss
    assert float(out.loss.detach()) == pytest.approx(expected(target), rel=1e-5)
    torch.testing.assert_close(out.reconstruction, torch.from_numpy(bias).float()[None, :, None].expand(2, C, T))
    assert float(model(x).loss.detach()) == pytest.approx(
        expected(x), rel=1e-5
    )  # without labels the target is the input


def test_other_output_channels_need_labels():
    model = build(c_out=8, c_up_stages=[4, 8])
    assert model.config.decoder_stages == [(2, 2, 4), (2, 4, 8)]
    with pytest.raises(ValueError, match="reconstructs 8 channels from 4: pass `labels`"):
        model(signal())
    with torch.no_grad():
        assert model(signal(), labels=signal(channels=8)).reconstruction.shape == (2, 8, T)


def test_trains_through_the_shared_trainer(tiny_meg_dataset, tmp_path):
    from transformers import AutoModel

    import brain_gen_hf  # noqa: F401
    from brain_gen_hf.training.arguments import parse_run_config
    from brain_gen_hf.training.trainer import train

    config = dict(
        task="factorized_autoencoder",
        model_config={"c_down": 2, "t_down": 2, "f_hidden": 2, "d_latent": 4},
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
    )
    result = train(*parse_run_config(config))
    assert result.step == 2 and all(np.isfinite(list(result.losses.values()))) and result.eval_losses
    model = AutoModel.from_pretrained(result.final_model_dir)
    assert model.config.c_in == 102 == model.config.contract_num_channels and model.config.sampling_rate == 100.0
