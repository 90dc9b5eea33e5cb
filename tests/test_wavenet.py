"""WaveNet family: model contract, the fixed (chained) wiring, and parity with brain-gen vectors."""

import pytest
import torch

from brain_gen_hf.conversion import convert_reference_checkpoint
from brain_gen_hf.models.wavenet.configuration_wavenet import Wavenet3DConfig, WavenetFullChannelConfig
from tests.model_contract import ModelContract
from tests.refvec import assert_float_close, discover_cases, require_case

Q = 32


class TestWavenetFullChannelContract(ModelContract):
    causal = True
    causal_output_time_dim = 2  # logits (B, C, T, Q)
    causal_input_time_dim = -1  # embeddings (B*C, E, T)

    def make_config(self):
        return WavenetFullChannelConfig(in_channels=3, quant_levels=Q, quant_emb=8, residual_channels=16,
                                        dilation_channels=16, skip_channels=16, head_channels=16, dilations=[1, 2, 4])

    def make_inputs(self):
        g = torch.Generator().manual_seed(1)
        x = torch.randint(0, Q, (2, 3, 24), generator=g)
        return {"input_ids": x, "labels": torch.roll(x, -1, dims=-1)}

    def bad_inputs(self):
        x = self.make_inputs()["input_ids"]
        return [
            ({"input_ids": x[:, :2]}, "2 channels"),
            ({"input_ids": x.float()}, "integer token ids"),
            ({"input_ids": x + Q}, "outside the vocabulary"),
            ({"input_ids": x[0]}, "3 dimensions"),
            ({"input_ids": x[:, :, :0]}, "empty"),
            ({"input_ids": x, "labels": x[:, :, :5]}, "labels must have shape"),
        ]


class TestWavenet3DContract(ModelContract):
    causal = True
    causal_output_time_dim = 3  # logits (B, H, W, T, Q)
    causal_input_time_dim = -1  # embeddings (B, E, H, W, T)

    def make_config(self):
        return Wavenet3DConfig(quant_levels=Q, quant_emb=8, dilations=[1, 2], spatial_kernel_size=3,
                               image_size=[5, 6])

    def make_inputs(self):
        g = torch.Generator().manual_seed(1)
        x = torch.randint(0, Q, (2, 5, 6, 12), generator=g)
        return {"input_ids": x, "labels": torch.roll(x, -1, dims=-1)}

    def bad_inputs(self):
        x = self.make_inputs()["input_ids"]
        return [
            ({"input_ids": x[:, :4]}, "token image must be 5x6"),
            ({"input_ids": x.float()}, "integer token ids"),
            ({"input_ids": -x - 1}, "outside the vocabulary"),
            ({"input_ids": x[..., 0]}, "4 dimensions"),
        ]


def test_chained_layers_see_the_full_receptive_field():
    """The reference's unchained wiring sees only single dilated taps; ours sees every past sample."""
    torch.manual_seed(0)
    config = WavenetFullChannelConfig(in_channels=1, quant_levels=Q, dilations=[1, 2, 4], kernel_size=2)
    rf = config.receptive_field
    assert rf == 8
    for parallel, expected in ((False, set(range(15 - rf + 1, 16))), (True, {11, 13, 14, 15})):
        config.parallel_layers = parallel
        from transformers import AutoModel

        model = AutoModel.from_config(config).eval()
        out = model(torch.randint(0, Q, (1, 1, 16)))
        emb = out.embeddings
        emb.retain_grad()
        out.logits[0, 0, 15].sum().backward()
        seen = set(torch.nonzero(emb.grad[0].abs().sum(0)).flatten().tolist())
        assert seen == expected, (parallel, seen)


def test_config_validation_errors():
    with pytest.raises(ValueError, match="in_channels"):
        WavenetFullChannelConfig(in_channels=0)
    with pytest.raises(ValueError, match="parallel_layers"):
        WavenetFullChannelConfig(quant_emb=8, residual_channels=16, parallel_layers=True)
    with pytest.raises(ValueError, match="num_classes"):
        WavenetFullChannelConfig(num_classes=3)
    with pytest.raises(ValueError, match="3 channels but `in_channels` is 2"):
        WavenetFullChannelConfig(in_channels=2, channel_names=["a", "b", "c"])
    with pytest.raises(ValueError, match="odd"):
        Wavenet3DConfig(spatial_kernel_size=2)


@pytest.mark.parametrize("case", discover_cases({"WavenetFullChannel", "Wavenet3D"}))
def test_parity_wavenet(case):
    case = require_case(case)
    model = convert_reference_checkpoint(case.registry_name, case.model_kwargs, case.state_dict)
    x, targets = case.inputs["x"], case.inputs["targets"]
    with torch.no_grad():
        out = model(input_ids=x, labels=targets)
    assert_float_close(out.logits, case.outputs["logits"], "logits")
    embedded = out.embeddings
    if embedded.shape != case.outputs["embedded_input"].shape:  # (B*C, E, T) vs (B, E, H, W, T) layouts agree
        embedded = embedded.reshape(case.outputs["embedded_input"].shape)
    assert_float_close(embedded, case.outputs["embedded_input"], "embedded_input")
    assert_float_close(out.loss, case.outputs["loss_CrossEntropy"], "loss_CrossEntropy")


@pytest.mark.parametrize("parallel", [False, True])
def test_full_channel_hidden_states_are_the_residual_stream(parallel):
    """`output_hidden_states=True` returns each layer's residual output `(B, C, T, R)`; logits are unchanged."""
    from transformers import AutoModel

    torch.manual_seed(0)
    config = WavenetFullChannelConfig(in_channels=3, quant_levels=Q, quant_emb=16, residual_channels=16,
                                      dilations=[1, 2], parallel_layers=parallel)
    model = AutoModel.from_config(config).eval()
    x = torch.randint(0, Q, (2, 3, 10))
    with torch.no_grad():
        plain = model(x)
        out = model(x, output_hidden_states=True)
    assert plain.hidden_states is None
    torch.testing.assert_close(out.logits, plain.logits, rtol=0, atol=0)
    assert len(out.hidden_states) == 1 + len(config.dilations)
    assert all(h.shape == (2, 3, 10, 16) for h in out.hidden_states)
    # Each entry is what its layer produced from the previous one (or from the embeddings when unchained).
    to_layer_layout = lambda h: h.permute(0, 1, 3, 2).reshape(6, 16, 10)  # noqa: E731
    with torch.no_grad():
        last_input = out.embeddings if parallel else to_layer_layout(out.hidden_states[-2])
        expected, _ = model.layers[-1](last_input)
    torch.testing.assert_close(to_layer_layout(out.hidden_states[-1]), expected, rtol=0, atol=0)


def test_wavenet3d_hidden_states_shape():
    from transformers import AutoModel

    torch.manual_seed(0)
    model = AutoModel.from_config(Wavenet3DConfig(quant_levels=Q, quant_emb=8, residual_channels=12,
                                                  dilations=[1])).eval()
    with torch.no_grad():
        out = model(torch.randint(0, Q, (1, 4, 5, 6)), output_hidden_states=True)
    assert [h.shape for h in out.hidden_states] == [(1, 4, 5, 6, 12)] * 2
