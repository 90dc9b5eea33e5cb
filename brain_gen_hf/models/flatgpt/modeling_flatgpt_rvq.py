"""RVQ FlatGPT language models: FlatGPTEmbedsRVQ (the paper LM), FlatGPTRVQ and FlatGPTMixRVQ.

Each holds its brain tokenizer (BrainTokMix or BrainOmni, built from `config.tokenizer_config`) as the frozen
sub-module `tokenizer`, so one folder holds tokenizer + LM. All three read the same `input_ids`: the flat codes
`(B, W * n_neuro * Q)` of `tokenizer.encode` in (time, latent, level) order, and return flat logits
`(B, N, K)` in the same order. A backbone position holds `config.tokens_per_position` codes (1, a stack of Q, or
a whole step of n_neuro * Q) and predicts the codes of the next position jointly, so the logits at flat index p
score the code at p + tokens_per_position (brain-gen's flattened RVQ logits and targets).

* `forward(input_ids=codes | input_values=signal, pos, sensor_type, labels)`; with a signal the loss is computed
  against its own codes.
* `encode(signal)` -> codes, `decode(codes)` -> signal, `forecast(signal, horizon)` -> the next `horizon` samples.
* `generate()`: transformers' token loop for FlatGPTEmbedsRVQ (greedy, sampling, beam search, streamers, ...). The
  stacked variants draw a position's `tokens_per_position` codes jointly from one hidden state, which transformers'
  one-token loop cannot express: their `generate()` runs the KV-cached rollout and emits whole positions, so
  `max_new_tokens` must be a multiple of `config.tokens_per_position` (a `ValueError` names the valid values; a
  partial position would not be a valid `input_ids` to continue from or to decode). They honour greedy decoding,
  sampling (temperature, top_k, top_p, min_p, `logits_processor`), `num_return_sequences`, `streamer` (every new
  code in order, one `(B,)` tensor each, after the prompt) and `return_dict_in_generate`; beam search raises
  (each beam step would have to rank `K ** tokens_per_position` joint continuations).

Embeddings: the vocabulary is the brain tokenizer's RVQ codebook (`config.vocab_size` codes per level, one table per
level), so there is no single token table: `get_input_embeddings()` returns the module of per-level
`nn.Embedding` tables, `set_input_embeddings()` takes one of the same kind (and re-ties the tied heads), and
`resize_token_embeddings()` raises (a new vocabulary needs a tokenizer with another codebook).
`get_output_embeddings()` is None: the heads score with the per-level tables (tied) or a joint Q * K projection.

`AutoTokenizer.from_pretrained(folder)` has nothing to give for these LMs (their tokenizer is a model, not a
text tokenizer): use `model.encode` / `model.decode` or `model.tokenizer`.
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass

import torch
from einops import rearrange
from torch import nn
from transformers import AutoModel, GenerationConfig, PreTrainedConfig
from transformers.cache_utils import Cache
from transformers.generation import GenerateDecoderOnlyOutput
from transformers.generation.logits_process import LogitsProcessorList
from transformers.generation.streamers import BaseStreamer
from transformers.utils.generic import can_return_tuple

from ...forecasting import ForecastOutput, resolve_generation_config
from ...forecasting.sampling import build_logits_processor
from ...modeling_utils import sub_model_from_config
from .backbones import FlatGPTBackbone
from .configuration_flatgpt_rvq import FlatGPTEmbedsRVQConfig, FlatGPTMixRVQConfig, FlatGPTRVQConfig
from .flatgpt_layers import ChannelHead, ListEmbedding
from .modeling_flatgpt import FlatGPTLanguageModel, FlatGPTOutput, sampler
from .rollout import window_arg
from .rvq_layers import (
    EmbeddingCorruptor,
    JointRVQHead,
    MixQuantizerEmbedding,
    MixRVQHead,
    QuantizerEmbedding,
    TiedRVQHead,
)


@dataclass
class FlatGPTRVQOutput(FlatGPTOutput):
    """`FlatGPTOutput` plus `input_ids`: the flat codes the model read (the tokenizer's, for a signal input)."""

    input_ids: torch.Tensor | None = None


class BrainTokenizerLMMixin:
    """The RVQ LMs' side of the token layout: the frozen brain tokenizer (`tokenizer`), signals in (`encode`,
    `forward(input_values=...)`), codes out (`decode`) and signal forecasts (`_forecast`)."""

    def _build_tokenizer(self, config: PreTrainedConfig) -> None:
        self.tokenizer = sub_model_from_config(config.tokenizer_config)
        self._freeze_tokenizer()

    def _freeze_tokenizer(self) -> None:
        if not self.config.train_tokenizer:
            self.tokenizer.requires_grad_(False)
            self.tokenizer.eval()

    def train(self, mode: bool = True) -> BrainTokenizerLMMixin:
        super().train(mode)
        if not self.config.train_tokenizer:
            self.tokenizer.eval()  # a frozen tokenizer never updates its codebooks
        return self

    # ---------------------------------------------------------------- embeddings
    def get_input_embeddings(self) -> nn.Module:
        """The per-level token tables (one `nn.Embedding` of `config.vocab_size` codes per RVQ level, in a
        `ListEmbedding`, `QuantizerEmbedding` or `MixQuantizerEmbedding`): these LMs have no single token table."""
        return self.pre_embedding

    def set_input_embeddings(self, value: nn.Module) -> None:
        """Replace the per-level tables by a module of the same kind; a tied head then scores with the new tables."""
        if type(value) is not type(self.pre_embedding):
            raise ValueError(
                f"{type(self).__name__} embeds each RVQ level with its own table: set_input_embeddings needs a "
                f"{type(self.pre_embedding).__name__} (like get_input_embeddings() returns), got "
                f"{type(value).__name__}"
            )
        self.pre_embedding = value
        head = self._tied_head()
        if head is not None:
            self.head = head

    def _tied_head(self) -> nn.Module | None:
        """A head tied to `pre_embedding` (None for an untied, joint head)."""
        raise NotImplementedError

    def resize_token_embeddings(
        self, new_num_tokens: int | None = None, pad_to_multiple_of: int | None = None, mean_resizing: bool = True
    ) -> nn.Module:
        """Refused: the vocabulary is the brain tokenizer's RVQ codebook (`config.vocab_size` must equal its
        `codebook_size`), so no code can be added or removed without a new tokenizer."""
        raise ValueError(
            f"{type(self).__name__} cannot resize its token embeddings: its vocabulary is the brain tokenizer's "
            f"RVQ codebook ({self.config.vocab_size} codes per level). Train a tokenizer with another "
            "codebook_size and build a new LM around it (`from_pretrained_tokenizer`)"
        )

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike | None, *model_args, **kwargs):
        """`BrainGenPreTrainedModel.from_pretrained` (strict), with the tokenizer frozen again after loading."""
        loaded = super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        # Loading swaps in fresh parameters (requires_grad=True), so freeze again.
        (loaded[0] if isinstance(loaded, tuple) else loaded)._freeze_tokenizer()
        return loaded

    @classmethod
    def from_pretrained_tokenizer(
        cls, tokenizer_name_or_path: str | os.PathLike, *, tokenizer_kwargs: dict | None = None, **config_kwargs
    ) -> BrainTokenizerLMMixin:
        """A new LM around a pretrained brain tokenizer (repo id or folder); the LM weights are new.

        `config_kwargs` go to the LM config (grid fields not given are derived from the tokenizer),
        `tokenizer_kwargs` to the tokenizer's `from_pretrained` (e.g. `revision`).
        """
        tokenizer = AutoModel.from_pretrained(tokenizer_name_or_path, **(tokenizer_kwargs or {}))
        config = cls.config_class(tokenizer_config=tokenizer.config.to_dict(), **config_kwargs)
        model = cls(config)
        model.tokenizer.load_state_dict(tokenizer.state_dict(), strict=True)
        return model

    # ---------------------------------------------------------------- tokenizer
    def encode(
        self,
        input_values: torch.Tensor,
        pos: torch.Tensor | None = None,
        sensor_type: torch.Tensor | None = None,
        *,
        channel_names: list[str] | None = None,
    ) -> torch.Tensor:
        """Signal `(B, C, T)` -> flat codes `(B, T / hop * n_neuro * Q)`, the model's `input_ids`.

        Checked as in the tokenizer's `encode` (float16/float64 signals cast, `channel_names` against the contract).
        """
        trainable = self.config.train_tokenizer
        if not trainable:
            self.tokenizer.eval()
        with torch.set_grad_enabled(trainable and torch.is_grad_enabled()):
            codes = self.tokenizer.encode(
                input_values, pos, sensor_type, channel_names=channel_names, allow_shorter_windows=True
            ).codes
        return self.tokenizer.flatten_codes(codes)

    def tokenize(
        self, input_values: torch.Tensor, pos: torch.Tensor | None = None, sensor_type: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The same as `encode` (the name the amplitude LMs use)."""
        return self.encode(input_values, pos, sensor_type)

    def decode(
        self, input_ids: torch.Tensor, pos: torch.Tensor | None = None, sensor_type: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Flat codes (whole token steps) -> signal `(B, C, steps * hop)`."""
        self.check_input_ids(input_ids)
        if input_ids.shape[1] % self.sequence_step:
            raise ValueError(
                f"decode needs whole token steps ({self.sequence_step} codes each), got {input_ids.shape[1]} codes"
            )
        signal = self.tokenizer.decode(input_ids, pos, sensor_type)
        # The tokenizer completes a partial last window by repeating the last step; keep the decoded steps only.
        return signal[..., : input_ids.shape[1] // self.sequence_step * self.config.temporal_reduction]

    # ---------------------------------------------------------------- forward
    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        input_values: torch.Tensor | None = None,
        pos: torch.Tensor | None = None,
        sensor_type: torch.Tensor | None = None,
        cache: Cache | None = None,
        use_cache: bool | None = None,
        labels: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        channel_names: list[str] | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        **kwargs,
    ) -> FlatGPTRVQOutput | tuple:
        r"""Next-code logits of flat RVQ codes, or of the codes of a signal.

        Args:
            input_ids (`torch.LongTensor` of shape `(B, N)`): flat codes in (time, latent, level) order, `N` a
                multiple of `config.tokens_per_position` (what `encode` returns).
            input_values (`torch.FloatTensor` of shape `(B, C, T)`): a signal instead of `input_ids`; it is encoded by
                the brain tokenizer (`T` a multiple of its hop). Without `labels` the loss is computed against its
                own codes.
            pos (`torch.FloatTensor` of shape `(B, C, 6)`), sensor_type (`torch.LongTensor` of shape `(B, C)`):
                sensor geometry of `input_values` (BrainOmni tokenizers).
            cache (`Cache`), use_cache (`bool`): the KV cache (`past_key_values`, its old name, is accepted with a
                deprecation warning where the installed transformers calls it `cache`).
            labels (`torch.LongTensor` of shape `(B, N)`): the clean codes (usually `input_ids`); the model shifts
                them by `tokens_per_position`. `-100` is ignored.
            attention_mask (`torch.LongTensor` of shape `(B, N)`): all ones (sequences are unpadded).
            channel_names (`list[str]`): names of the signal's channels, checked against the tokenizer's contract.
            output_attentions (`bool`): each backbone layer's attention weights `(B, heads, P, P + past)` over the
                `P = N / tokens_per_position` positions (eager attention; default `config.output_attentions`).
            output_hidden_states (`bool`): the embedding output and each backbone layer's `(B, P, hidden)` states
                (FlatGPTMixRVQ with `mix_method="none"`: `(B * n_neuro, P, hidden)`; default
                `config.output_hidden_states`).
            return_dict (`bool`): `False` returns the non-`None` output fields as a tuple.

        Returns:
            `FlatGPTRVQOutput` (a tuple with `return_dict=False`): `logits` `(B, N, K)` (the logits at flat index p
            score the code at p + `tokens_per_position`), `loss`, `cache`, the backbone's hidden states and
            attentions when asked for, and `input_ids`: the codes read.
        """
        if channel_names is not None and input_values is None:
            raise ValueError("`channel_names` describe a signal: pass it as `input_values` (codes have no channels)")
        if input_values is not None:
            if input_ids is not None:
                raise ValueError("pass either `input_ids` (codes) or `input_values` (a signal), not both")
            input_ids = self.encode(input_values, pos, sensor_type, channel_names=channel_names)
            labels = input_ids if labels is None else labels
        out = super().forward(
            input_ids,
            cache=cache,
            use_cache=use_cache,
            labels=labels,
            attention_mask=attention_mask,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
            **kwargs,
        )
        return FlatGPTRVQOutput(**out, input_ids=input_ids)

    # ---------------------------------------------------------------- forecasting
    def _forecast(
        self,
        input_values,
        horizon,
        generation_config,
        logits_processor,
        *,
        progress=None,
        pos=None,
        sensor_type=None,
        channel_names=None,
        max_context_tokens=None,
        sliding_window_overlap=0.5,
    ) -> ForecastOutput:
        """The next `horizon` samples after a context signal `(B, C, T)` (what the brain tokenizer encodes).

        context -> tokenizer codes -> rollout of `ceil(horizon / hop)` token steps with a sliding window
        (`max_context_tokens` and an int `sliding_window_overlap` count flat codes; default window: the
        context) -> tokenizer decode. Returns `values` (B, C, horizon), `codes` (B, n_neuro, steps, Q) (the
        tokenizer's code layout) and `tokens` (the generated flat codes).
        """
        codes = self.encode(input_values, pos, sensor_type, channel_names=channel_names)
        steps = math.ceil(horizon / self.config.temporal_reduction)
        window = window_arg(max_context_tokens, "max_context_tokens")
        if window is not None and window % self.sequence_step:
            raise ValueError(
                f"max_context_tokens ({window}) must be a whole number of token steps ({self.sequence_step} codes each)"
            )
        tokens = self._rollout(
            codes,
            steps * self.sequence_step,
            generation_config,
            logits_processor,
            max_context_tokens=window,
            sliding_window_overlap=sliding_window_overlap,
            progress=progress,
        )
        values = self.decode(tokens, pos, sensor_type)[..., :horizon]
        return ForecastOutput(values=values, codes=self.tokenizer.unflatten_codes(tokens), tokens=tokens)


# GenerationConfig switches the rollout of whole positions cannot honour (`output_*` would need per-code scores).
_UNSUPPORTED_OUTPUTS = ("output_scores", "output_logits", "output_attentions", "output_hidden_states")


class WholePositionGenerationMixin:
    """`generate()` of the LMs whose backbone position holds several codes (FlatGPTRVQ, FlatGPTMixRVQ).

    The `tokens_per_position` codes of a position are drawn together from one hidden state, so generation emits
    whole positions through the KV-cached rollout (`generate_windowed`) rather than transformers' one-token loop.
    """

    def generate(
        self,
        input_ids: torch.Tensor | None = None,
        generation_config: GenerationConfig | None = None,
        logits_processor: LogitsProcessorList | None = None,
        streamer: BaseStreamer | None = None,
        **kwargs,
    ) -> torch.Tensor | GenerateDecoderOnlyOutput:
        """`input_ids (B, L)` flat codes -> `(B * num_return_sequences, L + max_new_tokens)`: the prompt (each row
        `num_return_sequences` times, next to each other) followed by the new codes.

        GenerationConfig fields honoured: `max_new_tokens` (a multiple of `config.tokens_per_position`; without it
        `max_length - L`, rounded down to whole positions), `do_sample`, `temperature`, `top_k`, `top_p`,
        `min_p`, `num_return_sequences` (sampling only), `use_cache`, `return_dict_in_generate` (a
        `GenerateDecoderOnlyOutput` with `sequences`). `logits_processor` runs before the sampling warpers
        (with `input_ids=None`: processors that read the prefix do not apply). `streamer` gets the prompt, then
        every new code in order (a `(B,)` tensor each), then `end()`. Beam search, the `output_*` switches,
        penalties and any other keyword raise `ValueError`.
        """
        name, block = type(self).__name__, self.codes_per_position
        config = copy.deepcopy(generation_config if generation_config is not None else self.generation_config)
        rest = config.update(**kwargs)
        mask = rest.pop("attention_mask", None)
        if mask is not None and not bool(mask.bool().all()):
            raise ValueError("FlatGPT sequences are unpadded: an attention_mask with zeros is not supported")
        if rest:
            raise ValueError(f"generate() of {name} does not use {sorted(rest)}")
        if (config.num_beams or 1) > 1 or (config.num_beam_groups or 1) > 1:
            raise ValueError(
                f"{name} has no beam search: a position's {block} codes are drawn jointly from one hidden state, "
                f"so each beam step would rank {self.config.vocab_size}**{block} joint continuations; use greedy "
                "decoding or sampling (num_beams=1)"
            )
        asked = [field for field in _UNSUPPORTED_OUTPUTS if getattr(config, field, False)]
        if asked:
            raise ValueError(f"generate() of {name} returns sequences only; unset {asked}")
        copies = config.num_return_sequences or 1
        if copies > 1 and not config.do_sample:
            raise ValueError(
                f"greedy decoding gives one sequence per input: num_return_sequences={copies} needs do_sample=True"
            )
        self.check_input_ids(input_ids)
        new_tokens = self._new_code_count(config, input_ids.shape[1])
        config.num_return_sequences = 1  # the rows are expanded here; the sampler draws per row
        config = resolve_generation_config(self, config)
        input_ids = input_ids.repeat_interleave(copies, dim=0)
        choose = sampler(config, build_logits_processor(config, logits_processor))
        if streamer is not None:
            streamer.put(input_ids.cpu())
            choose = _streaming(choose, streamer)
        generated = self.generate_windowed(
            input_ids,
            new_tokens,
            choose,
            window=input_ids.shape[1] + new_tokens,
            use_cache=config.use_cache is not False,
        )
        if streamer is not None:
            streamer.end()
        sequences = torch.cat([input_ids, generated], dim=1)
        return GenerateDecoderOnlyOutput(sequences=sequences) if config.return_dict_in_generate else sequences

    def _new_code_count(self, config: GenerationConfig, prompt_length: int) -> int:
        block = self.codes_per_position
        new_tokens = config.max_new_tokens
        if new_tokens is None:
            # max_length bounds the whole sequence (transformers' default is 20): the whole positions that fit.
            new_tokens = (config.max_length - prompt_length) // block * block
            if new_tokens <= 0:
                raise ValueError(
                    f"max_length ({config.max_length}) leaves no room for a position of {block} codes after the "
                    f"{prompt_length}-code prompt; set max_new_tokens (a multiple of {block})"
                )
            return new_tokens
        if isinstance(new_tokens, bool) or not isinstance(new_tokens, int) or new_tokens <= 0 or new_tokens % block:
            raise ValueError(
                f"{type(self).__name__} generates whole positions of {block} codes (drawn jointly): max_new_tokens "
                f"must be a positive multiple of {block} ({block}, {2 * block}, {3 * block}, ...), got {new_tokens!r}"
            )
        return new_tokens


def _streaming(choose, streamer: BaseStreamer):
    """`choose` that also hands every code it picks to `streamer`, one `(B,)` tensor per code, in order."""

    def choose_and_stream(logits: torch.Tensor) -> torch.Tensor:
        ids = choose(logits)
        for column in ids.unbind(dim=1):
            streamer.put(column.cpu())
        return ids

    return choose_and_stream


class FlatGPTEmbedsRVQForCausalLM(BrainTokenizerLMMixin, FlatGPTLanguageModel):
    """The paper LM: one code per position, one table per RVQ level, head at level q tied to table (q + 1) % Q."""

    config_class = FlatGPTEmbedsRVQConfig

    def __init__(self, config: FlatGPTEmbedsRVQConfig):
        super().__init__(config)
        self.transformer = FlatGPTBackbone(config, keep_token_embedding=False)
        self._build_tokenizer(config)
        if config.corrupt:
            self.pre_embedding = EmbeddingCorruptor(
                config.vocab_size, config.hidden_size, config.num_levels, config.num_latents, config.corruption_p_levels
            )
        else:
            self.pre_embedding = ListEmbedding(config.vocab_size, config.hidden_size, config.num_levels)
        self.head = self._tied_head()
        self.prediction_block = self.codes_per_position = config.tokens_per_position
        self.sequence_step = config.tokens_per_time_step
        self.post_init()

    def _tied_head(self) -> ChannelHead:
        return ChannelHead(self.pre_embedding)

    def positions_view(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Flat codes -> what the backbone positions read (brain-gen's reshaped codes): one code each."""
        return input_ids

    def embed(self, input_ids, offset):
        return self.pre_embedding(input_ids, offset)

    def score(self, hidden, offset):
        return self.head(hidden, offset)


class FlatGPTRVQForCausalLM(WholePositionGenerationMixin, BrainTokenizerLMMixin, FlatGPTLanguageModel):
    """One position per (t, latent) stack: concatenated level embeddings in, all Q levels of the next stack out."""

    config_class = FlatGPTRVQConfig

    def __init__(self, config: FlatGPTRVQConfig):
        super().__init__(config)
        self.transformer = FlatGPTBackbone(config, keep_token_embedding=False)
        self._build_tokenizer(config)
        self.pre_embedding = QuantizerEmbedding(config.vocab_size, config.level_dim, config.num_levels)
        if config.quantizer_head == "joint":
            self.head = JointRVQHead(config.hidden_size, config.num_levels, config.vocab_size)
        else:
            self.head = self._tied_head()
        self.prediction_block = self.codes_per_position = config.tokens_per_position
        self.sequence_step = config.tokens_per_time_step
        self.post_init()

    def _tied_head(self) -> TiedRVQHead | None:
        return TiedRVQHead(self.pre_embedding) if self.config.quantizer_head == "tied" else None

    def positions_view(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Flat codes -> `(B, L, Q)` stacks, one per backbone position."""
        return rearrange(input_ids, "b (l q) -> b l q", q=self.config.num_levels)

    def embed(self, input_ids, offset):
        return self.pre_embedding(self.positions_view(input_ids))

    def score(self, hidden, offset):
        return rearrange(self.head(hidden), "b l q k -> b (l q) k")


class FlatGPTMixRVQForCausalLM(WholePositionGenerationMixin, BrainTokenizerLMMixin, FlatGPTLanguageModel):
    """One position per token step: the n_neuro latents x Q levels of a step in, the next step's codes out."""

    config_class = FlatGPTMixRVQConfig

    def __init__(self, config: FlatGPTMixRVQConfig):
        super().__init__(config)
        self.transformer = FlatGPTBackbone(config, keep_token_embedding=False)
        self._build_tokenizer(config)
        self.pre_embedding = MixQuantizerEmbedding(
            config.vocab_size, config.level_dim, config.num_levels, config.num_latents, config.mix_method
        )
        if config.quantizer_head == "joint":
            joint = JointRVQHead(config.level_dim * config.num_levels, config.num_levels, config.vocab_size)
            self.head = MixRVQHead(joint, config.num_latents, config.mix_method)
        else:
            self.head = self._tied_head()
        self.prediction_block = self.codes_per_position = config.tokens_per_position
        self.sequence_step = config.tokens_per_time_step
        self.post_init()

    def _tied_head(self) -> MixRVQHead | None:
        if self.config.quantizer_head != "tied":
            return None
        return MixRVQHead(TiedRVQHead(self.pre_embedding.quantizer), self.config.num_latents, self.config.mix_method)

    def positions_view(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Flat codes -> `(B*C, T, Q)` rows, one per latent (channel-major within each example)."""
        cfg = self.config
        return rearrange(input_ids, "b (t c q) -> (b c) t q", c=cfg.num_latents, q=cfg.num_levels)

    def embed(self, input_ids, offset):
        return self.pre_embedding(self.positions_view(input_ids))

    def score(self, hidden, offset):
        return rearrange(self.head(hidden), "(b c) t q k -> b (t c q) k", c=self.config.num_latents)
