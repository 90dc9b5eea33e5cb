"""transformers' own common model tests (`ModelTesterMixin`, `ConfigTester`) on the amplitude FlatGPT LMs.

One test class per model type and backbone: FlatGPT on the Qwen2.5-VL video decoder and on SmolLM3, FlatGPTEmbeds
and FlatGPTMix on the Qwen decoder. Tiny configs (2 layers, width 24) keep the ~160 tests of a class fast. Each
mixin test switched off says why it does not apply; the tests after the classes cover what the mixins leave out.
"""

from __future__ import annotations

import unittest
import warnings

import pytest
import torch

from brain_gen_hf.compat import CACHE_KWARG, cache_of
from brain_gen_hf.models.flatgpt.configuration_flatgpt import FlatGPTConfig, FlatGPTEmbedsConfig, FlatGPTMixConfig
from brain_gen_hf.models.flatgpt.flatgpt_layers import ListEmbedding
from brain_gen_hf.models.flatgpt.modeling_flatgpt import (
    FlatGPTEmbedsForCausalLM,
    FlatGPTForCausalLM,
    FlatGPTMixForCausalLM,
)
from tests.flatgpt_configs import qwen_backbone, smollm3_backbone
from tests.generation_contract import GenerationContract
from tests.transformers_common import load_common_tests

ModelTesterMixin, ConfigTester, common = load_common_tests()

# brain_gen_hf loads strictly (its documented default): a checkpoint with missing keys raises OSError naming them,
# where these mixin tests expect a partially random model and the keys in the loading info.
STRICT_LOADING = "strict loading by design: missing keys raise OSError instead of being listed in the loading info"


class FlatGPTModelTester:
    """A tiny config and `(B, L)` token ids, as transformers' `XModelTester` classes provide them."""

    batch_size = 2
    seq_length = 12
    is_training = True
    vocab_size = 16
    hidden_size = 24
    num_hidden_layers = 2
    num_attention_heads = 4
    input_shape = [16, 3, 1]  # 48 grid cells (16 FlatGPTMix steps): room for the sequence plus generated tokens

    def __init__(self, parent, config_class=FlatGPTConfig, backbone=None, rows_per_example: int = 1, **config_kwargs):
        self.parent = parent
        self.config_class = config_class
        self.backbone = backbone or qwen_backbone()
        self.config_kwargs = config_kwargs
        self.rows_per_example = rows_per_example
        # FlatGPTMix reads (B*C, T) channel rows: the mixin's batch dimension is the row dimension.
        self.batch_size = FlatGPTModelTester.batch_size * rows_per_example

    def get_config(self):
        return self.config_class(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            input_shape=list(self.input_shape),
            backbone_config=dict(self.backbone),
            **self.config_kwargs,
        )

    def prepare_config_and_inputs_for_common(self):
        g = torch.Generator().manual_seed(0)
        input_ids = torch.randint(0, self.vocab_size, (self.batch_size, self.seq_length), generator=g)
        return self.get_config(), {"input_ids": input_ids}


class _FlatGPTCommonTests(ModelTesterMixin, GenerationContract):
    # Composite: the backbone is a transformers sub-model built from the `backbone_config` sub-config (the mixin's
    # composite attention tests check that attn_implementation reaches it).
    _is_composite = True
    config_class = FlatGPTConfig
    all_model_classes = (FlatGPTForCausalLM,)
    backbone = None
    rows_per_example = 1
    config_kwargs: dict = {}

    def setUp(self):
        self.model_tester = FlatGPTModelTester(
            self, self.config_class, self.backbone, self.rows_per_example, **self.config_kwargs
        )
        self.config_tester = ConfigTester(self, config_class=self.config_class, vocab_size=16, hidden_size=24)

    def _prepare_for_class(self, inputs_dict, model_class, return_labels=False):
        inputs_dict = super()._prepare_for_class(inputs_dict, model_class, return_labels=return_labels)
        if return_labels:
            # transformers adds labels for its own causal LMs only (by class name); a FlatGPT LM's labels are the
            # clean codes, `input_ids` itself (the model shifts them by block_size).
            inputs_dict["labels"] = inputs_dict["input_ids"].clone()
        return inputs_dict

    def test_config(self):
        self.config_tester.run_common_tests()

    @common.parameterized.expand(common.TEST_EAGER_MATCHES_SDPA_INFERENCE_PARAMETERIZATION)
    def test_eager_matches_sdpa_inference(
        self, name, dtype, padding_side, use_attention_mask, output_attentions, enable_kernels
    ):
        if use_attention_mask:
            self.skipTest("FlatGPT reads unpadded token grids: an attention mask with zeros (padding) is refused")
        common._test_eager_matches_sdpa_inference(
            self, name, dtype, padding_side, use_attention_mask, output_attentions, enable_kernels
        )

    def test_config_attn_implementation_setter(self):
        # The mixin's version requires every nested config to carry an attention implementation; the flat
        # tokenizer's config (`tokenizer_config`) describes a tokenizer without attention. The backbone's must
        # follow the init argument and the setter.
        config, _ = self.model_tester.prepare_config_and_inputs_for_common()
        config_dict = config.to_diff_dict()
        config_dict.pop("_attn_implementation_internal", None)
        config = type(config)(**config_dict, attn_implementation="eager")
        self.assertEqual(config._attn_implementation, "eager")
        self.assertEqual(config.backbone_config._attn_implementation, "eager")
        for implementation in ("sdpa", "eager"):
            config._attn_implementation = implementation
            self.assertEqual(config.backbone_config._attn_implementation, implementation)

    @unittest.skip(STRICT_LOADING)
    def test_model_weights_reload_no_missing_tied_weights(self):
        pass


class TestFlatGPTQwenCommon(_FlatGPTCommonTests, unittest.TestCase):
    pass


class TestFlatGPTSmolLM3Common(_FlatGPTCommonTests, unittest.TestCase):
    backbone = smollm3_backbone()


class TestFlatGPTEmbedsCommon(_FlatGPTCommonTests, unittest.TestCase):
    config_class = FlatGPTEmbedsConfig
    all_model_classes = (FlatGPTEmbedsForCausalLM,)

    # FlatGPTEmbeds has one token table per channel slot (a ListEmbedding of nn.Embedding; the head at slot i is
    # tied to table i + 1), not one nn.Embedding: the two mixin tests below assert a single table. Its own
    # set_input_embeddings / resize_token_embeddings are tested in test_embeds_resize_* below.
    @unittest.skip("one token table per channel slot (ListEmbedding), not a single nn.Embedding")
    def test_model_get_set_embeddings(self):
        pass

    @unittest.skip("one token table per channel slot (ListEmbedding), not a single nn.Embedding")
    def test_resize_tokens_embeddings(self):
        pass

    @unittest.skip(STRICT_LOADING)
    def test_correct_missing_keys(self):
        pass


class TestFlatGPTMixCommon(_FlatGPTCommonTests, unittest.TestCase):
    config_class = FlatGPTMixConfig
    all_model_classes = (FlatGPTMixForCausalLM,)
    rows_per_example = 3
    # The C channel rows of an example are one sequence (one backbone position per time step): transformers' beam
    # search would rank each row on its own, so generate(num_beams>1) raises.
    supports_beam_search = False
    beam_search_error = "no beam search"

    def _assert_continues(self, output, prompt, new, copies=1):
        # num_return_sequences copies whole examples (C rows each), not single channel rows.
        channels = self.rows_per_example
        examples = prompt.reshape(-1, channels, prompt.shape[1])
        expected = examples.repeat_interleave(copies, dim=0).flatten(0, 1)
        self.assertEqual(tuple(output.shape), (expected.shape[0], prompt.shape[1] + new))
        self.assertTrue(torch.equal(output[:, : prompt.shape[1]], expected), "the prompt is not kept in front")

    # These mixin tests slice single rows or build 7-row batches; a FlatGPTMix batch is whole examples of C rows.
    # Their FlatGPTMix equivalents (examples instead of rows) are test_mix_batching_equivalence and
    # test_mix_eager_matches_sdpa below.
    @unittest.skip("slices single rows; FlatGPTMix rows are the C channel rows of whole examples")
    def test_batching_equivalence(self):
        pass

    @unittest.skip(STRICT_LOADING)
    def test_correct_missing_keys(self):
        pass

    @common.parameterized.expand(common.TEST_EAGER_MATCHES_SDPA_INFERENCE_PARAMETERIZATION)
    def test_eager_matches_sdpa_inference(
        self, name, dtype, padding_side, use_attention_mask, output_attentions, enable_kernels
    ):
        self.skipTest("builds batches of 7 rows; FlatGPTMix rows are the C channel rows of whole examples")


# ------------------------------------------------------------------------------------------------------------------
# What the mixins leave out: checkpointing equivalence, half precision, meta-device init, the cache keyword, the
# attention implementation of a loaded model, and the per-slot / per-channel-row variants' own versions of the
# embedding, batching and attention tests.
CASES = {
    "flatgpt_qwen": (FlatGPTConfig, FlatGPTForCausalLM, None, 1),
    "flatgpt_smollm3": (FlatGPTConfig, FlatGPTForCausalLM, smollm3_backbone(), 1),
    "flatgpt_embeds": (FlatGPTEmbedsConfig, FlatGPTEmbedsForCausalLM, None, 1),
    "flatgpt_mix": (FlatGPTMixConfig, FlatGPTMixForCausalLM, None, 3),
}


def _case(name: str):
    config_class, model_class, backbone, rows = CASES[name]
    tester = FlatGPTModelTester(None, config_class, backbone, rows)
    config, inputs = tester.prepare_config_and_inputs_for_common()
    return model_class, config, inputs["input_ids"]


def _loss_and_grads(model, input_ids):
    model.zero_grad()
    loss = model(input_ids, labels=input_ids).loss
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _enable_checkpointing(model, use_reentrant: bool) -> None:
    # transformers 5.24 renamed gradient_checkpointing_enable (kept, deprecated) to activation_checkpointing_enable.
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": use_reentrant})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": use_reentrant})


@pytest.mark.parametrize("use_reentrant", [False, True])
@pytest.mark.parametrize("name", list(CASES))
def test_gradient_checkpointing_gives_identical_losses_and_grads(name, use_reentrant):
    model_class, config, input_ids = _case(name)
    torch.manual_seed(0)
    model = model_class(config).train()
    loss, grads = _loss_and_grads(model, input_ids)

    # The attention inside a checkpointed layer runs again when backward recomputes the layer. (5.24 checkpoints the
    # layer's `forward`, so hooks on the layer itself stay outside the checkpoint; torch's non-reentrant recompute
    # may stop before the layer's last modules once backward has what it needs.)
    attention_calls = []
    model.transformer.model.layers[0].self_attn.register_forward_hook(lambda *_: attention_calls.append(1))
    _enable_checkpointing(model, use_reentrant)
    checkpointed_loss, checkpointed_grads = _loss_and_grads(model, input_ids)

    assert len(attention_calls) == 2, "the checkpointed layer must run again in backward (recomputation)"
    torch.testing.assert_close(checkpointed_loss, loss)
    assert checkpointed_grads.keys() == grads.keys() and len(grads) == len(list(model.parameters()))
    for key, grad in grads.items():
        torch.testing.assert_close(checkpointed_grads[key], grad, msg=lambda m, key=key: f"{key}: {m}")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", list(CASES))
def test_half_precision_forward(name, dtype):
    model_class, config, input_ids = _case(name)
    torch.manual_seed(0)
    reference = model_class(config).eval()
    model = model_class(config).eval()
    model.load_state_dict(reference.state_dict())
    model.to(dtype)
    with torch.no_grad():
        out = model(input_ids, labels=input_ids)
        expected = reference(input_ids).logits
    assert out.logits.dtype == dtype and torch.isfinite(out.logits).all() and torch.isfinite(out.loss)
    # One rounding of weights and activations per layer: the half-precision logits follow the fp32 ones.
    torch.testing.assert_close(out.logits.float(), expected, atol=0.05, rtol=0.05)


@pytest.mark.parametrize("name", list(CASES))
def test_bfloat16_training_step(name):
    model_class, config, input_ids = _case(name)
    torch.manual_seed(0)
    model = model_class(config).to(torch.bfloat16).train()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    loss = model(input_ids, labels=input_ids).loss
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    for n, p in model.named_parameters():
        assert p.dtype == torch.bfloat16 and torch.isfinite(p).all(), n
    assert any(not torch.equal(before[n], p) for n, p in model.named_parameters())


@pytest.mark.parametrize("name", list(CASES))
def test_meta_device_construction_then_init_weights_gives_a_usable_model(name):
    model_class, config, input_ids = _case(name)
    with torch.device("meta"):
        model = model_class(config)
    assert all(p.is_meta for p in model.parameters())
    model.to_empty(device="cpu")
    model.init_weights()
    fresh = model_class(config)
    for key, tensor in model.state_dict().items():
        assert torch.isfinite(tensor).all(), key
        if "norm" in key or "inv_freq" in key:  # deterministic init: ones, RoPE frequencies
            torch.testing.assert_close(tensor, fresh.state_dict()[key], msg=key)
        elif tensor.ndim == 2:  # N(0, initializer_range) tables and projections
            std = config.backbone_config.initializer_range
            assert 0.5 * std < tensor.std() < 1.5 * std, key
    with torch.no_grad():
        logits = model(input_ids).logits
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", ["flatgpt_qwen", "flatgpt_mix"])
def test_past_key_values_keyword_is_deprecated_on_releases_that_name_it_cache(name):
    model_class, config, input_ids = _case(name)
    model = model_class(config).eval()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = model(input_ids, use_cache=True, past_key_values=model.new_cache())
    deprecations = [w for w in caught if "`past_key_values` is deprecated" in str(w.message)]
    if CACHE_KWARG == "cache":
        assert deprecations and deprecations[0].category is FutureWarning
    else:  # transformers < 5.24: `past_key_values` is the current name
        assert not deprecations
    assert cache_of(out).get_seq_length() == input_ids.shape[1]
    with warnings.catch_warnings(record=True) as caught:  # generate() passes the cache under the current name
        warnings.simplefilter("always")
        model.generate(input_ids, max_new_tokens=2, do_sample=False)
    assert not [w for w in caught if "`past_key_values` is deprecated" in str(w.message)]


@pytest.mark.parametrize("name", list(CASES))
def test_attn_implementation_reaches_the_backbone(name, tmp_path):
    model_class, config, input_ids = _case(name)
    torch.manual_seed(0)
    model_class(config).save_pretrained(tmp_path)

    def implementations(model):
        return {m.config._attn_implementation for m in model.modules() if hasattr(m, "config")}

    eager = model_class.from_pretrained(tmp_path, attn_implementation="eager").eval()
    assert implementations(eager) == {"eager"}
    sdpa = model_class.from_pretrained(tmp_path).eval()
    assert implementations(sdpa) == {"sdpa"}
    with torch.no_grad():
        torch.testing.assert_close(eager(input_ids).logits, sdpa(input_ids).logits)
        attentions = eager(input_ids, output_attentions=True).attentions
    assert len(attentions) == config.backbone_config.num_hidden_layers
    sdpa.set_attn_implementation("eager")
    assert implementations(sdpa) == {"eager"}


def test_embeds_set_and_resize_token_embeddings(tmp_path):
    model_class, config, input_ids = _case("flatgpt_embeds")
    torch.manual_seed(0)
    model = model_class(config).eval()
    old = [table.weight.detach().clone() for table in model.get_input_embeddings().emb]
    vocab = config.vocab_size

    tables = model.resize_token_embeddings(vocab + 5)
    assert tables is model.get_input_embeddings() and model.config.vocab_size == vocab + 5
    assert model.config.backbone_config.vocab_size == vocab + 5
    for table, before in zip(tables.emb, old):
        assert table.weight.shape == (vocab + 5, config.hidden_size)
        assert torch.equal(table.weight[:vocab], before)
        torch.testing.assert_close(table.weight[vocab:], before.mean(0).expand(5, -1))
    ids = input_ids.clone()
    ids[:, -1] = vocab + 4
    with torch.no_grad():
        logits = model(ids).logits
    assert logits.shape[-1] == vocab + 5  # the tied head scores with the new tables
    model.save_pretrained(tmp_path)
    with torch.no_grad():
        torch.testing.assert_close(model_class.from_pretrained(tmp_path)(ids).logits, logits)

    assert model.resize_token_embeddings(vocab + 7, pad_to_multiple_of=8).emb[0].num_embeddings == 24
    shrunk = model.resize_token_embeddings(vocab - 4)
    assert torch.equal(shrunk.emb[1].weight, old[1][: vocab - 4])

    replacement = ListEmbedding(vocab - 4, config.hidden_size, config.num_slots)
    model.set_input_embeddings(replacement)
    with torch.no_grad():
        hidden = model(input_ids.clamp(max=vocab - 5), output_hidden_states=True).last_hidden_state
        expected = torch.nn.functional.linear(hidden[:, :1], replacement.emb[1].weight)  # position 0 predicts slot 1
        torch.testing.assert_close(model(input_ids.clamp(max=vocab - 5)).logits[:, :1], expected)
    with pytest.raises(ValueError, match="ListEmbedding of 3 tables"):
        model.set_input_embeddings(torch.nn.Embedding(vocab, config.hidden_size))


def test_delimited_vocabulary_cannot_be_resized():
    config = FlatGPTConfig(
        vocab_size=17,
        hidden_size=24,
        input_shape=[16, 3, 1],
        backbone_config=qwen_backbone(),
        tokenizer_config={"tokenizer_class": "DelimitedTokenizer", "delimiter_id": 16},
    )
    model = FlatGPTForCausalLM(config)
    with pytest.raises(ValueError, match="delimiter"):
        model.resize_token_embeddings(20)
    assert model.get_input_embeddings().num_embeddings == 17


def test_mix_batching_equivalence():
    model_class, config, input_ids = _case("flatgpt_mix")
    model = model_class(config).eval()
    with torch.no_grad():
        batched = model(input_ids, output_hidden_states=True)
        first = model(input_ids[: config.num_channels], output_hidden_states=True)  # example 0: its C rows
    torch.testing.assert_close(first.logits, batched.logits[: config.num_channels], atol=1e-5, rtol=1e-5)
    for one, many in zip(first.hidden_states, batched.hidden_states):
        torch.testing.assert_close(one, many[:1], atol=1e-5, rtol=1e-5)


def test_mix_eager_matches_sdpa():
    model_class, config, input_ids = _case("flatgpt_mix")
    torch.manual_seed(0)
    sdpa = model_class(config).eval()
    eager = model_class(config).eval()
    eager.load_state_dict(sdpa.state_dict())
    eager.set_attn_implementation("eager")
    with torch.no_grad():
        torch.testing.assert_close(eager(input_ids).logits, sdpa(input_ids).logits, atol=1e-5, rtol=1e-5)


def test_mix_num_return_sequences_copies_whole_examples():
    model_class, config, input_ids = _case("flatgpt_mix")
    model = model_class(config).eval()
    greedy = model.generate(input_ids, max_new_tokens=3, do_sample=False)
    # top_k=1 sampling draws the argmax: every copy of an example is its greedy continuation.
    copies = model.generate(input_ids, max_new_tokens=3, do_sample=True, top_k=1, num_return_sequences=2)
    channels = config.num_channels
    expected = greedy.reshape(-1, channels, greedy.shape[1]).repeat_interleave(2, dim=0).flatten(0, 1)
    assert torch.equal(copies, expected)
