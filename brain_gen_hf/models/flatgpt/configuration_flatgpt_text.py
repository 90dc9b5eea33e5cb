"""Config of FlatGPTText: FlatGPT over BPE tokens of the signal's text form (brain-gen's `Qwen2_5_VideoText`).

The signal is written as text (one character per mu-law bin, `tokenizers/bpe_text.py`) and byte-pair encoded by
`BPETokenizer`; the LM reads those ids. A BPE token has no fixed place in a (t, h, w) grid, so the 3-D RoPE ids
are (sequence index, channel of the token's first character, 0), as in brain-gen. The channel is a function of the
token stream: the characters before a token, counted over the whole sequence, fix its channel
(`(chars_before // group_size) % num_channels`, the order `BPETokenizer.decode_signal` reads characters back in).
The config therefore stores, for every vocabulary id, how many amplitude characters the token holds
(`tokenizer_config.token_num_chars`, from `text_tokenizer_config(bpe_tokenizer)`), so that the model rebuilds the
channel of any token, including the ones it generates, from the config alone.
"""

from __future__ import annotations

from transformers import PreTrainedConfig

from ...configuration_utils import SUB_CONFIG_CLASSES, require, require_positive_int, sub_config_from
from ...tokenizers.bpe_text import METASPACE
from .configuration_flatgpt import FlatGPTBaseConfig
from .decoder_kinds import VIDEO_ROPE_BACKBONES

BPE_TEXT_TOKENIZER_TYPE = "flatgpt_bpe_text_tokenizer"


class FlatGPTTextTokenizerConfig(PreTrainedConfig):
    r"""
    What FlatGPTText needs to know of its `BPETokenizer` (build it with `text_tokenizer_config(tokenizer)`).

    Args:
        num_channels (`int`): channels per time step of the text form.
        group_size (`int`): time steps per word group of the text form.
        token_num_chars (`list[int]`): for every token id, the amplitude characters it holds (0 for the special
            tokens and the bare word marker: they have no channel).
    """

    model_type = BPE_TEXT_TOKENIZER_TYPE

    num_channels: int | None = None
    group_size: int = 1
    token_num_chars: list[int] | None = None


SUB_CONFIG_CLASSES.setdefault(BPE_TEXT_TOKENIZER_TYPE, FlatGPTTextTokenizerConfig)


def text_tokenizer_config(tokenizer) -> dict:
    """The `tokenizer_config` of a FlatGPTText reading the ids of `tokenizer` (a `BPETokenizer`)."""
    special = set(tokenizer.all_special_ids)  # [PAD], [UNK]: decoding drops them, so they hold no character
    counts = []
    for token_id in range(len(tokenizer)):
        token = tokenizer.convert_ids_to_tokens(token_id)
        counts.append(0 if token_id in special else len(token.replace(METASPACE, "")))
    return {
        "model_type": BPE_TEXT_TOKENIZER_TYPE,
        "num_channels": tokenizer.resolve_num_channels(),
        "group_size": tokenizer.group_size,
        "token_num_chars": counts,
    }


class FlatGPTTextConfig(FlatGPTBaseConfig):
    r"""
    FlatGPTText: a next-token LM over `BPETokenizer` ids with 3-D RoPE ids (token index, channel, 0) and a head
    tied to the backbone's token table.

    Args:
        tokenizer_config (`dict` or `FlatGPTTextTokenizerConfig`): `text_tokenizer_config(bpe_tokenizer)`.
        vocab_size (`int`): the BPE vocabulary size (`len(bpe_tokenizer)`).
        backbone_config (`dict` or `PreTrainedConfig`): a Qwen video decoder (`qwen2_5_vl_text` or
            `qwen3_vl_text`); its `max_position_embeddings` bounds the sequence length.

    The grid fields of FlatGPT do not apply (BPE tokens have no grid); the context is
    `backbone_config.max_position_embeddings` tokens.
    """

    model_type = "flatgpt_text"
    # No default: the tokenizer's character counts are required (transformers then never builds an argument-less
    # instance to diff against).
    has_no_defaults_at_init = True

    @property
    def rope_grid(self) -> tuple[int, int, int]:
        return (self.backbone_config.max_position_embeddings, 1, 1)

    @property
    def num_channels(self) -> int:
        return self.tokenizer_config.num_channels

    def _init_tokenizer_config(self) -> None:
        given = self.tokenizer_config
        require(
            given is not None,
            "FlatGPTText needs `tokenizer_config=text_tokenizer_config(bpe_tokenizer)`: the channel of every token "
            "comes from its character count",
        )
        if isinstance(given, dict) and "model_type" not in given:
            given = {"model_type": BPE_TEXT_TOKENIZER_TYPE, **given}
        tok = sub_config_from(given)
        require(
            tok.model_type == BPE_TEXT_TOKENIZER_TYPE,
            f"`tokenizer_config.model_type` must be {BPE_TEXT_TOKENIZER_TYPE!r}, got {tok.model_type!r}",
        )
        require_positive_int("tokenizer_config.num_channels", tok.num_channels)
        require_positive_int("tokenizer_config.group_size", tok.group_size)
        counts = tok.token_num_chars
        require(
            isinstance(counts, (list, tuple)) and len(counts) == self.vocab_size,
            f"`tokenizer_config.token_num_chars` must give one count per token id ({self.vocab_size}), got "
            f"{len(counts) if isinstance(counts, (list, tuple)) else counts!r}",
        )
        require(
            all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts),
            "`tokenizer_config.token_num_chars` must hold non-negative integers",
        )
        tok.token_num_chars = list(counts)
        self.tokenizer_config = tok

    def _validate_variant(self) -> None:
        require(
            self.backbone_type in VIDEO_ROPE_BACKBONES,
            f"FlatGPTText feeds the channel as the RoPE h id and needs a 3-D RoPE backbone {list(VIDEO_ROPE_BACKBONES)}"
            f", got {self.backbone_type!r}",
        )
        require(self.block_size == 1, f"FlatGPTText predicts one token at a time, got block_size {self.block_size}")
        require(
            self.sparse_attention is None and self.rope_layout_positions is None,
            "`sparse_attention` and `rope_layout_positions` are grid options; FlatGPTText has no token grid",
        )
