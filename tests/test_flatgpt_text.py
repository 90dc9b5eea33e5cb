"""FlatGPTText (brain-gen `Qwen2_5_VideoText`): BPE ids with (index, channel, 0) RoPE ids; contract, generation,
conversion."""

import unittest

import pytest
import torch
from transformers import AutoModelForCausalLM

from brain_gen_hf.compat import cache_of
from brain_gen_hf.models.flatgpt.configuration_flatgpt_text import FlatGPTTextConfig, text_tokenizer_config
from brain_gen_hf.models.flatgpt.modeling_flatgpt_text import FlatGPTTextForCausalLM, text_channel_ids
from brain_gen_hf.tokenizers.tokenization_bpe import train_bpe_tokenizer
from tests.flatgpt_configs import qwen_backbone
from tests.generation_contract import GenerationContract
from tests.model_contract import ModelContract

CHANNELS, GROUP = 3, 2


def _signal(seed=0, batch=3, steps=48):
    generator = torch.Generator().manual_seed(seed)
    return torch.tanh(0.1 * torch.randn(batch, CHANNELS, steps, generator=generator).cumsum(-1))


_TOKENIZER = None


def bpe_tokenizer():
    global _TOKENIZER
    if _TOKENIZER is None:
        _TOKENIZER = train_bpe_tokenizer(_signal(), vocab_size=120, group_size=GROUP, mu=15, min_frequency=1)
    return _TOKENIZER


def text_config(**kwargs):
    tok = bpe_tokenizer()
    kwargs.setdefault("backbone_config", qwen_backbone(max_positions=160))
    return FlatGPTTextConfig(vocab_size=len(tok), hidden_size=24, tokenizer_config=text_tokenizer_config(tok), **kwargs)


def _ids(length=40):
    ids = bpe_tokenizer().encode_signal(_signal(1, batch=2))["input_ids"]
    assert ids.shape[1] >= length  # the 48 steps give more tokens than any test reads
    return ids[:, :length]


def test_channel_ids_by_hand():
    # token -> characters: id 0 none (e.g. [PAD]), 1 -> 1, 2 -> 2, 3 -> 3
    counts = torch.tensor([0, 1, 2, 3])
    ids = torch.tensor([[3, 1, 2, 0, 2, 1]])  # characters before each token: 0, 3, 4, 6, 6, 8
    assert text_channel_ids(ids, counts, num_channels=3, group_size=1).tolist() == [[0, 0, 1, -1, 0, 2]]
    assert text_channel_ids(ids, counts, num_channels=3, group_size=2).tolist() == [[0, 1, 2, -1, 0, 1]]


def test_channel_ids_are_the_word_channels_of_the_text_layout():
    """group_size > 1: every word is one channel's characters, channels cycling; a token that starts a word
    belongs to that word's channel (counted here from the token strings, independently of the model)."""
    tok = bpe_tokenizer()
    ids = _ids()
    model = AutoModelForCausalLM.from_config(text_config())
    channels = model.channel_ids(ids)
    for row in range(ids.shape[0]):
        words = -1
        for position, token in enumerate(tok.convert_ids_to_tokens(ids[row].tolist())):
            if token.startswith("\u2581"):
                words += 1
                if len(token) > 1:
                    assert int(channels[row, position]) == words % CHANNELS
            if token == "\u2581":
                assert int(channels[row, position]) == -1


def test_tokenizer_config_counts_characters():
    tok = bpe_tokenizer()
    counts = text_tokenizer_config(tok)["token_num_chars"]
    assert len(counts) == len(tok)
    assert counts[tok.pad_token_id] == 0 and counts[tok.unk_token_id] == 0
    for token_id in (5, 50, len(tok) - 1):
        assert counts[token_id] == len(tok.convert_ids_to_tokens(token_id).lstrip("\u2581"))


def test_positions_use_the_channels():
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(text_config()).eval()
    ids = _ids()
    logits = model(ids).logits
    torch.testing.assert_close(model(ids, channel_ids=model.channel_ids(ids)).logits, logits, rtol=0, atol=0)
    assert not torch.allclose(model(ids, channel_ids=torch.zeros_like(ids)).logits, logits)


def test_cached_steps_and_generation_match_uncached():
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(text_config()).eval()
    ids = _ids()
    channels = model.channel_ids(ids)
    full = model(ids).logits
    out = model(ids[:, :17], use_cache=True)
    pieces = [out.logits]
    for start, stop in ((17, 18), (18, 23), (23, 40)):
        out = model(ids[:, start:stop], use_cache=True, cache=cache_of(out), channel_ids=channels[:, start:stop])
        pieces.append(out.logits)
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="needs the `channel_ids`"):
        model(ids[:, 17:18], cache=cache_of(model(ids[:, :17], use_cache=True)))

    prompt = ids[:, :15]
    cached = model.generate(prompt, max_new_tokens=10, do_sample=False, use_cache=True)
    uncached = model.generate(prompt, max_new_tokens=10, do_sample=False, use_cache=False)
    assert cached.shape == (2, 25)
    assert torch.equal(cached, uncached)
    sampled = model.generate(prompt, max_new_tokens=10, do_sample=True, top_k=5, use_cache=True)
    assert sampled.shape == (2, 25) and torch.equal(sampled[:, :15], prompt)


def test_forecast_decodes_whole_steps_cached_as_uncached():
    from transformers import GenerationConfig

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(text_config()).eval()
    context = _signal(2, batch=2, steps=12)
    greedy = model.forecast(context, 5, bpe_tokenizer=bpe_tokenizer())
    assert greedy.values.shape == greedy.codes.shape == (2, CHANNELS, 5)
    assert greedy.codes.min() >= 0 and greedy.codes.max() <= 15
    uncached = model.forecast(
        context, 5, GenerationConfig(do_sample=False, use_cache=False), bpe_tokenizer=bpe_tokenizer()
    )
    assert torch.equal(greedy.codes, uncached.codes) and torch.equal(greedy.tokens, uncached.tokens)
    # The codes are what the tokenizer decodes from the generated ids (whole time steps, cut to the horizon).
    row = greedy.tokens[0][greedy.tokens[0] != bpe_tokenizer().pad_token_id]
    decoded = bpe_tokenizer().strip_forecast(row[None])[0, :5].T
    assert torch.equal(greedy.codes[0], decoded)
    with pytest.raises(ValueError, match="needs `bpe_tokenizer=`"):
        model.forecast(context, 5)
    with pytest.raises(ValueError, match="multiple of group_size"):
        model.forecast(context[..., :11], 5, bpe_tokenizer=bpe_tokenizer())


def test_bad_text_configs_raise():
    tok = bpe_tokenizer()
    short = {**text_tokenizer_config(tok), "token_num_chars": [1] * (len(tok) - 1)}
    with pytest.raises(ValueError, match="one count per token id"):
        FlatGPTTextConfig(vocab_size=len(tok), hidden_size=24, backbone_config=qwen_backbone(), tokenizer_config=short)
    with pytest.raises(ValueError, match="needs `tokenizer_config"):
        FlatGPTTextConfig(vocab_size=len(tok), hidden_size=24, backbone_config=qwen_backbone())
    from tests.flatgpt_configs import smollm3_backbone

    with pytest.raises(ValueError, match="3-D RoPE backbone"):
        text_config(backbone_config=smollm3_backbone())
    with pytest.raises(ValueError, match="one token at a time"):
        text_config(block_size=2)


def test_reference_text_config_converts():
    from brain_gen_hf.conversion import config_from_reference

    tok = bpe_tokenizer()
    reference = {
        "trf_class": "Qwen2_5_VideoText",
        "trf_args": {k: v for k, v in qwen_backbone(max_positions=160).items() if k != "model_type"},
        "hidden_size": 24,
        "vocab_size": len(tok),
        "input_shape": [48, CHANNELS, 1],
        "tok_class": "BPETokenizer",
        "tok_args": {"group_size": GROUP, "tokenizer_path": "/data/bpe"},
    }
    config = config_from_reference("FlatGPT", reference, bpe_tokenizer=tok)
    assert isinstance(config, FlatGPTTextConfig)
    assert config.tokenizer_config.token_num_chars == text_tokenizer_config(tok)["token_num_chars"]
    assert config.backbone_config.model_type == "qwen2_5_vl_text"
    with pytest.raises(ValueError, match="bpe_tokenizer="):
        config_from_reference("FlatGPT", reference)
    with pytest.raises(ValueError, match="group_size"):
        config_from_reference("FlatGPT", {**reference, "tok_args": {"group_size": 1}}, bpe_tokenizer=tok)


class TestFlatGPTTextContract(ModelContract):
    auto_class = "AutoModelForCausalLM"
    causal = True
    causal_output_time_dim = 1
    causal_input_time_dim = 1

    def make_config(self):
        return text_config()

    def make_inputs(self):
        ids = _ids(24)
        return {"input_ids": ids, "labels": ids.clone()}

    def bad_inputs(self):
        ids = self.make_inputs()["input_ids"]
        return [
            ({"input_ids": ids.float()}, "integer token ids"),
            ({"input_ids": ids + 1000}, "outside the vocabulary"),
            ({"input_ids": torch.zeros(2, 200, dtype=torch.long)}, "exceed"),
            ({"input_ids": ids, "attention_mask": torch.zeros_like(ids)}, "attention_mask"),
            ({"input_ids": ids, "channel_ids": ids[:, :3]}, "shaped like input_ids"),
            ({"input_ids": ids, "channel_ids": torch.full_like(ids, CHANNELS)}, "below num_channels"),
        ]


class _TextTester:
    def prepare_config_and_inputs_for_common(self):
        return text_config(), {"input_ids": _ids(12)}


class TestFlatGPTTextGeneration(GenerationContract, unittest.TestCase):
    all_generative_model_classes = (FlatGPTTextForCausalLM,)
    generation_steps = 3  # the channels of generated tokens feed the next positions

    def setUp(self):
        self.model_tester = _TextTester()
