"""FlatGPT language models over flattened brain-token grids (brain-gen `models/flatgpt.py`).

All six variants (the amplitude LMs here, the brain-tokenizer LMs in `modeling_flatgpt_rvq.py`) are composed
the same way. Each `...ForCausalLM.__init__` builds, from the shared modules:

* `transformer`: the backbone (`backbones.FlatGPTBackbone`, a transformers decoder fed with FlatGPT's positions);
* its input embedding and head (`flatgpt_layers` / `rvq_layers`, or the backbone's own token table, tied),
  which its `embed(input_ids, offset)` / `score(hidden, offset)` call with the sequence offset of the first token;
* its sequence geometry: `prediction_block` (position p's logits score the tokens p + 1 .. p + prediction_block,
  brain-gen's block_size or a whole RVQ stack), `codes_per_position` (ids one backbone position reads) and
  `sequence_step` (ids per time step: sliding windows keep this alignment).

What they share once built lives in `FlatGPTLanguageModel`: `forward` (embed -> backbone -> head ->
CrossEntropyWithCodes), `generate()` (transformers' loop; whole blocks through the windowed rollout), the
sliding-window rollout (`rollout.py`), `forecast` (`brain_gen_hf.forecasting.ForecastMixin`) and
`resize_context`. The amplitude LMs read mu-law bins through their flat HF tokenizer (`AmplitudeLMMixin`,
`tokenization_flatgpt.py`); the RVQ LMs through their brain tokenizer (`BrainTokenizerLMMixin`).
"""

from __future__ import annotations

import copy
import math
import numbers
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationConfig, LogitsProcessorList, PreTrainedTokenizerBase
from transformers.cache_utils import Cache
from transformers.generation import GenerationMixin
from transformers.utils import ModelOutput
from transformers.utils.generic import can_return_tuple

from ...compat import CACHE_KWARG, cache_from_kwargs, cache_of
from ...forecasting import ForecastMixin, ForecastOutput, choose_next, resolve_generation_config
from ...forecasting.sampling import build_logits_processor
from ...modeling_utils import (
    GENERATION_FORWARD_KWARGS,
    _check_index_dtype,
    check_has_data,
    check_labels,
    reject_unknown_kwargs,
)
from ...tokenizers.mulaw import mulaw_decode, mulaw_encode
from .backbones import FlatGPTBackbone, FlatGPTPreTrainedModel
from .configuration_flatgpt import FlatGPTConfig, FlatGPTEmbedsConfig, FlatGPTMixConfig
from .flatgpt_layers import ChannelHead, ListEmbedding, MixEmbedding, MixHead, corrupt_tokens
from .rollout import windowed_rollout
from .tokenization_flatgpt import layout_tokenizer, tokenizer_from_lm_config


@dataclass
class FlatGPTOutput(ModelOutput):
    """Shapes for `input_ids (B, L)` (FlatGPTMix: `(B*C, T)` channel rows, `B, L = B, T` for its backbone).

    loss: CrossEntropyWithCodes (mean next-token CE) when `labels` are given.
    logits: `(B, L, V)` (`(B*C, T, V)` for FlatGPTMix); position p predicts token p + block_size.
    cache: the KV cache when `use_cache` (transformers `Cache`); named `past_key_values` on transformers < 5.24,
        whose `generate()` reads it under that name (`compat.cache_of(output)` reads either).
    hidden_states: with `output_hidden_states`, `num_hidden_layers + 1` tensors `(B, L, hidden)`: the embedding
        output, then each decoder layer's (the last one after the final norm), as transformers' decoders return them.
    attentions: with `output_attentions` (eager attention), one `(B, heads, L, L + past)` tensor per layer.
    embeddings: the token embeddings fed to the backbone (what causality checks differentiate against).
    last_hidden_state: the backbone output before the head, `(B, L, hidden)`.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    # One field under the installed release's name: 5.24's ModelOutput maps `past_key_values` onto `cache`, so
    # declaring both would let the second overwrite the first.
    if CACHE_KWARG == "cache":
        cache: Cache | None = None
    else:
        past_key_values: Cache | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None
    embeddings: torch.Tensor | None = None
    last_hidden_state: torch.Tensor | None = None


def codes_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, block_size: int) -> torch.Tensor:
    """brain-gen's CrossEntropyWithCodes: logits at p scored against the clean code at p + block_size."""
    labels = check_labels(labels, num_classes=logits.shape[-1])
    if labels.shape != logits.shape[:-1]:
        raise ValueError(
            f"labels must have the shape of input_ids {tuple(logits.shape[:-1])} (the clean codes; the "
            f"model shifts them by block_size itself), got {tuple(labels.shape)}"
        )
    shifted_logits = logits[:, :-block_size]
    targets = labels[:, block_size:]
    return F.cross_entropy(shifted_logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), ignore_index=-100)


class FlatGPTLanguageModel(ForecastMixin, FlatGPTPreTrainedModel, GenerationMixin):
    """What every FlatGPT variant shares once its `__init__` has built `transformer`, its embedding and head
    (`embed` / `score`) and set `prediction_block`, `codes_per_position` and `sequence_step`."""

    codes_per_position = 1
    rows_per_example = 1  # FlatGPTMix: one input row per channel

    def embed(self, input_ids: torch.Tensor, offset: int) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must define embed()")

    def score(self, hidden: torch.Tensor, offset: int) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must define score()")

    # ---------------------------------------------------------------- forward
    def check_input_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        self.check_tokens(input_ids, vocab_size=self.config.vocab_size, ndim=2)
        if input_ids.shape[0] % self.rows_per_example:
            raise ValueError(
                f"{type(self).__name__} input_ids are (B*C, T) channel rows: {input_ids.shape[0]} rows "
                f"is not a multiple of the {self.rows_per_example} channels"
            )
        if input_ids.shape[1] % self.codes_per_position:
            raise ValueError(
                f"input_ids must hold whole positions of {self.codes_per_position} codes (flat codes in "
                f"(time, latent, level) order), got length {input_ids.shape[1]}"
            )
        return input_ids

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        use_cache: bool | None = None,
        labels: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        **kwargs,
    ) -> FlatGPTOutput | tuple:
        """Next-token logits of `input_ids` and, with `labels`, brain-gen's CrossEntropyWithCodes loss.

        Args:
            input_ids (`torch.LongTensor` of shape `(B, L)`): token ids in `[0, vocab_size)` (int64/int32), e.g.
                `model.tokenize(grid)`. FlatGPTMix reads `(B*C, T)` channel rows (C = `config.num_channels`,
                channel-major per example). L fits the token grid (`config.max_context_tokens`; with a cache,
                cached + new tokens).
            cache (`Cache`, *optional*): the KV cache of the tokens before `input_ids` (`past_key_values` is its old
                name, deprecated on transformers >= 5.24).
            use_cache (`bool`, *optional*): return the (extended) KV cache.
            labels (`torch.LongTensor` of shape `(B, L)`, *optional*): the clean codes, usually `input_ids` itself;
                the model shifts them by `block_size` (`-100` ignores a position).
            attention_mask (`torch.Tensor` of shape `(B, L)`, *optional*): accepted when all ones; FlatGPT sequences
                are unpadded token grids, so zeros raise `ValueError`.
            output_attentions (`bool`, *optional*): return each layer's attention weights (eager attention;
                default `config.output_attentions`).
            output_hidden_states (`bool`, *optional*): return the embedding output and each layer's hidden states
                (default `config.output_hidden_states`).
            return_dict (`bool`, *optional*): `False` returns the output's non-`None` fields as a tuple (default
                `config.return_dict`).

        Returns:
            `FlatGPTOutput` (or a tuple): `logits (B, L, V)` (FlatGPTMix `(B*C, T, V)`), `loss`, `cache`,
            `hidden_states`, `attentions`, `embeddings` and `last_hidden_state` (see `FlatGPTOutput`).

        Also accepts the keywords transformers' generation passes (`cache_position`, `logits_to_keep`, ... are
        ignored); any other keyword raises `TypeError`.
        """
        old_cache = kwargs.pop("past_key_values", None)
        if old_cache is not None and CACHE_KWARG == "cache":
            warnings.warn(
                f"`past_key_values` is deprecated for {type(self).__name__}.forward: this transformers release names "
                "the KV cache `cache`; pass `cache=` instead.",
                FutureWarning,
                stacklevel=2,
            )
        cache = cache_from_kwargs(cache, old_cache)
        reject_unknown_kwargs(kwargs, GENERATION_FORWARD_KWARGS, f"{type(self).__name__}.forward")
        if input_ids is None:
            raise ValueError("FlatGPT needs `input_ids` (token codes); use `model.tokenize(grid)` for a token grid")
        return self.lm_forward(
            input_ids,
            cache=cache,
            use_cache=use_cache,
            labels=labels,
            attention_mask=attention_mask,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )

    def lm_forward(
        self,
        input_ids: torch.Tensor,
        *,
        cache: Cache | None,
        use_cache: bool | None,
        labels: torch.Tensor | None,
        attention_mask: torch.Tensor | None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
    ) -> FlatGPTOutput:
        """embed -> backbone -> head (-> loss) for checked keywords; `output_*` default to the config's."""
        self.check_input_ids(input_ids)
        if attention_mask is not None and not bool(attention_mask.bool().all()):
            raise ValueError(
                "FlatGPT sequences are unpadded token grids: an attention_mask with zeros is not supported"
            )
        if output_attentions is None:
            output_attentions = self.config.output_attentions
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        self._check_cache_extension(input_ids, cache)
        offset = self.transformer.cache_length(cache)
        embeddings = self.embed(self.maybe_corrupt(input_ids), offset)
        out = self.transformer(
            embeddings,
            cache=cache,
            use_cache=bool(use_cache),
            # Passed through as given: transformers >= 5.24 also takes a list of layer indices to keep.
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )
        hidden = out.last_hidden_state
        logits = self.score(hidden, offset)
        loss = codes_cross_entropy(logits, labels, self.prediction_block) if labels is not None else None
        return FlatGPTOutput(
            loss=loss,
            logits=logits,
            hidden_states=out.hidden_states if output_hidden_states else None,
            attentions=out.attentions if output_attentions else None,
            embeddings=embeddings,
            last_hidden_state=hidden,
            **{CACHE_KWARG: cache_of(out) if use_cache else None},
        )

    def _check_cache_extension(self, input_ids: torch.Tensor, cache: Cache | None) -> None:
        block = self.prediction_block
        if block > 1 and self.transformer.cache_length(cache) > 0 and input_ids.shape[1] % block:
            raise ValueError(
                f"block-causal models (blocks of {block} tokens) extend a cache by whole blocks; use "
                "`forecast()` for generation"
            )

    def _next_block_logits(self, input_ids: torch.Tensor, cache: Cache | None, *, decode: bool) -> torch.Tensor:
        """The logits of the last prediction block for the windowed rollout, as an ordinary tensor.

        `input_ids` is a whole context (`decode=False`, prefilling `cache` if one is given) or, with `decode`, the
        new block extending `cache`. The model runs in inference mode: without any autograd bookkeeping a small
        model's decode step is noticeably faster (~15%), on the same kernels. The logits are cloned out of it so that
        a sampler gets a tensor it may edit in place, and the ids it returns are ordinary tensors.
        """
        with torch.inference_mode():
            if decode:
                # forward() minus its per-call id-range check (two reductions and host syncs) and output
                # containers: the context was validated up front and new ids are drawn over the vocabulary.
                self._check_cache_extension(input_ids, cache)
                offset = self.transformer.cache_length(cache)
                hidden = self.transformer(self.embed(input_ids, offset), cache=cache, use_cache=True).last_hidden_state
                logits = self.score(hidden, offset)
            else:
                logits = self(input_ids, use_cache=cache is not None, **{CACHE_KWARG: cache}).logits
        return logits[:, -self.prediction_block :].clone()

    def maybe_corrupt(self, input_ids: torch.Tensor) -> torch.Tensor:
        cfg = self.config.token_corruption
        if not (self.training and cfg and cfg["enabled"]):
            return input_ids
        return corrupt_tokens(
            input_ids,
            self.config.vocab_size,
            p_start=cfg["p_start"],
            p_end=cfg["p_end"],
            tokens_per_step=cfg["tokens_per_step"],
            block_len_steps=cfg["block_len_steps"],
        )

    # ---------------------------------------------------------------- generation
    def generate(
        self, input_ids: torch.Tensor | None = None, generation_config: GenerationConfig | None = None, **kwargs
    ) -> torch.Tensor | ModelOutput:
        """transformers' `generate()`. A model that predicts several codes per position (stacked RVQ variants)
        emits whole positions through the KV-cached windowed rollout instead, sampled from the same
        GenerationConfig fields (do_sample, temperature, top_k, top_p, min_p, use_cache)."""
        if self.prediction_block == 1:
            use_cache = kwargs.get("use_cache", (generation_config or self.generation_config).use_cache)
            given = cache_from_kwargs(kwargs.get("cache"), kwargs.get("past_key_values"))
            if self.transformer.has_own_cache_type and use_cache is not False and given is None:
                # generate() starts every model with a DynamicCache; this backbone's decoder keeps another kind.
                kwargs[CACHE_KWARG] = self.new_cache()
            return super().generate(input_ids, generation_config=generation_config, **kwargs)
        if self.codes_per_position == 1:
            raise ValueError(
                f"generate() emits one token per step, but this model predicts blocks of "
                f"{self.prediction_block}; use `forecast()`/`generate_windowed()`"
            )
        # Several codes per position are sampled together from one hidden state: transformers' one-token loop
        # cannot express that.
        config = copy.deepcopy(generation_config if generation_config is not None else self.generation_config)
        rest = config.update(**kwargs)
        mask = rest.pop("attention_mask", None)
        if mask is not None and not bool(mask.bool().all()):
            raise ValueError("FlatGPT sequences are unpadded: an attention_mask with zeros is not supported")
        if rest:
            raise ValueError(f"generate() of {type(self).__name__} does not support {sorted(rest)}")
        new_tokens = config.max_new_tokens
        if new_tokens is None or new_tokens % self.prediction_block:
            raise ValueError(
                f"{type(self).__name__} generates whole positions of {self.prediction_block} codes: "
                f"max_new_tokens must be a multiple of it, got {new_tokens}"
            )
        config = resolve_generation_config(self, config)
        self.check_input_ids(input_ids)
        generated = self.generate_windowed(
            input_ids,
            new_tokens,
            sampler(config),
            window=input_ids.shape[1] + new_tokens,
            use_cache=config.use_cache is not False,
        )
        return torch.cat([input_ids, generated], dim=1)

    def new_cache(self) -> Cache:
        """An empty cache of the backbone decoder's own type (dynamic, sliding-window, hybrid, recurrent)."""
        return self.transformer.new_cache()

    @torch.no_grad()
    def generate_windowed(
        self,
        input_ids: torch.Tensor,
        max_new_tokens: int,
        sample_fn: Callable[[torch.Tensor], torch.Tensor],
        *,
        window: int | None = None,
        sliding_window_overlap: float | int = 0.5,
        use_cache: bool = True,
        progress: bool | None = None,
    ) -> torch.Tensor:
        """Roll out `max_new_tokens` tokens past any context length (see `rollout.py`).

        `window`: tokens of context kept (default: the initial context length); `sliding_window_overlap`: what a
        slide drops (an int counts tokens, a float is a fraction of the window; whole time steps). Within a window,
        new blocks go through the KV cache (`use_cache`) or the whole context is re-run. `sample_fn(logits (B, n,
        V)) -> ids (B, n)`, e.g. `flatgpt.modeling_flatgpt.sampler(GenerationConfig(...))`. `progress`: a tqdm bar
        over the new tokens (`None`: only long rollouts, in a terminal or notebook). Returns the generated tokens.
        """
        was_training = self.training
        self.eval()
        try:
            return windowed_rollout(
                self,
                input_ids,
                max_new_tokens,
                sample_fn,
                window=window,
                sliding_window_overlap=sliding_window_overlap,
                use_cache=use_cache,
                progress=progress,
            )
        finally:
            self.train(was_training)

    def _rollout(
        self,
        input_ids: torch.Tensor,
        n_tokens: int,
        generation_config,
        logits_processor,
        *,
        max_context_tokens,
        sliding_window_overlap,
        progress,
        delimiter_id: int | None = None,
    ) -> torch.Tensor:
        """The forecast's rollout: `n_tokens` ids chosen by the GenerationConfig and the logits processors.

        With `delimiter_id` (the DelimitedTokenizer's), every step of the rollout keeps the layout it was trained
        on, `[x_0 (C bins), D, x_1, D, ...]`: bins are chosen among the bins and the step's last slot is the
        delimiter, so the model reads well-formed steps and every forecast step decodes to bins.
        """
        choose = sampler(generation_config, logits_processor)
        if delimiter_id is not None:
            choose = _delimited_steps(choose, self.sequence_step, delimiter_id)
        return windowed_rollout(
            self,
            input_ids,
            n_tokens,
            choose,
            window=max_context_tokens,
            sliding_window_overlap=sliding_window_overlap,
            use_cache=generation_config.use_cache is not False,
            progress=progress,
        )

    # ---------------------------------------------------------------- vocabulary resizing
    def resize_token_embeddings(
        self,
        new_num_tokens: int | None = None,
        pad_to_multiple_of: int | None = None,
        mean_resizing: bool = True,
    ) -> nn.Module:
        """transformers' `resize_token_embeddings`; the vocabulary size is kept on `config.vocab_size` and on
        `config.backbone_config.vocab_size` (one value, as the config requires)."""
        self.check_vocabulary_resizable(new_num_tokens)
        embeddings = super().resize_token_embeddings(new_num_tokens, pad_to_multiple_of, mean_resizing)
        self.config.vocab_size = self.config.backbone_config.vocab_size
        return embeddings

    def check_vocabulary_resizable(self, new_num_tokens: int | None) -> None:
        """A vocabulary whose last id is the DelimitedTokenizer's delimiter cannot grow or shrink: the delimiter
        would no longer be the last id (which the config and tokenizer require)."""
        tokenizer = getattr(self.config.tokenizer_config, "tokenizer_class", None)
        if tokenizer == "DelimitedTokenizer" and new_num_tokens not in (None, self.config.vocab_size):
            raise ValueError(
                f"{type(self).__name__} reads a DelimitedTokenizer layout whose delimiter is the last id "
                f"({self.config.vocab_size - 1}); resizing the vocabulary to {new_num_tokens} would move it. Build a "
                "model with the new vocab_size (and delimiter_id = vocab_size - 1) instead"
            )

    # ---------------------------------------------------------------- context resizing
    def resize_context(
        self,
        *,
        input_shape: list[int] | None = None,
        rope_theta: float | None = None,
        max_position_embeddings: int | None = None,
    ) -> None:
        """Grow the temporal context of a trained model (spatial layout fixed) and optionally retune RoPE."""
        config = self.config
        old_shape, old_reduced = list(config.input_shape), config.reduced_shape
        new_shape = list(input_shape) if input_shape is not None else old_shape
        if len(new_shape) != 3 or new_shape[1:] != old_shape[1:]:
            raise ValueError(
                f"resize_context changes only the time length; input_shape must be "
                f"(T, {old_shape[1]}, {old_shape[2]}), got {new_shape}"
            )
        if new_shape[0] % config.temporal_reduction:
            raise ValueError(
                f"input_shape[0] ({new_shape[0]}) must be a multiple of temporal_reduction "
                f"({config.temporal_reduction})"
            )
        if new_shape[0] // config.temporal_reduction < old_reduced[0]:
            raise ValueError(
                f"resize_context cannot shrink the context ({old_reduced[0]} reduced steps -> "
                f"{new_shape[0] // config.temporal_reduction})"
            )
        for name, value in (("rope_theta", rope_theta), ("max_position_embeddings", max_position_embeddings)):
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, numbers.Real)
                or not math.isfinite(value)
                or not value > 0
            ):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        config.input_shape = new_shape
        self.transformer.set_grid(config.rope_grid)
        self.transformer.set_rope(rope_theta=rope_theta, max_position_embeddings=max_position_embeddings)
        backbone = self.transformer.model.config
        if getattr(backbone, "rope_parameters", None) is not None:  # recurrent decoders have no RoPE
            config.backbone_config.rope_parameters = dict(backbone.rope_parameters)
        if getattr(backbone, "max_position_embeddings", None) is not None:
            config.backbone_config.max_position_embeddings = backbone.max_position_embeddings


def sampler(
    generation_config: GenerationConfig, logits_processor: LogitsProcessorList | None = None
) -> Callable[[torch.Tensor], torch.Tensor]:
    """`logits (B, n, V) -> ids (B, n)` as a GenerationConfig says (greedy, or sampled through transformers'
    warpers; the global torch RNG drives the draws), for `generate_windowed`."""
    if logits_processor is None:
        logits_processor = build_logits_processor(generation_config)
    return lambda logits: choose_next(logits, generation_config, logits_processor)


def _delimited_steps(choose: Callable, group: int, delimiter_id: int) -> Callable:
    """`choose` for a rollout that starts right after a delimiter: slot `k` of the rollout (counted over the
    calls, which come in order) is a delimiter slot iff `(k + 1) % group == 0`."""
    generated = 0

    def choose_in_layout(logits: torch.Tensor) -> torch.Tensor:
        nonlocal generated
        n = logits.shape[1]
        is_delimiter = (torch.arange(generated, generated + n, device=logits.device) + 1) % group == 0
        generated += n
        logits = logits.clone()
        logits[:, ~is_delimiter, delimiter_id] = float("-inf")
        ids = choose(logits)
        return torch.where(is_delimiter, torch.full_like(ids, delimiter_id), ids)

    return choose_in_layout


# -------------------------------------------------------------------------------------------- amplitude LMs
def check_token_grid(grid, vocab_size: int, channels: int, name: str = "token grid") -> torch.Tensor:
    """A bin grid `(B, T, C)` / `(B, T, C, W)` of int64/int32 ids inside the vocabulary, `C * W == channels`;
    returned 4-D."""
    if not isinstance(grid, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of token ids (B, T, C, W), got {type(grid).__name__}")
    check_has_data(grid, name)
    if grid.is_floating_point() or grid.dtype == torch.bool or grid.is_complex():
        raise ValueError(
            f"{name} must hold integer token ids (mu-law bins), got dtype {grid.dtype}; quantise the "
            "signal first (e.g. brain_gen_hf.tokenizers.mulaw)"
        )
    _check_index_dtype(grid, name)  # as `check_tokens`: smaller integer dtypes are not read as ids
    if grid.ndim == 3:
        grid = grid.unsqueeze(-1)
    if grid.ndim != 4:
        raise ValueError(f"{name} must have shape (B, T, C) or (B, T, C, W), got {tuple(grid.shape)}")
    if grid.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(grid.shape)})")
    if grid.shape[2] * grid.shape[3] != channels:
        # The sequence would be laid out for another channel count: grid positions and per-slot tables misalign.
        raise ValueError(
            f"{name} of shape {tuple(grid.shape)} has {grid.shape[2] * grid.shape[3]} channels per time "
            f"step (C * W), the model's input_shape has {channels}"
        )
    lo, hi = int(grid.min()), int(grid.max())
    if lo < 0 or hi >= vocab_size:
        raise ValueError(f"{name} has ids in [{lo}, {hi}], outside the vocabulary [0, {vocab_size - 1}]")
    return grid


def amplitude_sequence_step(config) -> int:
    """Sequence ids per time step of an amplitude LM: its grid step, plus the delimiter for the
    DelimitedTokenizer."""
    if config.tokenizer_class == "DelimitedTokenizer":
        return config.grid_channels + 1
    return config.tokens_per_grid_step


class AmplitudeLMMixin:
    """The amplitude LMs' side of the token layout: the flat HF tokenizer (`tokenizer`), token grids in
    (`tokenize`), forecasts of mu-law signals (`_forecast`) and the tokenizer saved with the weights."""

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        """The flat tokenizer the model encodes and decodes with, built from the config (stateless and cheap,
        ~1 ms); the same one `AutoTokenizer.from_pretrained(saved_folder)` loads."""
        return tokenizer_from_lm_config(self.config)

    def tokenize(self, grid: torch.Tensor) -> torch.Tensor:
        """Token grid `(B, T, C[, W])` of integer bins -> the model's `input_ids`, through the flat tokenizer."""
        # Checked here (dtype, shape, channels, bins within the tokenizer's mu), then laid out directly.
        grid = check_token_grid(grid, self.config.tokenizer_mu + 1, self.config.grid_channels)
        return layout_tokenizer(self.config)._flatten_grid(grid)

    def context_bins(self, input_values: torch.Tensor, *, channel_names: list[str] | None = None) -> torch.Tensor:
        """A context `(B, C, T)` -> int64 mu-law bins `(B, C, T)`: a float signal in the units the tokenizer
        quantises (mu-law of `[-1, 1]`, mu = `config.tokenizer_mu`), or integer bins as the LM was trained on."""
        if not isinstance(input_values, torch.Tensor):
            raise ValueError(f"input_values must be a torch.Tensor (B, C, T), got {type(input_values).__name__}")
        check_has_data(input_values, "input_values")
        channels = self.config.grid_channels
        if input_values.ndim != 3:
            raise ValueError(
                f"input_values must be a signal or bins (B, C, T), got shape {tuple(input_values.shape)}"
                "; a token grid (B, T, C, W) goes through `model.tokenize(grid)`"
            )
        if input_values.shape[1] != channels:
            raise ValueError(
                f"input_values has {input_values.shape[1]} channels (dim 1 of shape "
                f"{tuple(input_values.shape)}), the model reads {channels} per time step"
            )
        if channel_names is not None:
            self.config.check_signal_metadata(channel_names=channel_names, num_channels=channels)
        mu = self.config.tokenizer_mu
        if input_values.is_floating_point():
            signal = self.check_signal(input_values, name="input_values", ndim=3)
            return mulaw_encode(signal.float(), mu)
        bins = check_token_grid(input_values.transpose(1, 2), mu + 1, channels, name="input_values")
        return bins[..., 0].transpose(1, 2)

    def _forecast(
        self,
        input_values,
        horizon,
        generation_config,
        logits_processor,
        *,
        progress=None,
        channel_names=None,
        max_context_tokens=None,
        sliding_window_overlap=0.5,
    ) -> ForecastOutput:
        """`horizon` time steps after a context `(B, C, T)` (see `context_bins`; the time axis is the token grid's).

        Returns `values` (B, C, horizon): the mu-law decoded forecast in `[-1, 1]`; `codes` (B, C, horizon): the
        predicted bins; `tokens`: the generated ids, `(B, n)` (FlatGPTMix: `(B, C, t)`, its channel rows).
        `max_context_tokens` (default: the context) caps the window in tokens, `sliding_window_overlap` is what a
        slide drops (see `generate_windowed`).
        """
        tokenizer = layout_tokenizer(self.config)
        bins = self.context_bins(input_values, channel_names=channel_names)
        input_ids = tokenizer.flatten(bins.transpose(1, 2).unsqueeze(-1))
        tokens = self._rollout(
            input_ids,
            horizon * self.sequence_step,
            generation_config,
            logits_processor,
            max_context_tokens=max_context_tokens,
            sliding_window_overlap=sliding_window_overlap,
            progress=progress,
            delimiter_id=self.config.tokenizer_config.delimiter_id,
        )
        codes = tokenizer.continuation_to_bins(tokens).transpose(1, 2)
        if self.rows_per_example > 1:  # FlatGPTMix: the (B*C, t) channel rows, grouped per example
            tokens = tokens.reshape(bins.shape[0], self.rows_per_example, -1)
        return ForecastOutput(values=mulaw_decode(codes, self.config.tokenizer_mu), codes=codes, tokens=tokens)

    def save_pretrained(self, save_directory: str | os.PathLike, *args, **kwargs):
        """Weights and config, and the flat tokenizer's files (so `AutoTokenizer.from_pretrained(folder)` works)."""
        result = super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True):
            self.tokenizer.save_pretrained(save_directory)
        return result


class FlatGPTForCausalLM(AmplitudeLMMixin, FlatGPTLanguageModel):
    """FlatGPT: tokens embedded with the backbone decoder's token table (`get_input_embeddings()`), tied head."""

    config_class = FlatGPTConfig

    def __init__(self, config: FlatGPTConfig):
        super().__init__(config)
        self.transformer = FlatGPTBackbone(config, keep_token_embedding=True)
        self.prediction_block = config.block_size
        self.sequence_step = amplitude_sequence_step(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        """The backbone's token table; the head scores with its weight (tied)."""
        return self.transformer.model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.transformer.model.set_input_embeddings(value)

    def embed(self, input_ids: torch.Tensor, offset: int) -> torch.Tensor:
        return self.transformer.model.get_input_embeddings()(input_ids)

    def score(self, hidden: torch.Tensor, offset: int) -> torch.Tensor:
        return F.linear(hidden, self.transformer.model.get_input_embeddings().weight)


class FlatGPTEmbedsForCausalLM(AmplitudeLMMixin, FlatGPTLanguageModel):
    """FlatGPTEmbeds: one embedding table per channel slot; the head at slot i is tied to table i + 1."""

    config_class = FlatGPTEmbedsConfig

    def __init__(self, config: FlatGPTEmbedsConfig):
        super().__init__(config)
        self.transformer = FlatGPTBackbone(config, keep_token_embedding=False)
        self.pre_embedding = ListEmbedding(config.vocab_size, config.hidden_size, config.num_slots)
        self.head = ChannelHead(self.pre_embedding)
        self.prediction_block = config.block_size
        self.sequence_step = amplitude_sequence_step(config)
        self.post_init()

    def get_input_embeddings(self) -> ListEmbedding:
        """The per-slot token tables (a `ListEmbedding` of `num_slots` `nn.Embedding`s): there is no single table."""
        return self.pre_embedding

    def set_input_embeddings(self, value: ListEmbedding) -> None:
        """Replace the per-slot tables by a `ListEmbedding` of as many slots; the tied head scores with the new ones."""
        if not isinstance(value, ListEmbedding) or value.num_slots != self.config.num_slots:
            raise ValueError(
                f"{type(self).__name__} embeds each of its {self.config.num_slots} channel slots with its own table: "
                f"set_input_embeddings needs a ListEmbedding of {self.config.num_slots} tables, got "
                f"{type(value).__name__}"
            )
        self.pre_embedding = value
        self.head = ChannelHead(value)

    def resize_token_embeddings(
        self,
        new_num_tokens: int | None = None,
        pad_to_multiple_of: int | None = None,
        mean_resizing: bool = True,
    ) -> ListEmbedding:
        """Resize every slot's table to `new_num_tokens` ids (rounded up to a multiple of `pad_to_multiple_of`).

        Kept ids keep their rows. New rows start at the mean of their table's old rows (`mean_resizing`, so that
        new ids do not outscore the trained ones through the tied head), else at the model's init. The
        vocabulary is updated on `config.vocab_size` and `config.backbone_config.vocab_size`. Returns the tables.
        """
        if new_num_tokens is None and pad_to_multiple_of is None:
            return self.pre_embedding
        self.check_vocabulary_resizable(new_num_tokens)
        size = self.config.vocab_size if new_num_tokens is None else new_num_tokens
        if pad_to_multiple_of is not None:
            if not isinstance(pad_to_multiple_of, int) or isinstance(pad_to_multiple_of, bool):
                raise ValueError(
                    f"Asking to pad the embedding matrix to a multiple of `{pad_to_multiple_of}`, which is not and "
                    "integer. Please make sure to pass an integer"
                )
            size = math.ceil(size / pad_to_multiple_of) * pad_to_multiple_of
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise ValueError(f"new_num_tokens must be a positive integer, got {new_num_tokens!r}")
        resized = self.pre_embedding.resized(size, init=None if mean_resizing else self._init_weights)
        self.set_input_embeddings(resized)
        self.config.vocab_size = self.config.backbone_config.vocab_size = size
        return resized

    def embed(self, input_ids: torch.Tensor, offset: int) -> torch.Tensor:
        return self.pre_embedding(input_ids, offset)

    def score(self, hidden: torch.Tensor, offset: int) -> torch.Tensor:
        return self.head(hidden, offset)


class FlatGPTMixForCausalLM(AmplitudeLMMixin, FlatGPTLanguageModel):
    """FlatGPTMix: one position per time step; `input_ids` are `(B*C, T)` channel rows (channel-major per example)."""

    config_class = FlatGPTMixConfig

    def __init__(self, config: FlatGPTMixConfig):
        super().__init__(config)
        self.transformer = FlatGPTBackbone(config, keep_token_embedding=False)
        self.pre_embedding = MixEmbedding(
            config.vocab_size, config.channel_width, config.num_channels, config.mix_method
        )
        self.head = MixHead(self.pre_embedding)
        self.prediction_block = config.block_size
        self.sequence_step = 1
        self.rows_per_example = config.num_channels
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        """The token table shared by all channels; the head scores with its weight (tied)."""
        return self.pre_embedding.emb.quant_emb

    def generate(
        self, input_ids: torch.Tensor | None = None, generation_config: GenerationConfig | None = None, **kwargs
    ) -> torch.Tensor | ModelOutput:
        """transformers' `generate()` over `(B*C, T)` channel rows; returns `(B*n*C, T + new)` rows.

        The C rows of an example are one sequence (one backbone position per time step), so
        `num_return_sequences=n` copies whole examples: the n copies of example b are rows `(b*n + k)*C + c`
        (transformers would copy each row next to itself and split the examples). Beam search would rank each
        channel row on its own and raises `ValueError`.
        """
        config = copy.deepcopy(generation_config if generation_config is not None else self.generation_config)
        rest = config.update(**kwargs)
        if (config.num_beams or 1) > 1:
            raise ValueError(
                f"{type(self).__name__} has no beam search: the {self.rows_per_example} channel rows of an example "
                "are one sequence, which transformers' beam search would rank row by row; use greedy decoding or "
                "sampling (num_beams=1)"
            )
        copies = config.num_return_sequences or 1
        if copies > 1 and config.do_sample and input_ids is not None:
            channels = self.rows_per_example
            examples = self.check_input_ids(input_ids).reshape(-1, channels, input_ids.shape[1])
            input_ids = examples.repeat_interleave(copies, dim=0).flatten(0, 1)
            mask = rest.get("attention_mask")
            if mask is not None:
                rest["attention_mask"] = mask.reshape(examples.shape).repeat_interleave(copies, 0).flatten(0, 1)
            config.num_return_sequences = 1
        return super().generate(input_ids, generation_config=config, **rest)

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.pre_embedding.emb.quant_emb = value

    def embed(self, input_ids: torch.Tensor, offset: int) -> torch.Tensor:
        return self.pre_embedding(input_ids)

    def score(self, hidden: torch.Tensor, offset: int) -> torch.Tensor:
        return self.head(hidden)
