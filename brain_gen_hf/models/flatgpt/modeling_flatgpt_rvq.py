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
* `generate()`: transformers' token loop for FlatGPTEmbedsRVQ; for the stacked variants (several codes per
  position) the KV-cached windowed rollout, which emits whole positions.

`AutoTokenizer.from_pretrained(folder)` has nothing to give for these LMs (their tokenizer is a model, not a
text tokenizer): use `model.encode` / `model.decode` or `model.tokenizer`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from einops import rearrange
from torch import nn
from transformers import AutoModel

from ...forecasting import ForecastOutput
from ...modeling_utils import sub_model_from_config
from .backbones import FlatGPTBackbone
from .configuration_flatgpt_rvq import FlatGPTEmbedsRVQConfig, FlatGPTMixRVQConfig, FlatGPTRVQConfig
from .flatgpt_layers import ChannelHead, ListEmbedding
from .modeling_flatgpt import FlatGPTLanguageModel, FlatGPTOutput
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

    def _build_tokenizer(self, config) -> None:
        self.tokenizer = sub_model_from_config(config.tokenizer_config)
        self._freeze_tokenizer()

    def _freeze_tokenizer(self) -> None:
        if not self.config.train_tokenizer:
            self.tokenizer.requires_grad_(False)
            self.tokenizer.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        if not self.config.train_tokenizer:
            self.tokenizer.eval()  # a frozen tokenizer never updates its codebooks
        return self

    def get_input_embeddings(self) -> nn.Module:
        return self.pre_embedding

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        loaded = super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        # Loading swaps in fresh parameters (requires_grad=True), so freeze again.
        (loaded[0] if isinstance(loaded, tuple) else loaded)._freeze_tokenizer()
        return loaded

    @classmethod
    def from_pretrained_tokenizer(
        cls, tokenizer_name_or_path, *, tokenizer_kwargs: dict | None = None, **config_kwargs
    ):
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

    def tokenize(self, input_values: torch.Tensor, pos=None, sensor_type=None) -> torch.Tensor:
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
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        input_values: torch.Tensor | None = None,
        pos: torch.Tensor | None = None,
        sensor_type: torch.Tensor | None = None,
        cache=None,
        use_cache: bool | None = None,
        labels: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        channel_names: list[str] | None = None,
        **kwargs,
    ) -> FlatGPTRVQOutput:
        """Codes (`input_ids`) or a signal (`input_values`, with `pos`/`sensor_type` for BrainOmni) -> logits.

        With a signal and no `labels`, the loss is computed against the signal's own codes; `channel_names`
        (optional) name the signal's channels and are checked against the tokenizer's contract.
        """
        if channel_names is not None and input_values is None:
            raise ValueError("`channel_names` describe a signal: pass it as `input_values` (codes have no channels)")
        if input_values is not None:
            if input_ids is not None:
                raise ValueError("pass either `input_ids` (codes) or `input_values` (a signal), not both")
            input_ids = self.encode(input_values, pos, sensor_type, channel_names=channel_names)
            labels = input_ids if labels is None else labels
        out = super().forward(
            input_ids, cache=cache, use_cache=use_cache, labels=labels, attention_mask=attention_mask, **kwargs
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
        self.head = ChannelHead(self.pre_embedding)
        self.prediction_block = self.codes_per_position = config.tokens_per_position
        self.sequence_step = config.tokens_per_time_step
        self.post_init()

    def positions_view(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Flat codes -> what the backbone positions read (brain-gen's reshaped codes): one code each."""
        return input_ids

    def embed(self, input_ids, offset):
        return self.pre_embedding(input_ids, offset)

    def score(self, hidden, offset):
        return self.head(hidden, offset)


class FlatGPTRVQForCausalLM(BrainTokenizerLMMixin, FlatGPTLanguageModel):
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
            self.head = TiedRVQHead(self.pre_embedding)
        self.prediction_block = self.codes_per_position = config.tokens_per_position
        self.sequence_step = config.tokens_per_time_step
        self.post_init()

    def positions_view(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Flat codes -> `(B, L, Q)` stacks, one per backbone position."""
        return rearrange(input_ids, "b (l q) -> b l q", q=self.config.num_levels)

    def embed(self, input_ids, offset):
        return self.pre_embedding(self.positions_view(input_ids))

    def score(self, hidden, offset):
        return rearrange(self.head(hidden), "b l q k -> b (l q) k")


class FlatGPTMixRVQForCausalLM(BrainTokenizerLMMixin, FlatGPTLanguageModel):
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
            head = JointRVQHead(config.level_dim * config.num_levels, config.num_levels, config.vocab_size)
        else:
            head = TiedRVQHead(self.pre_embedding.quantizer)
        self.head = MixRVQHead(head, config.num_latents, config.mix_method)
        self.prediction_block = self.codes_per_position = config.tokens_per_position
        self.sequence_step = config.tokens_per_time_step
        self.post_init()

    def positions_view(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Flat codes -> `(B*C, T, Q)` rows, one per latent (channel-major within each example)."""
        cfg = self.config
        return rearrange(input_ids, "b (t c q) -> (b c) t q", c=cfg.num_latents, q=cfg.num_levels)

    def embed(self, input_ids, offset):
        return self.pre_embedding(self.positions_view(input_ids))

    def score(self, hidden, offset):
        return rearrange(self.head(hidden), "(b c) t q k -> b (t c q) k", c=self.config.num_latents)
