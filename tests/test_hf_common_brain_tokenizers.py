"""transformers' common model and config tests on the brain tokenizers (BrainOmni, BrainTokMix) and the BrainOmni
forecaster, plus the conformance checks those tests do not reach: meta-device construction + `init_weights()`,
half precision (bf16/fp16 forward, a bf16 training step) and gradient checkpointing (same loss and gradients).

What the common tests' names mean for these models (see `CausalRVQTokenizerModel`'s docstring): hidden states are the
tokenizer encoder's stage outputs, time-major (`(B, [C,] W_stage, width)`), ending with the latent tokens the RVQ
quantises; the forecaster's are its transformer's (`(B, C', W-1, lm_dim)`). The tester attributes below give the
common tests those shapes.
"""

from __future__ import annotations

import copy
import tempfile
import unittest
from pathlib import Path
from unittest import mock

import torch
from parameterized import parameterized
from safetensors.torch import load_file, save_file

from brain_gen_hf.layers.quantizers import EuclideanCodebook
from brain_gen_hf.models.brainomni.configuration_brainomni import BrainOmniCausalTokenizerConfig
from brain_gen_hf.models.brainomni.modeling_brainomni import BrainOmniCausalTokenizerModel
from brain_gen_hf.models.brainomni_forecast.configuration_brainomni_forecast import BrainOmniCausalForecastConfig
from brain_gen_hf.models.brainomni_forecast.modeling_brainomni_forecast import BrainOmniCausalForecastModel
from brain_gen_hf.models.braintokmix.configuration_braintokmix import BrainTokMixConfig
from brain_gen_hf.models.braintokmix.modeling_braintokmix import BrainTokMixModel
from brain_gen_hf.models.causal_tokenizer.seanet import SEANetResnetBlock
from tests.transformers_common import load_common_tests

ModelTesterMixin, ConfigTester, common = load_common_tests()

# Channel names give the configs a signal contract, so a call with the signal alone (as some common tests make)
# finds its channel count there.
CHANNELS = ["c0", "c1", "c2"]
TOKENIZER_FIELDS = ["n_dim", "n_neuro", "num_quantizers", "codebook_size"]


def _signal(batch: int, channels: int, length: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, channels, length, generator=torch.Generator().manual_seed(seed))


class BrainOmniTokenizerTester:
    batch_size = 2
    num_channels = 3
    seq_length = 16  # input samples: two windows of 8
    is_training = True
    num_hidden_layers = 2  # SEANet downsampling stages (len(ratios)); also the two cross-attention maps
    # hidden states: the first convolution, 2 downsampling stages, the per-sensor features, the latent tokens
    expected_num_hidden_layers = 5
    encoder_seq_length = 16  # time steps of the first hidden state (the first convolution keeps every sample)
    hidden_size = 2  # its width: n_filters
    num_attention_heads = 2

    def __init__(self, parent):
        self.parent = parent

    def get_config(self) -> BrainOmniCausalTokenizerConfig:
        return BrainOmniCausalTokenizerConfig(
            window_length=8,
            n_filters=self.hidden_size,
            ratios=[2, 2],
            n_dim=8,
            n_neuro=2,
            n_head=self.num_attention_heads,
            codebook_dim=8,
            codebook_size=16,
            num_quantizers=2,
            num_sensors=8,
            lstm_layers=1,
            channel_names=CHANNELS,
        )

    def prepare_config_and_inputs_for_common(self):
        inputs = {
            "input_values": _signal(self.batch_size, self.num_channels, self.seq_length),
            "pos": _signal(self.batch_size, self.num_channels, 2, seed=2),
            "sensor_type": torch.zeros(self.batch_size, self.num_channels, dtype=torch.long),
        }
        return self.get_config(), inputs


class BrainTokMixTester(BrainOmniTokenizerTester):
    num_channels = 4
    # hidden states: the first convolution, 2 downsampling stages, the latent tokens (the SEANet's output split)
    expected_num_hidden_layers = 4

    def get_config(self) -> BrainTokMixConfig:
        return BrainTokMixConfig(
            window_length=8,
            n_filters=self.hidden_size,
            ratios=[2, 2],
            n_dim=8,
            n_neuro=2,
            codebook_dim=4,
            codebook_size=16,
            num_quantizers=2,
            num_sensors=self.num_channels,
            n_residual_layers=2,
        )

    def prepare_config_and_inputs_for_common(self):
        return self.get_config(), {"input_values": _signal(self.batch_size, self.num_channels, self.seq_length)}


class BrainOmniForecastTester(BrainOmniTokenizerTester):
    num_hidden_layers = 2  # transformer blocks (lm_depth)
    expected_num_hidden_layers = 3  # the projected embeddings, then one per block
    hidden_size = 16  # lm_dim
    encoder_seq_length = 7  # W - 1 predicted token steps (16 samples / hop 2 = 8 steps)
    lm_head = 2
    num_attention_heads = 1  # per attention map: half of lm_head attend over time, half over latents

    def get_config(self) -> BrainOmniCausalForecastConfig:
        tokenizer = BrainOmniCausalTokenizerConfig(
            window_length=8,
            n_filters=2,
            ratios=[2],
            n_dim=8,
            n_neuro=2,
            n_head=2,
            codebook_dim=8,
            codebook_size=16,
            num_quantizers=2,
            num_sensors=8,
            lstm_layers=1,
            channel_names=CHANNELS,
        )
        return BrainOmniCausalForecastConfig(
            tokenizer_config=tokenizer, lm_dim=self.hidden_size, lm_head=self.lm_head, lm_depth=self.num_hidden_layers
        )


class _BrainCommon(ModelTesterMixin):
    test_resize_embeddings = False  # continuous signals in: no token table to resize
    # Passed with the signal by the eager-vs-SDPA test (which pads the batch with random ids, beyond the sensor
    # types: `sensor_type` is left to its default there).
    additional_model_inputs = ["pos"]

    def test_config(self):
        self.config_tester.run_common_tests()

    @unittest.skip("reads continuous signals: no input token table to get or set (get_input_embeddings() is None)")
    def test_model_get_set_embeddings(self):
        pass

    @unittest.skip(
        "strict loading: a checkpoint without the model's weights raises OSError naming the missing/unexpected keys "
        "(output_loading_info=True does not relax it; tests/test_bad_inputs_loading.py)"
    )
    def test_model_weights_reload_no_missing_tied_weights(self):
        pass

    @unittest.skip(
        "strict loading: from_pretrained(None, state_dict={}) raises OSError on the missing keys; "
        "test_meta_device_init_weights_gives_usable_model and test_init_weights_can_init_buffers check the init"
    )
    def test_can_init_all_missing_weights(self):
        pass

    # ------------------------------------------------- beyond the common tests
    def _model(self, dtype: torch.dtype = torch.float32, seed: int = 0):
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        torch.manual_seed(seed)
        model = self.all_model_classes[0](config)
        tokenizer = getattr(model, "tokenizer", model)
        tokenizer.init_codebooks(inputs["input_values"], inputs.get("pos"), inputs.get("sensor_type"), seed=seed)
        return model.to(dtype), inputs

    def test_meta_device_init_weights_gives_usable_model(self):
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        fresh = self.all_model_classes[0](copy.deepcopy(config))
        with torch.device("meta"):
            model = self.all_model_classes[0](copy.deepcopy(config))
        model.to_empty(device="cpu")
        model.init_weights()
        codebooks = [m for m in model.modules() if isinstance(m, EuclideanCodebook)]
        self.assertTrue(codebooks)
        for name, buffer in model.named_buffers():  # every buffer as a newly built model holds it
            torch.testing.assert_close(buffer, dict(fresh.named_buffers())[name], rtol=0, atol=0, msg=name)
        for name, param in model.named_parameters():
            self.assertTrue(torch.isfinite(param).all(), name)
        self.assertFalse(any(c.is_initialized for c in codebooks))  # k-means pending, as in a new model
        model.eval()
        with torch.no_grad():
            out = model(**inputs)  # the first forward initialises the codebooks from the batch
        self.assertTrue(torch.isfinite(out.loss))
        self.assertTrue(all(c.is_initialized for c in codebooks))

    def test_half_precision_forward_and_bf16_training_step(self):
        reference, inputs = self._model()
        with torch.no_grad():
            expected = reference.eval()(**inputs).loss
        for dtype in (torch.bfloat16, torch.float16):
            model, inputs = self._model(dtype)
            with torch.no_grad():
                out = model.eval()(**inputs)  # float32 inputs: the model casts them to its dtype
            self.assertTrue(torch.isfinite(out.loss), dtype)
            self.assertEqual(out.loss.dtype, torch.float32)  # the objective is computed in float32
            torch.testing.assert_close(out.loss, expected, rtol=0.1, atol=0.1, msg=str(dtype))
        model, inputs = self._model(torch.bfloat16)
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-2)
        loss = model(**inputs).loss
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        self.assertTrue(grads and all(g.dtype == torch.bfloat16 and torch.isfinite(g).all() for g in grads))
        optimizer.step()
        self.assertTrue(all(torch.isfinite(p).all() for p in model.parameters()))

    def _checkpointed_layers(self, model) -> list[torch.nn.Module]:
        return [m for m in model.modules() if isinstance(m, SEANetResnetBlock)]

    def test_output_loading_info_keeps_strict_loading(self):
        model, _ = self._model()
        model_class = self.all_model_classes[0]
        with tempfile.TemporaryDirectory() as folder:
            model.save_pretrained(folder)
            loaded, info = model_class.from_pretrained(folder, output_loading_info=True)
            self.assertEqual([list(info[k]) for k in ("missing_keys", "unexpected_keys", "mismatched_keys")], [[]] * 3)
            for name, tensor in model.state_dict().items():
                torch.testing.assert_close(loaded.state_dict()[name], tensor, rtol=0, atol=0, msg=name)
            weights = Path(folder) / "model.safetensors"
            state = load_file(weights)
            state["unexpected.weight"] = torch.zeros(1)
            save_file(state, weights, metadata={"format": "pt"})
            with self.assertRaisesRegex(OSError, "unexpected.weight"):
                model_class.from_pretrained(folder, output_loading_info=True)

    def test_gradient_checkpointing_same_loss_and_gradients(self):
        model, inputs = self._model()
        checkpointed = copy.deepcopy(model)
        checkpointed.gradient_checkpointing_enable()
        self.assertTrue(checkpointed.is_gradient_checkpointing)
        results = []
        for candidate in (model, checkpointed):
            # A convolution/linear layer inside the first checkpointed block, counted by wrapping its `forward`:
            # PyTorch runs no module hooks in a recompute, and transformers checkpoints the block's class `forward`.
            block = self._checkpointed_layers(candidate)[0]
            layer, calls = next(m for m in block.modules() if isinstance(m, (torch.nn.Conv1d, torch.nn.Linear))), []
            forward = layer.forward

            def counting_forward(*args, forward=forward, calls=calls, **kwargs):
                calls.append(1)
                return forward(*args, **kwargs)

            layer.forward = counting_forward
            candidate.train()
            torch.manual_seed(1)  # the codebook update draws random rows
            loss = candidate(**inputs).loss
            loss.backward()
            grads = {n: p.grad for n, p in candidate.named_parameters() if p.grad is not None}
            results.append((loss.detach(), grads, len(calls)))
        (loss, grads, calls), (loss_ckpt, grads_ckpt, calls_ckpt) = results
        self.assertEqual((calls, calls_ckpt), (1, 2))  # checkpointed: run again in the backward pass
        torch.testing.assert_close(loss_ckpt, loss)
        self.assertEqual(grads_ckpt.keys(), grads.keys())
        for name, grad in grads.items():
            torch.testing.assert_close(grads_ckpt[name], grad, msg=name)


class TestBrainOmniTokenizerCommon(_BrainCommon, unittest.TestCase):
    all_model_classes = (BrainOmniCausalTokenizerModel,)

    def setUp(self):
        self.model_tester = BrainOmniTokenizerTester(self)
        self.config_tester = ConfigTester(
            self,
            config_class=BrainOmniCausalTokenizerConfig,
            has_text_modality=False,
            common_properties=[*TOKENIZER_FIELDS, "n_head"],
        )

    def test_attention_outputs(self):
        # The common test expects one map shape for every layer; here the two cross-attention maps are transposes
        # of each other: latents over sensors `(B * W, H, n_neuro, C)`, then sensors over latents.
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        batch, channels = inputs["input_values"].shape[:2]
        steps, heads = 16 // 4, config.n_head
        expected = [(batch * steps, heads, config.n_neuro, channels), (batch * steps, heads, channels, config.n_neuro)]
        for implementation in ("eager", "sdpa"):
            model = BrainOmniCausalTokenizerModel._from_config(config, attn_implementation=implementation).eval()
            with torch.no_grad():
                out = model(**inputs, output_attentions=True)
                plain = model(**inputs)
            self.assertEqual([tuple(a.shape) for a in out.attentions], expected)
            for weights in out.attentions:  # softmax rows
                torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]))
            self.assertIsNone(plain.attentions)
            torch.testing.assert_close(out.reconstruction, plain.reconstruction)
        config = self.model_tester.get_config()
        config._attn_implementation = "eager"  # transformers' configs refuse output_attentions with SDPA
        config.output_attentions = True
        with torch.no_grad():
            out = BrainOmniCausalTokenizerModel(config).eval()(**inputs)
        self.assertEqual(len(out.attentions), 2)


class TestBrainTokMixCommon(_BrainCommon, unittest.TestCase):
    all_model_classes = (BrainTokMixModel,)
    has_attentions = False  # a convolution-only tokenizer: no attention maps
    additional_model_inputs = []

    def setUp(self):
        self.model_tester = BrainTokMixTester(self)
        self.config_tester = ConfigTester(
            self, config_class=BrainTokMixConfig, has_text_modality=False, common_properties=TOKENIZER_FIELDS
        )


def _seeded_kmeans(init_from_data):
    """`EuclideanCodebook.init_from_data` drawing its k-means rows from a fixed seed (the caller's RNG untouched)."""

    def seeded(codebook: EuclideanCodebook, x: torch.Tensor) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            init_from_data(codebook, x)

    return seeded


class TestBrainOmniForecastCommon(_BrainCommon, unittest.TestCase):
    all_model_classes = (BrainOmniCausalForecastModel,)
    # The tokenizer's decoder turns forecast codes back into signals (`forecast`); the training forward (next-code
    # cross-entropy) never runs it, so its weights get no gradient there.
    test_all_params_have_gradient = False

    def setUp(self):
        self.model_tester = BrainOmniForecastTester(self)
        self.config_tester = ConfigTester(self, config_class=BrainOmniCausalForecastConfig, has_text_modality=False)

    def _checkpointed_layers(self, model) -> list[torch.nn.Module]:
        return list(model.blocks)

    @parameterized.expand(common.TEST_EAGER_MATCHES_SDPA_INFERENCE_PARAMETERIZATION)
    def test_eager_matches_sdpa_inference(self, *args):
        # The common test compares two copies of a new model; each copy's first forward k-means-initialises the
        # tokenizer's codebooks from rows drawn at random, so the copies would tokenize differently. Drawn from one
        # seed, both hold the same codebooks and the comparison is between the attention implementations alone.
        seeded = _seeded_kmeans(EuclideanCodebook.init_from_data)
        with mock.patch.object(EuclideanCodebook, "init_from_data", seeded):
            common._test_eager_matches_sdpa_inference(self, *args)
