"""transformers' own common model tests (`ModelTesterMixin`, `ConfigTester`) and our generation contract on the
three RVQ FlatGPT language models (a brain tokenizer inside, flat RVQ codes in and out), plus what those suites
cannot see here: the refused token-table resize, the per-level embedding accessors and a model built on the meta
device."""

from __future__ import annotations

import copy
import tempfile
import unittest
from unittest import mock

import torch
from parameterized import parameterized
from safetensors.torch import save_file as safe_save_file
from torch import nn

from brain_gen_hf.models.flatgpt.configuration_flatgpt_rvq import (
    FlatGPTEmbedsRVQConfig,
    FlatGPTMixRVQConfig,
    FlatGPTRVQConfig,
)
from brain_gen_hf.models.flatgpt.modeling_flatgpt_rvq import (
    FlatGPTEmbedsRVQForCausalLM,
    FlatGPTMixRVQForCausalLM,
    FlatGPTRVQForCausalLM,
)
from tests.flatgpt_configs import qwen_backbone
from tests.flatgpt_rvq_configs import BRAINTOKMIX, CHANNELS, HIDDEN, K, signal
from tests.generation_contract import GenerationContract
from tests.transformers_common import load_common_tests

ModelTesterMixin, ConfigTester, common = load_common_tests()


class FlatGPTRVQModelTester:
    """A tiny RVQ LM: BrainTokMix (2 latents x 2 levels, K = 16) and a 2-layer Qwen2.5-VL text backbone over a grid
    of 8 token steps (32 codes); the inputs fill half of it, so generation has room."""

    batch_size = 2
    seq_length = 16  # 4 token steps x (2 latents x 2 levels)
    is_training = True
    vocab_size = K
    hidden_size = HIDDEN
    num_hidden_layers = 2
    num_attention_heads = 4

    def __init__(self, parent, config_class, **config_kwargs):
        self.parent = parent
        self.config_class = config_class
        self.config_kwargs = config_kwargs

    @property
    def encoder_seq_length(self) -> int:
        """Backbone positions of the inputs (what hidden states and attentions span): codes / codes per position."""
        return self.seq_length // self.get_config().tokens_per_position

    def get_config(self):
        return self.config_class(
            tokenizer_config=dict(BRAINTOKMIX),
            hidden_size=HIDDEN,
            backbone_config=qwen_backbone(),
            input_shape=[32, CHANNELS, 2],
            **self.config_kwargs,
        )

    def prepare_config_and_inputs_for_common(self):
        g = torch.Generator().manual_seed(0)
        input_ids = torch.randint(0, K, (self.batch_size, self.seq_length), generator=g)
        return self.get_config(), {"input_ids": input_ids}


class _RVQCommon(ModelTesterMixin, GenerationContract):
    config_class = None
    config_kwargs: dict = {}
    # The vocabulary is the brain tokenizer's RVQ codebook (config.vocab_size must equal its codebook_size), held in
    # one table per level: there is no token table to resize (resize_token_embeddings raises, tested below).
    test_resize_embeddings = False

    def setUp(self):
        self.model_tester = FlatGPTRVQModelTester(self, self.config_class, **self.config_kwargs)
        self.config_tester = ConfigTester(self, config_class=self.config_class, has_text_modality=False)

    def _prepare_for_class(self, inputs_dict, model_class, return_labels=False):
        # transformers adds labels for the classes of its own causal-LM mapping; ours are registered with
        # AutoModelForCausalLM too and take the clean codes as labels (the model shifts them itself).
        inputs_dict = super()._prepare_for_class(inputs_dict, model_class, return_labels=return_labels)
        if return_labels:
            inputs_dict["labels"] = inputs_dict["input_ids"].clone()
        return inputs_dict

    def test_config(self):
        self.config_tester.run_common_tests()

    @unittest.skip("no single token table: one nn.Embedding per RVQ level (see test_embedding_accessors_per_level)")
    def test_model_get_set_embeddings(self):
        pass

    @unittest.skip(
        "strict loading: from_pretrained raises OSError on missing keys (brain_gen_hf's default), so a checkpoint "
        "without weights never loads to report them (test_strict_loading_refuses_missing_weights checks the error)"
    )
    def test_model_weights_reload_no_missing_tied_weights(self):
        pass

    @unittest.skip(
        "strict loading: the LM refuses its backbone's folder (its embeddings, heads and tokenizer would stay "
        "random) with OSError naming the missing keys instead of reporting them in the loading info"
    )
    def test_correct_missing_keys(self):
        pass

    @parameterized.expand(common.TEST_EAGER_MATCHES_SDPA_INFERENCE_PARAMETERIZATION)
    def test_eager_matches_sdpa_inference(
        self, name, dtype, padding_side, use_attention_mask, output_attentions, enable_kernels
    ):
        if use_attention_mask:
            # The mixin pads by zeroing mask entries; RVQ code grids are dense (every position is a code), and
            # a mask with zeros raises ValueError by design. The unpadded cases run.
            self.skipTest("RVQ code sequences are unpadded: a padding attention_mask is refused by design")
        common._test_eager_matches_sdpa_inference(
            self, name, dtype, padding_side, use_attention_mask, output_attentions, enable_kernels
        )

    # ------------------------------------------------------------------ our own checks
    def _model(self, model_class):
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        torch.manual_seed(0)
        return model_class(config).eval(), inputs

    def test_resize_token_embeddings_is_refused(self):
        for model_class in self.all_model_classes:
            model, _ = self._model(model_class)
            with self.assertRaisesRegex(ValueError, "RVQ codebook"):
                model.resize_token_embeddings(K + 4)

    def test_embedding_accessors_per_level(self):
        for model_class in self.all_model_classes:
            model, inputs = self._model(model_class)
            tables = model.get_input_embeddings()
            levels = [m for m in tables.modules() if isinstance(m, nn.Embedding) and m.num_embeddings == K]
            self.assertEqual(len(levels), model.config.num_levels)
            with self.assertRaisesRegex(ValueError, type(tables).__name__):
                model.set_input_embeddings(nn.Embedding(K, HIDDEN))
            before = model(**inputs).logits
            replacement = copy.deepcopy(tables)
            with torch.no_grad():
                for table in replacement.modules():
                    if isinstance(table, nn.Embedding):
                        table.weight.normal_(generator=torch.Generator().manual_seed(1))
            model.set_input_embeddings(replacement)
            self.assertIs(model.get_input_embeddings(), replacement)
            after = model(**inputs).logits
            self.assertFalse(torch.allclose(before, after), "the new tables are not used")
            fresh = model._tied_head()
            if fresh is not None:  # a tied head scores with the new tables
                hidden = torch.randn(1, 1, model.config.hidden_size)
                torch.testing.assert_close(model.head(hidden), fresh(hidden), rtol=0, atol=0)

    def test_strict_loading_refuses_missing_weights(self):
        for model_class in self.all_model_classes:
            model, _ = self._model(model_class)
            with tempfile.TemporaryDirectory() as folder:
                model.save_pretrained(folder)
                safe_save_file(
                    {"tensor": torch.tensor([1, 2])}, f"{folder}/model.safetensors", metadata={"format": "pt"}
                )
                for kwargs in ({}, {"output_loading_info": True}):
                    with self.assertRaisesRegex(OSError, r"missing_keys: \[.*pre_embedding"):
                        model_class.from_pretrained(folder, **kwargs)

    def test_half_precision_forward_and_bf16_training_step(self):
        for model_class in self.all_model_classes:
            for dtype in (torch.float16, torch.bfloat16):
                model, inputs = self._model(model_class)
                model.to(dtype)
                out = model(**inputs, labels=inputs["input_ids"])
                self.assertEqual(out.logits.dtype, dtype)
                self.assertTrue(torch.isfinite(out.logits).all() and torch.isfinite(out.loss))
                signal_out = model(input_values=signal(2, 16, CHANNELS).to(dtype))
                self.assertTrue(torch.isfinite(signal_out.loss))
            model.train()  # bf16 (the last dtype): one optimiser step
            trainable = [p for p in model.parameters() if p.requires_grad]
            before = [p.detach().clone() for p in trainable]
            loss = model(**inputs, labels=inputs["input_ids"]).loss
            loss.backward()
            self.assertTrue(all(p.grad is not None and torch.isfinite(p.grad).all() for p in trainable))
            torch.optim.SGD(trainable, lr=1.0).step()
            self.assertTrue(any(not torch.equal(b, p) for b, p in zip(before, trainable)), "the step changed nothing")

    def test_gradient_checkpointing_same_loss_and_gradients(self):
        for model_class in self.all_model_classes:
            model, inputs = self._model(model_class)
            model.train()
            # A checkpointed layer's computation runs again in the backward pass (module hooks do not see it).
            mlp = model.transformer.model.layers[0].mlp
            results = []
            for checkpointing in (False, True):
                if checkpointing:
                    model.gradient_checkpointing_enable()
                model.zero_grad()
                with mock.patch.object(mlp, "forward", wraps=mlp.forward) as mlp_forward:
                    loss = model(**inputs, labels=inputs["input_ids"]).loss
                    loss.backward()
                self.assertEqual(mlp_forward.call_count, 2 if checkpointing else 1)
                grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
                results.append((loss.detach(), grads))
            (loss, grads), (loss_ckpt, grads_ckpt) = results
            self.assertTrue(torch.equal(loss, loss_ckpt))
            self.assertEqual(grads.keys(), grads_ckpt.keys())
            for name, grad in grads.items():
                self.assertTrue(torch.equal(grad, grads_ckpt[name]), f"{name}: another gradient with checkpointing")

    def test_meta_device_init_weights_gives_a_usable_model(self):
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        for model_class in self.all_model_classes:
            with torch.device("meta"):
                model = model_class(copy.deepcopy(config))
            model.to_empty(device="cpu")
            model.init_weights()
            model.eval()
            for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
                self.assertTrue(torch.isfinite(tensor).all(), f"{name} holds non-finite values after init_weights")
            logits = model(**inputs).logits
            self.assertTrue(torch.isfinite(logits).all())
            codes = model.encode(signal(2, 16, CHANNELS))
            self.assertTrue(bool((codes >= 0).all() and (codes < K).all()))
            out = model.generate(**inputs, max_new_tokens=self._new_tokens(), do_sample=False)
            self.assertEqual(out.shape[1], inputs["input_ids"].shape[1] + self._new_tokens())


class TestFlatGPTEmbedsRVQCommon(_RVQCommon, unittest.TestCase):
    all_model_classes = (FlatGPTEmbedsRVQForCausalLM,)
    config_class = FlatGPTEmbedsRVQConfig


class TestFlatGPTRVQCommon(_RVQCommon, unittest.TestCase):
    all_model_classes = (FlatGPTRVQForCausalLM,)
    config_class = FlatGPTRVQConfig
    config_kwargs = {"quantizer_head": "tied"}
    generation_step_tokens = 2  # one (t, latent) stack of Q = 2 codes per position, drawn jointly
    generation_any_max_new_tokens = False
    # Each beam step would have to rank K**Q joint continuations of a stack: generate(num_beams>1) raises.
    supports_beam_search = False


class TestFlatGPTMixRVQCommon(_RVQCommon, unittest.TestCase):
    all_model_classes = (FlatGPTMixRVQForCausalLM,)
    config_class = FlatGPTMixRVQConfig
    generation_step_tokens = 4  # one token step (2 latents x 2 levels) per position, drawn jointly
    generation_any_max_new_tokens = False
    supports_beam_search = False  # as FlatGPTRVQ: K**4 joint continuations per step
