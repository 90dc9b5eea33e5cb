"""STGPT2MEG (brain-gen): a spatio-temporal GPT over mu-law tokens of every channel.

`forward(input_ids (B, C, T))` returns next-step logits `(B, C, T, Q)`: position t of every channel predicts that
channel's token at t + 1. Attention over time is causal and cached (a transformers `DynamicCache`, one slot per
block); attention over channels runs within a step. So a generation step emits the C tokens of one time step at
once, drawn independently per channel from the logits of the last step.

Submodule names (`embeddings.*`, `blocks.{i}.*`, `norm`, `head`) follow the reference, so converted state dicts
load unchanged.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from transformers import GenerationConfig, GenerationMixin
from transformers.cache_utils import Cache, DynamicCache
from transformers.generation import GenerateDecoderOnlyOutput
from transformers.generation.logits_process import LogitsProcessorList
from transformers.generation.streamers import BaseStreamer
from transformers.utils import ModelOutput
from transformers.utils.generic import can_return_tuple

from ...compat import CACHE_KWARG, cache_from_kwargs
from ...forecasting import ForecastMixin, ForecastOutput, build_logits_processor, choose_next, resolve_generation_config
from ...forecasting.sampling import forecast_progress
from ...layers.mulaw_signal import mulaw_to_signal, signal_to_mulaw
from ...modeling_utils import COMMON_FORWARD_KWARGS, BrainGenPreTrainedModel, check_labels, reject_unknown_kwargs
from .configuration_stgpt2meg import STGPT2MEGConfig
from .st_blocks import BLOCK_CLASSES, STStepContext
from .st_embeddings import STEmbeddings

# GenerationConfig switches a whole-step rollout cannot honour (they would need per-token scores).
_UNSUPPORTED_OUTPUTS = ("output_scores", "output_logits", "output_attentions", "output_hidden_states")
# Model inputs `generate()` passes on to `forward`.
_GENERATION_MODEL_KWARGS = ("condition", "subject_ids", "channel_ids")


@dataclass
class STGPT2MEGOutput(ModelOutput):
    """loss: mean next-token cross-entropy (float32) when `labels` are given.
    logits: `(B, C, T, Q)`; position t predicts the token at t + 1.
    cache: the KV cache when `use_cache` (a `DynamicCache`); named `past_key_values` on transformers < 5.24.
    hidden_states: with `output_hidden_states`, the embeddings and every block's output, `(B, C, T, d_model)`.
    attentions: with `output_attentions`, every block's temporal attention weights `(B * C, heads, T, past + T)`.
    spatial_attentions: with `output_attentions`, every block's spatial weights `(B * T, heads, C, C)`.
    embeddings: the summed input embeddings `(B, C, T, d_model)` the first block reads.
    last_hidden_state: the final RMSNorm's output `(B, C, T, d_model)` (the reference's `return_logits=False`).
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    if CACHE_KWARG == "cache":
        cache: Cache | None = None
    else:
        past_key_values: Cache | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None
    spatial_attentions: tuple[torch.Tensor, ...] | None = None
    embeddings: torch.Tensor | None = None
    last_hidden_state: torch.Tensor | None = None


class STGPT2MEGPreTrainedModel(BrainGenPreTrainedModel):
    config_class = STGPT2MEGConfig
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _no_split_modules = ["STGPTBlock", "STGPTBlockParallel", "STBlock", "STConvBlock"]


class STGPT2MEGForCausalLM(ForecastMixin, STGPT2MEGPreTrainedModel, GenerationMixin):
    """STGPT2MEG over `(B, C, T)` mu-law tokens: `forward`, a KV-cached `generate()` of whole time steps and
    `forecast(signal, horizon)` in signal space."""

    def __init__(self, config: STGPT2MEGConfig):
        super().__init__(config)
        self.embeddings = STEmbeddings(config)
        block = BLOCK_CLASSES[config.block_type]
        self.blocks = nn.ModuleList(block(config, i) for i in range(config.layers))
        self.norm = nn.RMSNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.quant_emb

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.quant_emb = value

    def get_output_embeddings(self) -> None:
        return None  # the head is untied and sized by the mu-law bins; see resize_token_embeddings

    def resize_token_embeddings(self, *args, **kwargs):
        raise ValueError(
            "STGPT2MEG's vocabulary is the mu-law quantiser's bins (config.vocab_size = mu + 1); build a model with "
            "another vocab_size instead of resizing the token table"
        )

    # ---------------------------------------------------------------- inputs
    def _check_inputs(self, input_ids, condition, subject_ids, channel_ids) -> None:
        cfg = self.config
        self.check_tokens(input_ids, vocab_size=cfg.vocab_size, ndim=3, num_channels=cfg.num_channels)
        batch, _, steps = input_ids.shape
        if condition is not None:
            # Every table the ids index: the condition embedding and the conditioned attention's bias.
            limits = [cfg.num_classes] if cfg.class_emb else []
            if cfg.attn_type == "conditioned" and cfg.n_cond_tok:
                limits.append(cfg.n_cond_tok)
            if not limits:
                raise ValueError(
                    "`condition` was given but the model has no condition embedding (class_emb = 0) and no "
                    "conditioned attention (n_cond_tok = 0)"
                )
            self.check_tokens(condition, vocab_size=min(limits), name="condition", ndim=3)
            if tuple(condition.shape) != (batch, 1, steps):
                raise ValueError(
                    f"`condition` must have shape (B, 1, T) = {(batch, 1, steps)} (one id per time step), got "
                    f"{tuple(condition.shape)}"
                )
        elif cfg.attn_type == "conditioned" and cfg.n_cond_tok:
            raise ValueError("conditioned attention (n_cond_tok > 0) needs `condition` (B, 1, T) condition ids")
        if subject_ids is not None:
            if not cfg.sub_emb:
                raise ValueError("`subject_ids` was given but the model has no subject embedding (sub_emb = 0)")
            self.check_tokens(subject_ids, vocab_size=cfg.subjects, name="subject_ids", ndim=1)
            if subject_ids.shape[0] != batch:
                raise ValueError(f"`subject_ids` must hold one id per example ({batch}), got {subject_ids.shape[0]}")
        if channel_ids is not None:
            self.check_tokens(channel_ids, vocab_size=cfg.num_channels, name="channel_ids", ndim=1)
            if channel_ids.shape[0] != cfg.num_channels:
                raise ValueError(
                    f"`channel_ids` must name the channel embedding of each of the {cfg.num_channels} rows, got "
                    f"{channel_ids.shape[0]} ids"
                )

    def _check_cache(self, cache) -> None:
        if not isinstance(cache, Cache):
            raise ValueError(f"the cache must be a transformers Cache (e.g. DynamicCache), got {type(cache).__name__}")
        cfg = self.config
        # Slots past the blocks' attention keys: the conv history (STConvBlock) and the key-side conditions.
        extra = cfg.block_type == "STConvBlock" or (cfg.attn_type == "conditioned" and cfg.n_cond_tok > 0)
        slots = 3 * cfg.layers if extra else cfg.layers
        grows = getattr(cache, "layer_class_to_replicate", None) is not None
        if not grows and len(cache.layers) < slots:
            raise ValueError(
                f"this STGPT2MEG keeps {slots} cache slots but the cache has {len(cache.layers)} fixed layers; pass "
                "DynamicCache() (built without a config, it grows to the slots the model uses)"
            )

    def _step_context(self, condition, batch: int, channels: int, cache, output_attentions) -> STStepContext:
        # Eager attention (`attn_implementation="eager"`) computes the weights anyway; they are returned only if asked.
        eager = output_attentions or self.config._attn_implementation == "eager"
        ctx = STStepContext(cache=cache, output_attentions=eager)
        if condition is not None and self.config.attn_type == "conditioned":
            ids = condition[:, 0]  # (B, T)
            steps = ids.shape[-1]
            ctx.temporal_condition = ids.unsqueeze(1).expand(batch, channels, steps).reshape(batch * channels, steps)
            ctx.spatial_condition = ids.unsqueeze(-1).expand(batch, steps, channels).reshape(batch * steps, channels)
        return ctx

    # --------------------------------------------------------------- forward
    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        condition: torch.Tensor | None = None,
        subject_ids: torch.Tensor | None = None,
        channel_ids: torch.Tensor | None = None,
        cache: Cache | None = None,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> STGPT2MEGOutput:
        r"""
        Next-step logits of every channel.

        Args:
            input_ids (`torch.LongTensor` of shape `(B, C, T)`): mu-law tokens in `[0, vocab_size)`, C =
                `config.num_channels`. With a cache, only the new steps (their positions continue the cache's).
            labels (`torch.LongTensor` of shape `(B, C, T)`, *optional*): the token at t + 1 for position t (-100
                is ignored); `loss` is their mean cross-entropy in float32.
            condition (`torch.LongTensor` of shape `(B, 1, T)`, *optional*): a condition id per time step (models
                with `class_emb` or conditioned attention); id 0 adds no condition embedding.
            subject_ids (`torch.LongTensor` of shape `(B,)`, *optional*): subject of every example (`sub_emb`).
            channel_ids (`torch.LongTensor` of shape `(C,)`, *optional*): the channel embedding of every row.
            cache (`Cache`, *optional*): KV cache of the steps before `input_ids`, extended in place: a
                `DynamicCache()` (`past_key_values` on transformers < 5.24; there a deprecated alias).
            use_cache (`bool`, *optional*): `True` returns the cache (a new `DynamicCache` when none was passed);
                `False` ignores any cache (neither read nor extended).
            output_hidden_states, output_attentions (`bool`, *optional*): see `STGPT2MEGOutput`.
            return_dict (`bool`, *optional*): `False` returns a tuple of the non-None fields.
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
        reject_unknown_kwargs(kwargs, COMMON_FORWARD_KWARGS, f"{type(self).__name__}.forward")
        cfg = self.config
        keep_hidden = output_hidden_states if output_hidden_states is not None else cfg.output_hidden_states
        keep_attentions = output_attentions if output_attentions is not None else cfg.output_attentions
        if input_ids is None:
            raise ValueError("pass `input_ids` (B, C, T) mu-law tokens")
        self._check_inputs(input_ids, condition, subject_ids, channel_ids)
        if use_cache is False:
            cache = None  # neither read nor extended
        elif cache is None and use_cache:
            cache = DynamicCache()
        if cache is not None:
            self._check_cache(cache)
        batch, channels, _ = input_ids.shape
        embeddings = self.embeddings(input_ids, channel_ids, condition, subject_ids)
        ctx = self._step_context(condition, batch, channels, cache, keep_attentions)
        state = embeddings
        all_hidden, temporal_maps, spatial_maps = [state], [], []
        for block in self.blocks:
            state, temporal, spatial = block(state, ctx)
            all_hidden.append(state)
            temporal_maps.append(temporal)
            spatial_maps.append(spatial)
        hidden = self.norm(state)
        logits = self.head(hidden)
        return STGPT2MEGOutput(
            loss=self._loss(logits, labels),
            logits=logits,
            **{CACHE_KWARG: cache},
            hidden_states=tuple(all_hidden) if keep_hidden else None,
            attentions=tuple(temporal_maps) if keep_attentions else None,
            spatial_attentions=tuple(spatial_maps) if keep_attentions else None,
            embeddings=embeddings,
            last_hidden_state=hidden,
        )

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor | None:
        if labels is None:
            return None
        labels = check_labels(labels, num_classes=logits.shape[-1])
        if labels.shape != logits.shape[:-1]:
            raise ValueError(
                f"labels must have shape {tuple(logits.shape[:-1])} (B, C, T: position t holds the token at t+1), "
                f"got {tuple(labels.shape)}"
            )
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=-100)

    # ------------------------------------------------------------ generation
    def roll_out(
        self,
        input_ids: torch.Tensor,
        steps: int,
        choose,
        *,
        use_cache: bool = True,
        condition: torch.Tensor | None = None,
        subject_ids: torch.Tensor | None = None,
        channel_ids: torch.Tensor | None = None,
        streamer: BaseStreamer | None = None,
        progress: bool | None = False,
    ) -> torch.Tensor:
        """Extend `input_ids (B, C, T)` by `steps` time steps; returns the new tokens `(B, C, steps)`.

        `choose` maps the last step's logits `(B, C, Q)` to ids `(B, C)`. With `use_cache`, the context runs once
        and every later call feeds only the step just drawn; without, every step reruns the whole sequence.
        `condition (B, 1, T + steps)` covers the context and every generated step.
        """
        context = input_ids.shape[2]
        if condition is not None and tuple(condition.shape[1:]) != (1, context + steps):
            raise ValueError(
                f"`condition` must have shape (B, 1, T + new steps) = (B, 1, {context + steps}) here (one id per "
                f"step of the context and of the continuation), got {tuple(condition.shape)}"
            )
        cache = DynamicCache() if use_cache else None
        sequence, new, feed = input_ids, [], input_ids
        with forecast_progress(steps, f"{type(self).__name__} rollout", progress) as bar:
            for _ in range(steps):
                end = sequence.shape[2]
                cond = None if condition is None else condition[..., end - feed.shape[2] : end]
                out = self(
                    feed,
                    condition=cond,
                    subject_ids=subject_ids,
                    channel_ids=channel_ids,
                    **{CACHE_KWARG: cache},
                    use_cache=use_cache,
                )
                ids = choose(out.logits[:, :, -1])
                if streamer is not None:
                    streamer.put(ids.cpu())
                new.append(ids)
                sequence = torch.cat([sequence, ids.unsqueeze(-1)], dim=2)
                feed = ids.unsqueeze(-1) if use_cache else sequence
                bar.update(1)
        return torch.stack(new, dim=2)

    def generate(
        self,
        input_ids: torch.Tensor | None = None,
        generation_config: GenerationConfig | None = None,
        logits_processor: LogitsProcessorList | None = None,
        streamer: BaseStreamer | None = None,
        **kwargs,
    ) -> torch.Tensor | GenerateDecoderOnlyOutput:
        """Continue `input_ids` by whole time steps (the C tokens of a step are drawn together, one per channel).

        `input_ids` is either the token grid `(B, C, T)` or its flat time-major form `(B, T * C)` (step t holds
        `grid[:, :, t]`); the output has the same layout, the prompt (each row `num_return_sequences` times, next
        to each other) followed by `max_new_tokens` tokens: a multiple of C (C tokens per step). Without
        `max_new_tokens`, `max_length` bounds the flat length (rounded down to whole steps).

        Honoured: `do_sample`, `temperature`, `top_k`, `top_p`, `min_p`, `logits_processor` (before the warpers,
        with `input_ids=None`), `num_return_sequences` (sampling only), `use_cache` (False reruns the whole
        sequence every step), `return_dict_in_generate`, `streamer` (the prompt, then one `(B, C)` tensor per step,
        then `end()`), and the model inputs `condition (B, 1, T + new steps)`, `subject_ids`, `channel_ids`. Beam
        search, the `output_*` switches and any other keyword raise `ValueError`.
        """
        name, channels = type(self).__name__, self.config.num_channels
        config = copy.deepcopy(generation_config if generation_config is not None else self.generation_config)
        rest = config.update(**kwargs)
        model_kwargs = {k: rest.pop(k) for k in _GENERATION_MODEL_KWARGS if rest.get(k) is not None}
        mask = rest.pop("attention_mask", None)
        if mask is not None and not bool(mask.bool().all()):
            raise ValueError(f"{name} sequences are unpadded: an attention_mask with zeros is not supported")
        rest = {k: v for k, v in rest.items() if v is not None}
        if rest:
            raise ValueError(f"generate() of {name} does not use {sorted(rest)}")
        if (config.num_beams or 1) > 1 or (config.num_beam_groups or 1) > 1:
            raise ValueError(
                f"{name} has no beam search: the {channels} tokens of a time step are drawn jointly from one step's "
                "logits; use greedy decoding or sampling (num_beams=1)"
            )
        asked = [field for field in _UNSUPPORTED_OUTPUTS if getattr(config, field, False)]
        if asked:
            raise ValueError(f"generate() of {name} returns sequences only; unset {asked}")
        copies = config.num_return_sequences or 1
        if copies > 1 and not config.do_sample:
            raise ValueError(
                f"greedy decoding gives one sequence per input: num_return_sequences={copies} needs do_sample=True"
            )
        grid, flat = self._generation_grid(input_ids)
        steps = self._new_steps(config, grid.shape[1] * grid.shape[2])
        config.num_return_sequences = 1  # rows are repeated here; the sampler draws per row
        config = resolve_generation_config(self, config)
        processors = build_logits_processor(config, logits_processor)
        grid = grid.repeat_interleave(copies, dim=0)
        for key in ("condition", "subject_ids"):
            if key in model_kwargs:
                model_kwargs[key] = model_kwargs[key].repeat_interleave(copies, dim=0)
        if streamer is not None:
            streamer.put((rearrange(grid, "b c t -> b (t c)") if flat else grid).cpu())
        new = self.roll_out(
            grid,
            steps,
            lambda logits: choose_next(logits, config, processors),
            use_cache=config.use_cache is not False,
            streamer=streamer,
            **model_kwargs,
        )
        if streamer is not None:
            streamer.end()
        sequences = torch.cat([grid, new], dim=2)
        if flat:
            sequences = rearrange(sequences, "b c t -> b (t c)")
        return GenerateDecoderOnlyOutput(sequences=sequences) if config.return_dict_in_generate else sequences

    def _generation_grid(self, input_ids) -> tuple[torch.Tensor, bool]:
        channels = self.config.num_channels
        if input_ids is None:
            raise ValueError("generate() needs `input_ids`: the (B, C, T) token grid or its flat (B, T * C) form")
        if isinstance(input_ids, torch.Tensor) and input_ids.ndim == 2:
            if input_ids.shape[1] % channels:
                raise ValueError(
                    f"flat input_ids hold whole time steps of {channels} tokens (time-major), got length "
                    f"{input_ids.shape[1]}"
                )
            grid = rearrange(input_ids, "b (t c) -> b c t", c=channels)
            self.check_tokens(grid, vocab_size=self.config.vocab_size, ndim=3, num_channels=channels)
            return grid, True
        self.check_tokens(input_ids, vocab_size=self.config.vocab_size, ndim=3, num_channels=channels)
        return input_ids, False

    def _new_steps(self, config: GenerationConfig, prompt_tokens: int) -> int:
        channels = self.config.num_channels
        new_tokens = config.max_new_tokens
        if new_tokens is None:
            steps = (config.max_length - prompt_tokens) // channels
            if steps <= 0:
                raise ValueError(
                    f"max_length ({config.max_length}) leaves no room for a time step of {channels} tokens after the "
                    f"{prompt_tokens}-token prompt; set max_new_tokens (a multiple of {channels})"
                )
            return steps
        if isinstance(new_tokens, bool) or not isinstance(new_tokens, int) or new_tokens <= 0 or new_tokens % channels:
            raise ValueError(
                f"{type(self).__name__} generates whole time steps of {channels} tokens (one per channel): "
                f"max_new_tokens must be a positive multiple of {channels}, got {new_tokens!r}"
            )
        return new_tokens // channels

    # ------------------------------------------------------------- forecast
    def _forecast(
        self,
        input_values: torch.Tensor,
        horizon: int,
        generation_config,
        logits_processor,
        *,
        progress: bool | None,
        condition: torch.Tensor | None = None,
        subject_ids: torch.Tensor | None = None,
        channel_ids: torch.Tensor | None = None,
        channel_names: list[str] | None = None,
    ) -> ForecastOutput:
        """Forecast `horizon` samples of every channel after `input_values (B, C, T)` (training units).

        The signal is mu-law encoded with `mu = vocab_size - 1` after dividing by `config.mulaw_max_value`, rolled
        out one time step at a time (KV-cached unless `generation_config.use_cache` is False) and decoded back.
        `condition (B, 1, T + horizon)` covers the context and the forecast. Returns `values (B, C, horizon)` and
        `codes (B, C, horizon)`, the chosen bins.
        """
        cfg = self.config
        signal = self.check_signal(
            input_values, name="input_values", ndim=3, num_channels=cfg.num_channels, channel_names=channel_names
        )
        tokens = signal_to_mulaw(signal, cfg.vocab_size, cfg.mulaw_max_value)
        codes = self.roll_out(
            tokens,
            horizon,
            lambda logits: choose_next(logits, generation_config, logits_processor),
            use_cache=generation_config.use_cache is not False,
            condition=condition,
            subject_ids=subject_ids,
            channel_ids=channel_ids,
            progress=progress,
        )
        values = mulaw_to_signal(codes, cfg.vocab_size, cfg.mulaw_max_value).to(signal.dtype)
        return ForecastOutput(values=values, codes=codes)
