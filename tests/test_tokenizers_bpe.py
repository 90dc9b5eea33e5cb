"""BPE tokenizer: training, save/reload (folder and Hub), text layout, decoding, bad input."""

import json
import os

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

import brain_gen_hf  # noqa: F401  (registers the tokenizers with AutoTokenizer)
from brain_gen_hf.tokenizers import BPETokenizer, train_bpe_tokenizer
from brain_gen_hf.tokenizers.bpe_text import default_char_ranking
from brain_gen_hf.tokenizers.mulaw import mulaw_decode, mulaw_encode

CHANNELS = 3


def _signal(batch=4, steps=120, seed=0):
    """Slow random walks: neighbouring samples share bins, so BPE finds merges."""
    steps_noise = torch.randn(batch, CHANNELS, steps, generator=torch.Generator().manual_seed(seed)) * 0.03
    return torch.cumsum(steps_noise, dim=-1).clamp(-1, 1)


@pytest.fixture(scope="module")
def trained():
    """group_size -> tokenizer trained on the same signals."""
    signals = [_signal(seed=1), _signal(batch=2, seed=2)]
    return {g: train_bpe_tokenizer(signals, vocab_size=320, group_size=g) for g in (1, 4)}


def _unpadded(encoding):
    ids, mask = encoding["input_ids"], encoding["attention_mask"]
    return [row[m.astype(bool) if isinstance(m, np.ndarray) else m.bool()].tolist() for row, m in zip(ids, mask)]


@pytest.mark.parametrize("group_size", [1, 4])
def test_train_encode_decode_round_trip(trained, group_size):
    tokenizer = trained[group_size]
    assert (tokenizer.num_channels, tokenizer.group_size, len(tokenizer)) == (CHANNELS, group_size, 320)
    x = _signal(batch=3, steps=50, seed=3)  # 50 is not a multiple of 4: a short final group
    encoding = tokenizer.encode_signal(x)
    assert set(encoding) == {"input_ids", "attention_mask"}
    assert encoding["input_ids"].shape[0] == 3
    # BPE lengths differ per example: right padding with the pad token, masked out
    lengths = encoding["attention_mask"].sum(1)
    assert torch.equal(
        encoding["input_ids"][encoding["attention_mask"] == 0],
        torch.full(((lengths.max() - lengths).sum().item(),), tokenizer.pad_token_id),
    )
    bins = mulaw_encode(x)
    assert torch.equal(tokenizer.strip_forecast(encoding["input_ids"]), bins.transpose(1, 2))
    assert torch.equal(tokenizer.decode_signal(encoding["input_ids"]), mulaw_decode(bins))
    # merges happened: fewer tokens than an unmerged encoding (one per character + one word marker per word)
    unmerged = [len(text.replace(" ", "")) + len(text.split()) for text in tokenizer.signal_to_text(x)]
    assert all(int(n) < m for n, m in zip(lengths, unmerged))


@pytest.mark.parametrize("group_size", [1, 4])
def test_string_path_matches_encode_signal(trained, group_size):
    tokenizer = trained[group_size]
    x = _signal(batch=3, steps=37, seed=4).numpy()
    encoding = tokenizer.encode_signal(x)
    assert isinstance(encoding["input_ids"], np.ndarray)
    texts = tokenizer.signal_to_text(x)
    assert tokenizer(texts)["input_ids"] == _unpadded(encoding)
    assert tokenizer.batch_decode(_unpadded(encoding)) == texts  # decode gives back the exact text


def test_text_layout():
    lookup = default_char_ranking()[:256]
    tokenizer = BPETokenizer(char_lookup_codepoints=lookup, num_channels=2, group_size=1)
    bins = torch.tensor([[[0, 1, 2], [3, 4, 5]]])  # (B=1, C=2, T=3); bin k <-> ranking[k] = "etaoin"[k]
    assert tokenizer.signal_to_text(bins) == ["eo ti an"]  # one word per step, channels in order
    grouped = BPETokenizer(char_lookup_codepoints=lookup, num_channels=2, group_size=2)
    assert grouped.signal_to_text(bins) == ["et oi a n"]  # per group of 2 steps: one word per channel
    assert grouped.text_to_bins("et oi a n").tolist() == [[0, 1, 2], [3, 4, 5]]
    # whitespace does not matter when decoding, like the reference
    assert tokenizer.text_to_bins("e\not  i a n").tolist() == [[0, 1, 2], [3, 4, 5]]
    # a character outside the lookup becomes bin len(lookup) // 2 - 1
    assert tokenizer.text_to_bins("e\u263a").tolist() == [[0], [127]]


def test_char_lookup_is_frequency_ranked(trained):
    tokenizer = trained[1]
    signals = torch.cat([_signal(seed=1), _signal(batch=2, seed=2)])
    counts = torch.bincount(mulaw_encode(signals).flatten(), minlength=256)
    ranking = default_char_ranking()
    assert tokenizer.char_lookup_codepoints[int(counts.argmax())] == ranking[0]
    order = torch.argsort(-counts, stable=True)
    assert [tokenizer.char_lookup_codepoints[int(b)] for b in order] == ranking[:256]


@pytest.mark.parametrize("group_size", [1, 4])
def test_save_and_auto_tokenizer_reload(trained, group_size, tmp_path):
    tokenizer = trained[group_size]
    tokenizer.save_pretrained(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["char_lookup_codepoints.json", "tokenizer.json", "tokenizer_config.json"]
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "BPETokenizer"
    assert config["char_lookup_codepoints"] == tokenizer.char_lookup_codepoints
    assert json.loads((tmp_path / "char_lookup_codepoints.json").read_text()) == tokenizer.char_lookup_codepoints
    assert (config["num_channels"], config["group_size"], config["mu"]) == (CHANNELS, group_size, 255)

    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert type(loaded) is BPETokenizer
    x = _signal(batch=2, steps=33, seed=5)
    assert torch.equal(loaded.encode_signal(x)["input_ids"], tokenizer.encode_signal(x)["input_ids"])
    assert loaded.get_vocab() == tokenizer.get_vocab()
    assert torch.equal(loaded.decode_signal(tokenizer.encode_signal(x)["input_ids"]), mulaw_decode(mulaw_encode(x)))

    # the reference keeps only char_lookup_codepoints.json: the file alone is enough
    del config["char_lookup_codepoints"]
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    assert AutoTokenizer.from_pretrained(tmp_path).char_lookup_codepoints == tokenizer.char_lookup_codepoints


def test_decoding_writes_no_files(trained, tmp_path, monkeypatch):
    folder = tmp_path / "tok"
    trained[1].save_pretrained(folder)
    loaded = AutoTokenizer.from_pretrained(folder)
    monkeypatch.chdir(tmp_path)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    ids = loaded.encode_signal(_signal(batch=2, steps=20))["input_ids"]
    loaded.decode_signal(ids)
    loaded.strip_forecast(ids)
    loaded.tokens_per_step(ids)
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def test_forecast_helpers(trained):
    tokenizer = trained[1]
    x = _signal(batch=2, steps=40, seed=6)
    ids = tokenizer.encode_signal(x)["input_ids"]
    per_step = tokenizer.tokens_per_step(ids)
    lengths = (ids != tokenizer.pad_token_id).sum(1)
    assert per_step == int(torch.ceil(lengths.max() / 40))
    assert tokenizer.forecast_tokens_per_step(ids, None, (40, CHANNELS, 1)) == per_step
    assert tokenizer.tokens_per_step() == CHANNELS  # nothing to measure on: the reference's fallback
    # generated streams end anywhere: partial steps are dropped, rows cut to the shortest
    cut = ids[:, : int(lengths.min()) - 1]
    stripped = tokenizer.forecast_strip_tokens(cut)
    bins = mulaw_encode(x).transpose(1, 2)
    assert stripped.ndim == 3 and stripped.shape[0] == 2 and stripped.shape[2] == CHANNELS
    assert 0 < stripped.shape[1] < 40
    assert torch.equal(stripped, bins[:, : stripped.shape[1]])


def test_push_to_hub_and_load(trained, local_hub, hub_repo_id):
    tokenizer = trained[4]
    tokenizer.push_to_hub(hub_repo_id)
    files = {sibling.rfilename for sibling in local_hub.api.repo_info(hub_repo_id).siblings}
    assert {"tokenizer.json", "tokenizer_config.json", "char_lookup_codepoints.json"} <= files
    with local_hub.fresh_cache():
        loaded = AutoTokenizer.from_pretrained(hub_repo_id)
    x = _signal(batch=2, steps=21, seed=7)
    assert type(loaded) is BPETokenizer
    assert torch.equal(loaded.encode_signal(x)["input_ids"], tokenizer.encode_signal(x)["input_ids"])


def test_bad_input_raises_value_error(trained):
    tokenizer = trained[1]
    for bad, match in [
        (torch.full((1, CHANNELS, 4), float("nan")), "NaN or inf"),
        (torch.zeros(1, CHANNELS + 1, 4), "configured for num_channels=3"),
        (torch.zeros(1, CHANNELS, 0), "empty"),
        (torch.zeros(CHANNELS), "rank-1"),
    ]:
        with pytest.raises(ValueError, match=match):
            tokenizer.encode_signal(bad)
    ids = tokenizer.encode_signal(_signal(batch=1, steps=10))["input_ids"]
    with pytest.raises(ValueError, match="Token ids must lie in"):
        tokenizer.decode_signal(torch.tensor([[len(tokenizer)]]))
    with pytest.raises(ValueError, match="empty"):
        tokenizer.decode_signal(torch.zeros(1, 0, dtype=torch.long))
    # a row that stops inside a time step (1 character for 3 channels), or channels that do not fit
    partial = tokenizer(chr(tokenizer.char_lookup_codepoints[0]))["input_ids"]
    with pytest.raises(ValueError, match="not a whole number of time steps"):
        tokenizer.decode_signal(torch.tensor([partial]))
    with pytest.raises(ValueError, match="not a whole number of time steps"):
        tokenizer.decode_signal(ids, num_channels=7)  # 30 characters
    with pytest.raises(ValueError, match="number of channels"):
        BPETokenizer(char_lookup_codepoints=tokenizer.char_lookup_codepoints).decode_signal(torch.tensor([[3, 4, 5]]))


def test_bad_configuration_raises_value_error():
    lookup = default_char_ranking()[:256]
    with pytest.raises(ValueError, match="needs its bin -> character lookup"):
        BPETokenizer()
    with pytest.raises(ValueError, match="one per bin"):
        BPETokenizer(char_lookup_codepoints=lookup[:10])
    with pytest.raises(ValueError, match="cannot be a lookup character"):
        BPETokenizer(char_lookup_codepoints=[ord(" ")] + lookup[1:])
    with pytest.raises(ValueError, match="vocab_size must be at least"):
        train_bpe_tokenizer(_signal(), vocab_size=100)
    with pytest.raises(ValueError, match="need 3 channels"):
        train_bpe_tokenizer([_signal(), torch.zeros(1, 4, 10)], vocab_size=300)
    with pytest.raises(ValueError, match="at least one signal"):
        train_bpe_tokenizer([], vocab_size=300)
