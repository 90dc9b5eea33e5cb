"""transformers' `ModelTesterMixin` and `ConfigTester` on Vidtok (`vidtok`) and VidtokRVQ (`vidtok_rvq`), plus the
repo's conformance checks (precision, gradient checkpointing, meta-device init).

What the common tests' names mean here (see `VidtokOutput`): hidden states are the encoder's stage outputs,
time-major with the width last, `(B, H_i, W_i, T_i, width_i)`; the attention maps are the per-frame spatial attention
of the encoder's and decoder's middle blocks, `(B * T', 1, H'W', H'W')`. The testers leave the temporal loss terms
off: they draw random pixels at every forward, and the common tests compare forwards without reseeding
(tests/test_vidtok.py covers those terms, seeded).
"""

from __future__ import annotations

import copy
import unittest

import torch
from parameterized import parameterized
from transformers import AutoConfig
from transformers.modeling_layers import GradientCheckpointingLayer

from brain_gen_hf.models.vidtok.configuration_vidtok import VidtokConfig, VidtokRVQConfig
from brain_gen_hf.models.vidtok.modeling_vidtok import VidtokModel, VidtokRVQModel
from tests.hf_common_checks import BrainGenConformanceChecks, _enable_checkpointing
from tests.transformers_common import load_common_tests

ModelTesterMixin, ConfigTester, common = load_common_tests()

CONTINUOUS_INPUT = (
    "reads continuous images: no input token table to get, set or resize (get_input_embeddings() is None)"
)
STRICT_LOADING = "strict loading: a checkpoint without the model's weights raises OSError (by design)"
COMMON_PROPERTIES = ["ch", "z_channels", "num_res_blocks"]
AUTOENCODER = dict(ch=8, ch_mult=[1, 2], num_res_blocks=1, z_channels=2, tempo_ds=[0], tempo_us=[1])


class VidtokModelTester:
    batch_size = 2
    seq_length = 4  # frames
    image_size = 4
    hidden_size = 8  # ch: the width of the first hidden state
    encoder_seq_length = 4  # frames of the first hidden state (the first convolution keeps every frame)
    num_hidden_layers = 1  # num_res_blocks
    expected_num_hidden_layers = 5  # first convolution, 2 levels, middle block, latent
    num_attention_heads = 1
    is_training = True
    main_output = "reconstruction"

    def __init__(self, parent):
        self.parent = parent

    def get_config(self) -> VidtokConfig:
        return VidtokConfig(
            **AUTOENCODER,
            time_downsample_factor=2,
            levels=[4, 4],
            commitment_loss_weight=0.25,
            entropy_loss_weight=0.1,
            aux_loss_weight=0.5,
        )

    def prepare_config_and_inputs_for_common(self):
        size = (self.batch_size, 1, self.seq_length, self.image_size, self.image_size)
        return self.get_config(), {"input_values": torch.randn(*size, generator=torch.Generator().manual_seed(1))}

    def labels(self, inputs: dict) -> torch.Tensor:
        return inputs["input_values"]


class VidtokRVQModelTester(VidtokModelTester):
    def get_config(self) -> VidtokRVQConfig:
        return VidtokRVQConfig(
            **AUTOENCODER,
            time_downsample_factor=2,
            codebook_size=8,
            codebook_dim=2,
            num_quantizers=2,
            aux_loss_weight=1.0,
        )


class _VidtokCommon(BrainGenConformanceChecks, ModelTesterMixin):
    test_resize_embeddings = False  # CONTINUOUS_INPUT

    def test_config(self):
        self.config_tester.run_common_tests()

    def test_auto_config_for_model(self):
        config_class = self.config_tester.config_class
        self.assertIsInstance(AutoConfig.for_model(config_class.model_type), config_class)

    @unittest.skip(reason=CONTINUOUS_INPUT)
    def test_model_get_set_embeddings(self):
        pass

    @unittest.skip(reason=STRICT_LOADING)
    def test_model_weights_reload_no_missing_tied_weights(self):
        pass

    @unittest.skip(reason=STRICT_LOADING + "; test_meta_device_model_is_usable_after_init_weights checks the init")
    def test_can_init_all_missing_weights(self):
        pass

    def test_attention_outputs(self):
        # One map per middle block: the encoder's and the decoder's, over the latent frame's H'W' positions.
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        batch, steps, size = inputs["input_values"].shape[0], self.model_tester.seq_length // 2, 2
        expected = [(batch * steps, 1, size * size, size * size)] * 2
        for model_class in self.all_model_classes:
            for implementation in ("eager", "sdpa"):
                torch.manual_seed(0)
                model = model_class._from_config(copy.deepcopy(config), attn_implementation=implementation).eval()
                with torch.no_grad():
                    out = model(**inputs, output_attentions=True)
                    plain = model(**inputs)
                self.assertEqual([tuple(a.shape) for a in out.attentions], expected)
                for weights in out.attentions:
                    torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]))
                self.assertIsNone(plain.attentions)
                torch.testing.assert_close(out.reconstruction, plain.reconstruction)


class VidtokCommonTest(_VidtokCommon, unittest.TestCase):
    all_model_classes = (VidtokModel,)

    def setUp(self):
        self.model_tester = VidtokModelTester(self)
        self.config_tester = ConfigTester(
            self, config_class=VidtokConfig, has_text_modality=False, common_properties=COMMON_PROPERTIES, levels=[4, 4]
        )


class VidtokRVQCommonTest(_VidtokCommon, unittest.TestCase):
    all_model_classes = (VidtokRVQModel,)

    @unittest.skip(
        reason="28 reloads (~15 s on 2 cores) of the loading path VidtokCommonTest.test_bc_torch_dtype already runs: "
        "both classes save and load through the same VidtokPreTrainedModel code"
    )
    def test_bc_torch_dtype(self):
        pass

    @parameterized.expand(common.TEST_EAGER_MATCHES_SDPA_INFERENCE_PARAMETERIZATION)
    def test_eager_matches_sdpa_inference(self, *args):
        self.skipTest(
            "the attention is VidtokCommonTest's (the same `FrameAttention` in the shared autoencoder), whose 24 "
            "eager-vs-SDPA cases run there"
        )

    def test_gradient_checkpointing_gives_identical_loss_and_grads(self):
        # The shared check runs one model twice, but a training forward moves the RVQ codebooks (k-means on the first
        # call, then EMA updates): here two copies with the same codebooks, one of them checkpointed.
        model, inputs = self._model_and_inputs(VidtokRVQModel)
        model.init_codebooks(inputs["input_values"], seed=0)
        for use_reentrant in (False, True):
            with self.subTest(use_reentrant=use_reentrant):
                plain, checkpointed = copy.deepcopy(model).train(), copy.deepcopy(model).train()
                _enable_checkpointing(checkpointed, {"use_reentrant": use_reentrant})
                layers = [m for m in checkpointed.modules() if isinstance(m, GradientCheckpointingLayer)]
                self.assertTrue(layers and all(layer.gradient_checkpointing for layer in layers))
                probe = next(m for m in layers[0].modules() if m is not layers[0] and not list(m.children()))
                runs = []
                probe.register_forward_hook(lambda *_, sink=runs: sink.append(1))
                results = []
                for candidate in (plain, checkpointed):
                    torch.manual_seed(1)
                    loss = candidate(**inputs).loss
                    loss.backward()
                    grads = {n: p.grad for n, p in candidate.named_parameters() if p.grad is not None}
                    results.append((loss.detach(), grads))
                self.assertEqual(len(runs), 2)  # the checkpointed block ran again in the backward pass
                (loss, grads), (loss_ckpt, grads_ckpt) = results
                torch.testing.assert_close(loss_ckpt, loss, rtol=0, atol=0)
                self.assertEqual(grads_ckpt.keys(), grads.keys())
                for name, grad in grads.items():
                    torch.testing.assert_close(grads_ckpt[name], grad, msg=name)

    def setUp(self):
        self.model_tester = VidtokRVQModelTester(self)
        self.config_tester = ConfigTester(
            self, config_class=VidtokRVQConfig, has_text_modality=False, common_properties=COMMON_PROPERTIES
        )
