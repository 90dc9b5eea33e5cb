"""FlatGPT language models over flattened brain-token grids (brain-gen `models/flatgpt.py`).

Every variant is a `PreTrainedModel` + `GenerationMixin` over token ids:

* `forward(input_ids, cache=None, use_cache=None, labels=None)` -> `FlatGPTOutput` with next-token logits for
  every position (position p predicts token p + block_size) and brain-gen's CrossEntropyWithCodes loss when
  `labels` (the clean codes, usually `input_ids` itself) are given;
* `generate()` works with transformers' `DynamicCache`;
* `tokenize(grid)` / `forecast(context, horizon)` go from a token grid to codes and from a context to a
  decoded rollout, with brain-gen's sliding window.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init
from transformers.cache_utils import Cache, DynamicCache
from transformers.generation import GenerationMixin
from transformers.utils import ModelOutput

from ...modeling_utils import (GENERATION_FORWARD_KWARGS, BrainGenPreTrainedModel, check_labels,
                               reject_unknown_kwargs)
from .backbones import FlatGPTBackbone
from .configuration_flatgpt import FlatGPTConfig, FlatGPTEmbedsConfig, FlatGPTMixConfig
from .flatgpt_layers import ChannelHead, ListEmbedding, MixEmbedding, MixHead, corrupt_tokens
from ...layers.sampling import make_sampler, rollout_progress
from .token_layouts import build_layout


@dataclass
class FlatGPTOutput(ModelOutput):
    """loss: CrossEntropyWithCodes (mean next-token CE) when `labels` are given.
    logits: `(B, L, V)` (`(B*C, T, V)` for FlatGPTMix); position p predicts token p + block_size.
    cache: the KV cache when `use_cache` (transformers `Cache`).
    embeddings: the token embeddings fed to the backbone (what causality checks differentiate against).
    last_hidden_state: the backbone output before the head.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    cache: Cache | None = None
    embeddings: torch.Tensor | None = None
    last_hidden_state: torch.Tensor | None = None


def codes_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, block_size: int) -> torch.Tensor:
    """brain-gen's CrossEntropyWithCodes: logits at p scored against the clean code at p + block_size."""
    labels = check_labels(labels, num_classes=logits.shape[-1])
    if labels.shape != logits.shape[:-1]:
        raise ValueError(f"labels must have the shape of input_ids {tuple(logits.shape[:-1])} (the clean codes; the "
                         f"model shifts them by block_size itself), got {tuple(labels.shape)}")
    shifted_logits = logits[:, :-block_size]
    targets = labels[:, block_size:]
    return F.cross_entropy(shifted_logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1),
                           ignore_index=-100)


class FlatGPTPreTrainedModel(BrainGenPreTrainedModel):
    config_class = FlatGPTConfig
    base_model_prefix = "flatgpt"
    main_input_name = "input_ids"
    _supports_sdpa = True
    _supports_flash_attn = False
    _supports_flex_attn = False
    _can_compile_fullgraph = False

    def _init_module(self, module: nn.Module) -> None:
        # transformers' decoder init (what brain-gen's backbones and FlatGPT tables used): N(0, 0.02).
        std = self.config.backbone_config.initializer_range
        reset = getattr(module, "reset_brain_gen_parameters", None)
        if reset is not None:
            reset()
        elif isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=std)
        elif "RMSNorm" in type(module).__name__ and getattr(module, "weight", None) is not None:
            init.ones_(module.weight)
        elif "RotaryEmbedding" in type(module).__name__ and hasattr(module, "compute_default_rope_parameters"):
            inv_freq, _ = module.compute_default_rope_parameters(module.config)
            init.copy_(module.inv_freq, inv_freq)
            init.copy_(module.original_inv_freq, inv_freq)


class _FlatGPTLanguageModel(FlatGPTPreTrainedModel, GenerationMixin):
    """Shared machinery: backbone, input checks, loss, corruption, generation and forecasting."""

    keep_backbone_token_embedding = False

    def __init__(self, config: FlatGPTConfig):
        super().__init__(config)
        self.transformer = FlatGPTBackbone(config, keep_token_embedding=self.keep_backbone_token_embedding)
        self.build_embedding_and_head(config)
        self.layout = self.build_layout(config)
        self.post_init()

    # ---------------------------------------------------------------- variant hooks
    def build_embedding_and_head(self, config) -> None:
        raise NotImplementedError

    def build_layout(self, config):
        return build_layout(config)

    @property
    def prediction_block(self) -> int:
        """Tokens predicted in parallel: position p's logits score token p + prediction_block."""
        return self.config.block_size

    def embed(self, input_ids: torch.Tensor, offset: int) -> torch.Tensor:
        raise NotImplementedError

    def score(self, hidden: torch.Tensor, offset: int) -> torch.Tensor:
        raise NotImplementedError

    @property
    def sequence_step(self) -> int:
        """Sequence positions per time step (window slides keep this alignment)."""
        if self.config.tokenizer_class == "DelimitedTokenizer":
            return self.layout.channels + 1
        return self.config.tokens_per_grid_step

    def check_input_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.check_tokens(input_ids, vocab_size=self.config.vocab_size, ndim=2)

    # ---------------------------------------------------------------- forward
    def forward(self, input_ids: torch.Tensor | None = None, cache: Cache | None = None, use_cache: bool | None = None,
                labels: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                **kwargs) -> FlatGPTOutput:
        """Next-token logits of `input_ids` (see the module docstring).

        Accepts the keywords transformers' generation passes (`past_key_values` is the old name of `cache`;
        `cache_position`, `logits_to_keep`, `return_dict`, ... are ignored); any other keyword raises `TypeError`.
        """
        if cache is None:
            cache = kwargs.pop("past_key_values", None)
        reject_unknown_kwargs(kwargs, GENERATION_FORWARD_KWARGS, f"{type(self).__name__}.forward")
        if input_ids is None:
            raise ValueError("FlatGPT needs `input_ids` (token codes); use `model.tokenize(grid)` for a token grid")
        self.check_input_ids(input_ids)
        if attention_mask is not None and not bool(attention_mask.bool().all()):
            raise ValueError("FlatGPT sequences are unpadded token grids: an attention_mask with zeros is not "
                             "supported")
        block = self.prediction_block
        self._check_cache_extension(input_ids, cache)
        offset = cache.get_seq_length() if cache is not None else 0
        model_ids = self.maybe_corrupt(input_ids)
        embeddings = self.embed(model_ids, offset)
        hidden, cache = self.transformer(embeddings, cache=cache, use_cache=bool(use_cache))
        logits = self.score(hidden, offset)
        loss = codes_cross_entropy(logits, labels, block) if labels is not None else None
        return FlatGPTOutput(loss=loss, logits=logits, cache=cache if use_cache else None, embeddings=embeddings,
                             last_hidden_state=hidden)

    def _check_cache_extension(self, input_ids: torch.Tensor, cache: Cache | None) -> None:
        block = self.prediction_block
        if block > 1 and cache is not None and cache.get_seq_length() > 0 and input_ids.shape[1] % block:
            raise ValueError(f"block-causal models (blocks of {block} tokens) extend a cache by whole blocks; use "
                             "`forecast()` for generation")

    def _next_block_logits(self, input_ids: torch.Tensor, cache: Cache | None, *, decode: bool) -> torch.Tensor:
        """The logits of the last prediction block for `generate_windowed`, as an ordinary tensor.

        `input_ids` is a whole context (`decode=False`, prefilling `cache` if one is given) or, with `decode`, the
        new block extending `cache`. The model runs in inference mode: without any autograd bookkeeping a small
        model's decode step is noticeably faster (~15%), on the same kernels. The logits are cloned out of it so that
        `sample_fn` gets a tensor it may edit in place, and the ids it returns are ordinary tensors.
        """
        with torch.inference_mode():
            if decode:
                # forward() minus its per-call id-range check (two reductions and host syncs) and output
                # containers, a noticeable share of a small model's step: the context was validated up front and
                # new ids are drawn from logits over the vocabulary.
                self._check_cache_extension(input_ids, cache)
                offset = cache.get_seq_length()
                hidden, _ = self.transformer(self.embed(input_ids, offset), cache=cache, use_cache=True)
                logits = self.score(hidden, offset)
            else:
                logits = self(input_ids, cache=cache, use_cache=cache is not None).logits
        return logits[:, -self.prediction_block:].clone()

    def maybe_corrupt(self, input_ids: torch.Tensor) -> torch.Tensor:
        cfg = self.config.token_corruption
        if not (self.training and cfg and cfg["enabled"]):
            return input_ids
        return corrupt_tokens(input_ids, self.config.vocab_size, p_start=cfg["p_start"], p_end=cfg["p_end"],
                              tokens_per_step=cfg["tokens_per_step"], block_len_steps=cfg["block_len_steps"])

    # ---------------------------------------------------------------- generation
    def generate(self, *args, **kwargs):
        if self.config.block_size > 1:
            raise ValueError(f"generate() emits one token per step, but this model predicts blocks of "
                             f"{self.config.block_size}; use `forecast()`/`generate_windowed()`")
        return super().generate(*args, **kwargs)

    def new_cache(self) -> DynamicCache:
        return DynamicCache(config=self.config.backbone_config)

    def tokenize(self, grid: torch.Tensor) -> torch.Tensor:
        """Token grid `(B, T, C[, W])` of integer bins -> the model's `input_ids`."""
        return self.layout.encode(grid)

    @torch.no_grad()
    def generate_windowed(self, input_ids: torch.Tensor, max_new_tokens: int,
                          sample_fn: Callable[[torch.Tensor], torch.Tensor], *, window: int | None = None,
                          sliding_window_overlap: float | int = 0.5, use_cache: bool = True,
                          progress: bool | None = None) -> torch.Tensor:
        """Roll out `max_new_tokens` tokens past any context length (brain-gen's forecast loop).

        The context is capped at `window` tokens (default: the initial context length). Once the window is full
        its first `stride` tokens are dropped (an int is a token count, a float a fraction of the window; both
        rounded down to whole time steps so grid positions and per-slot tables stay aligned) and the rest is
        prefilled again with positions restarting at 0. Within a window, new blocks are fed through the KV
        cache (`use_cache`) or the whole context is re-run. `sample_fn(logits (B, n, V)) -> ids (B, n)`.
        `progress`: a tqdm bar over the new tokens; `None` (default) shows it only for long rollouts
        (`layers.sampling.LONG_ROLLOUT` tokens) in a terminal or notebook. Returns only the generated tokens.
        """
        self.check_input_ids(input_ids)
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be a non-negative int, got {max_new_tokens!r}")
        step = self.sequence_step
        window = self._window_arg(window, "window")
        if window is None and input_ids.shape[1] < step:
            # The default window is the context length; name the context, not a window the caller never passed.
            raise ValueError(f"the context ({input_ids.shape[1]} tokens) is shorter than one time step ({step} "
                             f"tokens), so it cannot set the default window; pass a longer context or "
                             f"`window` (at least {step} tokens)")
        window = input_ids.shape[1] if window is None else window
        self._check_window(window, step, input_ids.shape[1] + max_new_tokens)
        stride = self._window_stride(window, sliding_window_overlap, step)
        block = self.prediction_block
        was_training = self.training
        self.eval()
        context, generated, total = input_ids, [], 0
        bar = rollout_progress(max_new_tokens, progress, desc=f"{type(self).__name__} rollout", unit="token")
        try:
            while total < max_new_tokens:
                if context.shape[1] > window:
                    excess = context.shape[1] - window
                    context = context[:, -(-excess // step) * step:]
                cache = self.new_cache() if use_cache else None
                logits = self._next_block_logits(context, cache, decode=False)
                # With the cache, the window's new tokens are joined to `context` once, when the window slides,
                # instead of re-copying the growing context on every step.
                length, window_new = context.shape[1], []
                while total < max_new_tokens and length < window:
                    n = min(block, max_new_tokens - total, window - length, logits.shape[1])
                    new = self._sampled_ids(sample_fn, logits[:, :n], context.device)
                    generated.append(new)
                    total += n
                    length += n
                    bar.update(n)
                    if use_cache:
                        window_new.append(new)
                    else:
                        context = torch.cat([context, new], dim=1)
                    if total >= max_new_tokens or length >= window:
                        break
                    logits = self._next_block_logits(new if use_cache else context, cache, decode=use_cache)
                if total >= max_new_tokens:
                    break
                if window_new:
                    context = torch.cat([context, *window_new], dim=1)
                context = context[:, stride:] if context.shape[1] > stride else context[:, -step:]
        finally:
            bar.close()
            self.train(was_training)
        if not generated:
            return input_ids[:, :0]
        return torch.cat(generated, dim=1)

    def _sampled_ids(self, sample_fn: Callable, logits: torch.Tensor, device: torch.device) -> torch.Tensor:
        """`sample_fn(logits (B, n, V))`, checked: a custom sampler must return `(B, n)` vocabulary ids (the decode
        step skips forward()'s check, and a wrong shape would silently change how many tokens were generated)."""
        new = sample_fn(logits)
        if not isinstance(new, torch.Tensor):
            raise TypeError(f"sample_fn must return a tensor of token ids, got {type(new).__name__}")
        if tuple(new.shape) != tuple(logits.shape[:2]):
            raise ValueError(f"sample_fn must return token ids of shape {tuple(logits.shape[:2])} (one per logits "
                             f"row), got {tuple(new.shape)}")
        if new.is_floating_point() or new.is_complex():
            raise ValueError(f"sample_fn must return integer token ids, got dtype {new.dtype}")
        new = new.to(device, torch.long)
        if int(new.min()) < 0 or int(new.max()) >= self.config.vocab_size:
            raise ValueError(f"sample_fn returned ids outside [0, {self.config.vocab_size - 1}]")
        return new

    @staticmethod
    def _window_arg(window, name: str) -> int | None:
        """A window length in tokens, or `None` for the default (`None` or -1). A float or a string would be
        truncated or fail deep in the rollout, so only integers are read."""
        if window is None or (isinstance(window, numbers.Integral) and window == -1):
            return None
        if isinstance(window, bool) or not isinstance(window, numbers.Integral):
            raise ValueError(  # noqa: TRY004 (bad inputs are ValueErrors throughout, as in `check_tokens`)
                f"{name} must be an int (tokens) or None (the context length), got {window!r}")
        return int(window)

    @staticmethod
    def _check_window(window: int, step: int, needed: int) -> None:
        """A window must hold a time step; one that must slide must hold more, or the rollout never advances."""
        if window < step:
            raise ValueError(f"the window ({window} tokens) must hold at least one time step ({step} tokens)")
        if window == step and needed > window:
            raise ValueError(f"a window of one time step ({step} tokens) cannot slide: after each slide it would "
                             "be full again before generating anything. The context and the new tokens need "
                             f"{needed} tokens; pass a window (`window` / `max_context_tokens`) of at least "
                             f"{2 * step} tokens (two time steps), or of {needed} to avoid sliding")

    @staticmethod
    def _window_stride(window: int, overlap: float | int, step: int) -> int:
        if isinstance(overlap, bool) or not isinstance(overlap, (int, float)):
            raise ValueError(f"sliding_window_overlap must be an int (tokens) or a float (fraction), got {overlap!r}")
        if not math.isfinite(overlap) or overlap < 0:
            raise ValueError(f"sliding_window_overlap must be a non-negative number, got {overlap}")
        stride = max(1, overlap) if isinstance(overlap, int) else round(window * overlap)
        stride = max(1, min(stride, window))
        return max(step, stride // step * step)

    @torch.no_grad()
    def forecast(self, context: torch.Tensor, horizon: int, sample_fn: Callable | None = None, *,
                 strategy: str = "argmax", temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                 max_context_tokens: int | None = None, sliding_window_overlap: float | int = 0.5,
                 use_cache: bool = True, progress: bool | None = None) -> torch.Tensor:
        """Forecast `horizon` raw time samples (whole token steps) after a token-grid `context (B, T, C[, W])`.

        Sampling: `sample_fn(logits) -> ids` if given, else `strategy` "argmax" or "roulette" (multinomial after
        transformers' temperature / top-k / top-p warpers). `progress` as in `generate_windowed`. Returns the
        generated part only, decoded by the tokenizer layout to `(B, steps, C)`.
        """
        if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 0:
            raise ValueError(f"horizon must be a non-negative int (raw samples), got {horizon!r}")
        codes = self.tokenize(context)
        exact = horizon * self.layout.tokens_per_sample(self.config)
        n_tokens = round(exact)
        # A rollout that ends inside a token step cannot be decoded to a grid (and rounding it down would
        # silently return fewer samples than asked for).
        if not math.isclose(exact, n_tokens) or n_tokens % self.sequence_step:
            raise ValueError(f"horizon ({horizon} samples) must cover whole token steps: a multiple of "
                             f"temporal_reduction ({self.config.temporal_reduction} samples per step)")
        sampler = sample_fn or make_sampler(strategy, temperature=temperature, top_k=top_k, top_p=top_p)
        generated = self.generate_windowed(codes, n_tokens, sampler, window=max_context_tokens,
                                           sliding_window_overlap=sliding_window_overlap, use_cache=use_cache,
                                           progress=progress)
        return self.layout.decode(generated)

    # ---------------------------------------------------------------- context resizing
    def resize_context(self, *, input_shape: list[int] | None = None, rope_theta: float | None = None,
                       max_position_embeddings: int | None = None) -> None:
        """Grow the temporal context of a trained model (spatial layout fixed) and optionally retune RoPE."""
        config = self.config
        old_shape, old_reduced = list(config.input_shape), config.reduced_shape
        new_shape = list(input_shape) if input_shape is not None else old_shape
        if len(new_shape) != 3 or new_shape[1:] != old_shape[1:]:
            raise ValueError(f"resize_context changes only the time length; input_shape must be "
                             f"(T, {old_shape[1]}, {old_shape[2]}), got {new_shape}")
        if new_shape[0] % config.temporal_reduction:
            raise ValueError(f"input_shape[0] ({new_shape[0]}) must be a multiple of temporal_reduction "
                             f"({config.temporal_reduction})")
        if new_shape[0] // config.temporal_reduction < old_reduced[0]:
            raise ValueError(f"resize_context cannot shrink the context ({old_reduced[0]} reduced steps -> "
                             f"{new_shape[0] // config.temporal_reduction})")
        for name, value in (("rope_theta", rope_theta), ("max_position_embeddings", max_position_embeddings)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real)
                                      or not math.isfinite(value) or not value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        config.input_shape = new_shape
        self.transformer.set_grid(config.rope_grid)
        self.transformer.set_rope(rope_theta=rope_theta, max_position_embeddings=max_position_embeddings)
        backbone = self.transformer.model.config
        config.backbone_config.rope_parameters = dict(backbone.rope_parameters)
        config.backbone_config.max_position_embeddings = backbone.max_position_embeddings


class FlatGPTForCausalLM(_FlatGPTLanguageModel):
    """FlatGPT: tokens embedded with the backbone's table (`transformer.model.embed_tokens`), tied head."""

    config_class = FlatGPTConfig
    keep_backbone_token_embedding = True

    def build_embedding_and_head(self, config) -> None:
        pass

    def get_input_embeddings(self) -> nn.Module:
        return self.transformer.model.embed_tokens

    def embed(self, input_ids, offset):
        return self.transformer.model.embed_tokens(input_ids)

    def score(self, hidden, offset):
        return F.linear(hidden, self.transformer.model.embed_tokens.weight)


class FlatGPTEmbedsForCausalLM(_FlatGPTLanguageModel):
    """FlatGPTEmbeds: one embedding table per channel slot; the head at slot i is tied to table i + 1."""

    config_class = FlatGPTEmbedsConfig

    def build_embedding_and_head(self, config) -> None:
        self.pre_embedding = ListEmbedding(config.vocab_size, config.hidden_size, config.num_slots)
        self.head = ChannelHead(self.pre_embedding)

    def get_input_embeddings(self) -> nn.Module:
        return self.pre_embedding

    def embed(self, input_ids, offset):
        return self.pre_embedding(input_ids, offset)

    def score(self, hidden, offset):
        return self.head(hidden, offset)


class FlatGPTMixForCausalLM(_FlatGPTLanguageModel):
    """FlatGPTMix: one position per time step; `input_ids` are `(B*C, T)` channel rows (channel-major per example)."""

    config_class = FlatGPTMixConfig

    def build_embedding_and_head(self, config) -> None:
        self.pre_embedding = MixEmbedding(config.vocab_size, config.channel_width, config.num_channels,
                                          config.mix_method)
        self.head = MixHead(self.pre_embedding)

    def get_input_embeddings(self) -> nn.Module:
        return self.pre_embedding.emb.quant_emb

    @property
    def sequence_step(self) -> int:
        return 1

    def check_input_ids(self, input_ids):
        super().check_input_ids(input_ids)
        if input_ids.shape[0] % self.config.num_channels:
            raise ValueError(f"FlatGPTMix input_ids are (B*C, T) channel rows: {input_ids.shape[0]} rows is not a "
                             f"multiple of the {self.config.num_channels} channels")
        return input_ids

    def embed(self, input_ids, offset):
        return self.pre_embedding(input_ids)

    def score(self, hidden, offset):
        return self.head(hidden)
