"""FlatGPTText: FlatGPT over `BPETokenizer` ids of the signal's text form (brain-gen's `Qwen2_5_VideoText` path).

Everything but the positions is FlatGPT's: the backbone's token table embeds the ids, the tied head scores them,
CrossEntropyWithCodes is the loss. Positions are (t, h, w) = (sequence index, channel, 0), the channel of a token
coming from the characters before it (`configuration_flatgpt_text.py`). `generate()` is transformers' loop: the
channels of the whole sequence (context and generated ids) are recomputed at every step, so cached and uncached
generation see the same positions. `forecast(signal, horizon, bpe_tokenizer=...)` tokenizes, rolls out and decodes
through the `BPETokenizer` (the config holds only its character counts).
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn
from transformers.cache_utils import Cache
from transformers.utils.generic import can_return_tuple

from ...compat import CACHE_KWARG, cache_from_kwargs, cache_of
from ...forecasting import ForecastOutput
from ...modeling_utils import GENERATION_FORWARD_KWARGS, reject_unknown_kwargs
from ...tokenizers.mulaw import mulaw_decode
from .backbones import FlatGPTBackbone
from .configuration_flatgpt_text import FlatGPTTextConfig
from .modeling_flatgpt import FlatGPTLanguageModel, FlatGPTOutput, codes_cross_entropy, sampler


def text_channel_ids(input_ids: torch.Tensor, token_num_chars: torch.Tensor, num_channels: int, group_size: int):
    """`(B, L)` channel of every token of sequences that start at the beginning of the text (-1: no character).

    A token's channel is that of its first character: `(chars_before // group_size) % num_channels`.
    """
    counts = token_num_chars.to(input_ids.device)[input_ids]
    before = counts.cumsum(dim=1) - counts
    channel = (before // group_size) % num_channels
    return torch.where(counts > 0, channel, torch.full_like(channel, -1))


def text_position_ids(channel_ids: torch.Tensor, start: int) -> torch.Tensor:
    """`(3, B, L)` RoPE ids (sequence index from `start`, channel, 0)."""
    batch, length = channel_ids.shape
    t = torch.arange(start, start + length, device=channel_ids.device).expand(batch, length)
    return torch.stack([t, channel_ids, torch.zeros_like(channel_ids)])


class FlatGPTTextForCausalLM(FlatGPTLanguageModel):
    """FlatGPT over BPE tokens: backbone token table, tied head, (index, channel, 0) RoPE ids."""

    config_class = FlatGPTTextConfig

    def __init__(self, config: FlatGPTTextConfig):
        super().__init__(config)
        self.transformer = FlatGPTBackbone(config, keep_token_embedding=True)
        self.prediction_block = 1
        self.sequence_step = 1
        self._num_chars = None  # (device, token -> character count) lookup, built on use
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.transformer.model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.transformer.model.set_input_embeddings(value)

    def embed(self, input_ids: torch.Tensor, offset: int) -> torch.Tensor:
        return self.get_input_embeddings()(input_ids)

    def score(self, hidden: torch.Tensor, offset: int) -> torch.Tensor:
        return F.linear(hidden, self.get_input_embeddings().weight)

    def channel_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        """The channel of every token of `input_ids (B, L)`, sequences starting at the beginning of the text."""
        tok = self.config.tokenizer_config
        if self._num_chars is None or self._num_chars.device != input_ids.device:
            self._num_chars = torch.tensor(tok.token_num_chars, dtype=torch.long, device=input_ids.device)
        return text_channel_ids(input_ids, self._num_chars, tok.num_channels, tok.group_size)

    def resize_token_embeddings(self, new_num_tokens=None, pad_to_multiple_of=None, mean_resizing=True):
        raise ValueError(
            "FlatGPTText's vocabulary is its BPE tokenizer's (the config holds every token's character count); "
            "build a model for a new tokenizer with text_tokenizer_config(tokenizer) instead of resizing"
        )

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        use_cache: bool | None = None,
        labels: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        channel_ids: torch.LongTensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        **kwargs,
    ) -> FlatGPTOutput | tuple:
        """Next-token logits of BPE ids and, with `labels`, brain-gen's CrossEntropyWithCodes loss.

        Args:
            input_ids (`torch.LongTensor` of shape `(B, L)`): `BPETokenizer` ids, unpadded.
            cache (`Cache`, *optional*): the KV cache of the tokens before `input_ids`.
            use_cache (`bool`, *optional*): return the (extended) KV cache.
            labels (`torch.LongTensor` of shape `(B, L)`, *optional*): the clean ids (usually `input_ids`); the
                model shifts them by one (`-100` ignores a position).
            attention_mask (`torch.Tensor` of shape `(B, L)`, *optional*): accepted when all ones.
            channel_ids (`torch.LongTensor` of shape `(B, L)`, *optional*): the channel of every token (-1: none).
                Computed from `input_ids` when they start the text; required when extending a cache
                (`generate()` passes them).
            output_attentions / output_hidden_states / return_dict: as for FlatGPT.

        Returns:
            `FlatGPTOutput` (or a tuple): `logits (B, L, V)`, `loss`, `cache`, `hidden_states`, `attentions`,
            `embeddings`, `last_hidden_state`.
        """
        old_cache = kwargs.pop("past_key_values", None)
        if old_cache is not None and CACHE_KWARG == "cache":
            warnings.warn(
                "`past_key_values` is deprecated for FlatGPTTextForCausalLM.forward: pass `cache=` instead.",
                FutureWarning,
                stacklevel=2,
            )
        cache = cache_from_kwargs(cache, old_cache)
        reject_unknown_kwargs(kwargs, GENERATION_FORWARD_KWARGS, f"{type(self).__name__}.forward")
        if input_ids is None:
            raise ValueError("FlatGPTText needs `input_ids` (BPETokenizer ids, e.g. tokenizer.encode_signal(x))")
        self.check_input_ids(input_ids)
        if attention_mask is not None and not bool(attention_mask.bool().all()):
            raise ValueError("FlatGPTText reads unpadded sequences: an attention_mask with zeros is not supported")
        offset = cache.get_seq_length() if cache is not None else 0
        channel_ids = self._checked_channel_ids(input_ids, channel_ids, offset)
        if offset + input_ids.shape[1] > self.config.max_context_tokens:
            raise ValueError(
                f"positions {offset}:{offset + input_ids.shape[1]} exceed the backbone's max_position_embeddings "
                f"({self.config.max_context_tokens})"
            )
        if output_attentions is None:
            output_attentions = self.config.output_attentions
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        embeddings = self.embed(self.maybe_corrupt(input_ids), offset)
        out = self.transformer.model(
            inputs_embeds=embeddings,
            position_ids=text_position_ids(channel_ids, offset),
            use_cache=bool(use_cache),
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            **{CACHE_KWARG: cache},
        )
        hidden = out.last_hidden_state
        logits = self.score(hidden, offset)
        loss = codes_cross_entropy(logits, labels, 1) if labels is not None else None
        return FlatGPTOutput(
            loss=loss,
            logits=logits,
            hidden_states=out.hidden_states if output_hidden_states else None,
            attentions=out.attentions if output_attentions else None,
            embeddings=embeddings,
            last_hidden_state=hidden,
            **{CACHE_KWARG: cache_of(out) if use_cache else None},
        )

    def _checked_channel_ids(self, input_ids: torch.Tensor, channel_ids, offset: int) -> torch.Tensor:
        if channel_ids is None:
            if offset:
                raise ValueError(
                    "extending a KV cache needs the `channel_ids` of the new tokens (they depend on the whole "
                    "sequence): pass `model.channel_ids(full_ids)[:, -n:]`, or use generate()"
                )
            return self.channel_ids(input_ids)
        if not isinstance(channel_ids, torch.Tensor) or channel_ids.shape != input_ids.shape:
            raise ValueError(
                f"channel_ids must be a tensor shaped like input_ids {tuple(input_ids.shape)}, got "
                f"{tuple(channel_ids.shape) if isinstance(channel_ids, torch.Tensor) else type(channel_ids).__name__}"
            )
        if channel_ids.is_floating_point() or int(channel_ids.min()) < -1:
            raise ValueError("channel_ids must be integer channels (-1 for tokens without a character)")
        if int(channel_ids.max()) >= self.config.num_channels:
            raise ValueError(f"channel_ids must be below num_channels ({self.config.num_channels})")
        return channel_ids.to(torch.long)

    def prepare_inputs_for_generation(self, input_ids: torch.Tensor, **kwargs) -> dict:
        # The new tokens' channels depend on every token before them: computed on the whole sequence, then cut to
        # the ids this step feeds.
        kwargs.pop("channel_ids", None)
        inputs = super().prepare_inputs_for_generation(input_ids, **kwargs)
        inputs["channel_ids"] = self.channel_ids(input_ids)[:, -inputs["input_ids"].shape[1] :]
        return inputs

    def _forecast(
        self, input_values, horizon, generation_config, logits_processor, *, progress=None, bpe_tokenizer=None
    ) -> ForecastOutput:
        """`horizon` time steps after a context `(B, C, T)` (float signal or mu-law bins), through `bpe_tokenizer`
        (the `BPETokenizer` the model reads; required: the config holds only its character counts).

        Each example is tokenized and rolled out on its own (BPE gives examples different lengths) until its new
        tokens hold `horizon` whole time steps, in one context window (no sliding: the positions of a text have no
        grid to restart on). Returns `values` (B, C, horizon) mu-law decoded, `codes` (B, C, horizon) bins and
        `tokens`: the generated ids, right-padded with the pad id (B, n).
        """
        if bpe_tokenizer is None:
            raise ValueError(
                "FlatGPTText.forecast needs `bpe_tokenizer=` (the BPETokenizer whose ids the model reads; the config "
                "holds only each token's character count)"
            )
        tok = self.config.tokenizer_config
        if bpe_tokenizer.group_size != tok.group_size or len(bpe_tokenizer) != self.config.vocab_size:
            raise ValueError(
                f"bpe_tokenizer (group_size {bpe_tokenizer.group_size}, {len(bpe_tokenizer)} tokens) is not this "
                f"model's tokenizer (group_size {tok.group_size}, {self.config.vocab_size} tokens)"
            )
        if (
            not isinstance(input_values, torch.Tensor)
            or input_values.ndim != 3
            or input_values.shape[1] != tok.num_channels
        ):
            raise ValueError(f"input_values must be a (B, {tok.num_channels}, T) signal or bins tensor")
        if input_values.shape[-1] % tok.group_size:
            raise ValueError(
                f"the context length {input_values.shape[-1]} must be a multiple of group_size {tok.group_size} so "
                "that the forecast starts a new word group"
            )
        choose = sampler(generation_config, logits_processor)
        use_cache = generation_config.use_cache is not False
        block = tok.num_channels * tok.group_size  # characters per group of time steps
        needed = -(-horizon // tok.group_size) * block
        bins, new_ids = [], []
        for example in input_values:
            ids = bpe_tokenizer.encode_signal(example[None].cpu())["input_ids"].to(self.device)
            generated = self._roll_out_characters(ids, needed, choose, use_cache)
            new_ids.append(generated[0])
            bins.append(bpe_tokenizer.strip_forecast(generated)[0, :horizon].T)  # (C, horizon)
        codes = torch.stack(bins).to(input_values.device)
        tokens = torch.nn.utils.rnn.pad_sequence(new_ids, batch_first=True, padding_value=bpe_tokenizer.pad_token_id)
        return ForecastOutput(values=mulaw_decode(codes, bpe_tokenizer.mu), codes=codes, tokens=tokens)

    def _roll_out_characters(self, ids: torch.Tensor, characters: int, choose, use_cache: bool) -> torch.Tensor:
        """New ids after `ids (1, L)` until they hold at least `characters` amplitude characters."""
        counts = torch.tensor(self.config.tokenizer_config.token_num_chars, device=ids.device)
        sequence, generated, held = ids, [], 0
        out = self(sequence, use_cache=use_cache)
        while held < characters:
            next_id = choose(out.logits[:, -1:])
            generated.append(next_id)
            held += int(counts[next_id].sum())
            sequence = torch.cat([sequence, next_id], dim=1)
            if held >= characters:
                break
            if use_cache:
                channel = self.channel_ids(sequence)[:, -1:]
                out = self(next_id, cache=cache_of(out), use_cache=True, channel_ids=channel)
            else:
                out = self(sequence)
        return torch.cat(generated, dim=1)


__all__ = ["FlatGPTTextForCausalLM", "text_channel_ids", "text_position_ids"]
