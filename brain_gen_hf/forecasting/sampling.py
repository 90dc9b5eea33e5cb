"""Choosing the next token of a forecast from a transformers `GenerationConfig`.

`build_logits_processor` turns the config's sampling fields into transformers' own logits warpers (the order
`generate` uses), `choose_next` takes the argmax or draws from the processed distribution. The global torch RNG
drives the draws, so `transformers.set_seed` / `torch.manual_seed` make a sampled forecast reproducible.
`ReferenceTopPLogitsWarper` is brain-gen's nucleus rule, for converted models whose behaviour depends on it;
`reference_sample` is brain-gen's `utils.eval.sample`, draw for draw (parity checks).
"""

from __future__ import annotations

import copy
import sys

import torch
from transformers import (
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
    MinPLogitsWarper,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

# GenerationConfig fields `forecast` cannot honour, with the value that leaves them off: a config that sets one
# is refused rather than silently forecast without it.
UNSUPPORTED_GENERATION_FIELDS = {
    "num_beams": 1,
    "num_beam_groups": 1,
    "num_return_sequences": 1,
    "penalty_alpha": None,
    "repetition_penalty": 1.0,
    "encoder_repetition_penalty": 1.0,
    "no_repeat_ngram_size": 0,
    "bad_words_ids": None,
    "force_words_ids": None,
    "sequence_bias": None,
    "guidance_scale": None,
    "typical_p": 1.0,
    "epsilon_cutoff": 0.0,
    "eta_cutoff": 0.0,
    "top_h": None,
    "suppress_tokens": None,
    "begin_suppress_tokens": None,
    "constraints": None,
}

# With `progress=None`, forecasts of at least this many steps show a bar in a terminal or a notebook; shorter
# ones, and any run whose stderr is not interactive (logs, CI, batch jobs), stay quiet.
LONG_FORECAST = 256


def resolve_generation_config(model, generation_config: GenerationConfig | None = None) -> GenerationConfig:
    """A validated copy of `generation_config`; `None` -> the model's `generation_config` if it has one, else
    greedy decoding (`GenerationConfig()`). Settings a forecast cannot honour (beams, penalties, ...) and
    out-of-range sampling values raise `ValueError`."""
    if generation_config is None:
        generation_config = getattr(model, "generation_config", None) or GenerationConfig()
    if not isinstance(generation_config, GenerationConfig):
        raise TypeError(
            f"generation_config must be a transformers GenerationConfig, got "
            f"{type(generation_config).__name__}; build one with GenerationConfig(do_sample=True, ...)"
        )
    config = copy.deepcopy(generation_config)
    unsupported = [
        f"{name}={getattr(config, name)!r}"
        for name, off in UNSUPPORTED_GENERATION_FIELDS.items()
        if getattr(config, name, None) not in (None, off)
    ]
    if unsupported:
        raise ValueError(
            f"forecast cannot honour generation_config {', '.join(unsupported)}: it decodes greedily or "
            "samples (do_sample, temperature, top_k, top_p, min_p); unset these fields"
        )
    if config.do_sample not in (None, True, False):
        raise ValueError(f"generation_config.do_sample must be True or False, got {config.do_sample!r}")
    if config.temperature is not None and not (isinstance(config.temperature, (int, float)) and config.temperature > 0):
        raise ValueError(f"generation_config.temperature must be a positive number, got {config.temperature!r}")
    top_k = config.top_k
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0):
        raise ValueError(f"generation_config.top_k must be a non-negative int (0 keeps every token), got {top_k!r}")
    if config.top_p is not None and not 0 < config.top_p <= 1:
        raise ValueError(f"generation_config.top_p must be in (0, 1] (1 keeps every token), got {config.top_p!r}")
    if config.min_p is not None and not 0 <= config.min_p <= 1:
        raise ValueError(f"generation_config.min_p must be in [0, 1], got {config.min_p!r}")
    return config


def build_logits_processor(
    generation_config: GenerationConfig,
    extra: LogitsProcessorList | list | None = None,
    *,
    reference_top_p: bool = False,
) -> LogitsProcessorList:
    """The processors `choose_next` applies: `extra` (the caller's own) first, then, when sampling, transformers'
    temperature, top-k, top-p and min-p warpers in the order `generate` uses. `reference_top_p` swaps the
    top-p warper for `ReferenceTopPLogitsWarper` (brain-gen's rule, for converted models that need it)."""
    processors = LogitsProcessorList(extra or [])
    if not generation_config.do_sample:
        return processors
    if generation_config.temperature is not None and generation_config.temperature != 1.0:
        processors.append(TemperatureLogitsWarper(generation_config.temperature))
    if generation_config.top_k:
        processors.append(TopKLogitsWarper(generation_config.top_k))
    if generation_config.top_p is not None and generation_config.top_p < 1.0:
        top_p = ReferenceTopPLogitsWarper if reference_top_p else TopPLogitsWarper
        processors.append(top_p(generation_config.top_p))
    if generation_config.min_p is not None:
        processors.append(MinPLogitsWarper(generation_config.min_p))
    return processors


def choose_next(
    logits: torch.Tensor, generation_config: GenerationConfig, logits_processor: LogitsProcessorList | None = None
) -> torch.Tensor:
    """`logits (..., V)` -> int64 ids `(...)`: the argmax of the processed scores, or with `do_sample` one draw
    per row from their softmax (global torch RNG). The processors see `input_ids=None` (a forecast has no token
    prefix to condition on) and float32 scores `(N, V)`. NaN logits raise `ValueError`."""
    check_logits(logits)
    scores = logits.reshape(-1, logits.shape[-1]).float()
    if logits_processor:
        scores = logits_processor(None, scores)
    if not generation_config.do_sample:
        ids = scores.argmax(-1)
    else:
        if bool(torch.isneginf(scores).all(-1).any()):
            raise ValueError(
                "the logits processors masked every token of a row: nothing is left to sample; "
                "relax top_k / top_p / min_p or the custom processors"
            )
        ids = torch.multinomial(scores.softmax(-1), 1).squeeze(-1)
    return ids.reshape(logits.shape[:-1])


def check_logits(logits: torch.Tensor) -> torch.Tensor:
    """`logits`, unless they hold NaN (-inf, a masked token, is fine): argmax would pick a NaN's index and
    multinomial fail with a raw error."""
    if bool(torch.isnan(logits).any()):
        raise ValueError(
            f"the logits hold {int(torch.isnan(logits).sum())} NaN values: no token can be chosen; check "
            "the model's inputs and weights (or its dtype: float16 can overflow)"
        )
    return logits


class ReferenceTopPLogitsWarper(LogitsProcessor):
    """brain-gen's nucleus rule: a token is dropped when the cumulative probability *including itself* exceeds
    `top_p` (transformers' `TopPLogitsWarper` keeps the token that crosses the threshold); the
    `min_tokens_to_keep` most likely tokens are always kept."""

    def __init__(self, top_p: float, filter_value: float = -float("inf"), min_tokens_to_keep: int = 1):
        if not 0 <= top_p <= 1:
            raise ValueError(f"top_p must be in [0, 1], got {top_p!r}")
        if isinstance(min_tokens_to_keep, bool) or not isinstance(min_tokens_to_keep, int) or min_tokens_to_keep < 1:
            raise ValueError(f"min_tokens_to_keep must be a positive int, got {min_tokens_to_keep!r}")
        self.top_p, self.filter_value, self.min_tokens_to_keep = float(top_p), filter_value, min_tokens_to_keep

    def __call__(self, input_ids: torch.LongTensor | None, scores: torch.FloatTensor) -> torch.FloatTensor:
        sorted_probs, sorted_ids = torch.sort(scores.softmax(-1), dim=-1, descending=True)
        dropped_sorted = _reference_top_p_dropped(sorted_probs, self.top_p, self.min_tokens_to_keep)
        dropped = dropped_sorted.scatter(-1, sorted_ids, dropped_sorted)
        return scores.masked_fill(dropped, self.filter_value)


def _reference_top_p_dropped(sorted_probs: torch.Tensor, top_p: float, keep: int = 1) -> torch.Tensor:
    """Over probabilities sorted descending: True where brain-gen's top-p drops the token."""
    dropped = torch.cumsum(sorted_probs, dim=-1) > top_p
    dropped[..., :keep] = False
    return dropped


REFERENCE_STRATEGIES = ("argmax", "roulette", "top_k", "top_p")


@torch.inference_mode()
def reference_sample(
    logits: torch.Tensor,
    strategy: str = "argmax",
    temperature: float | torch.Tensor = 1.0,
    top_k: int = 0,
    top_p: float = 0.0,
) -> torch.Tensor:
    """brain-gen's `utils.eval.sample`, draw for draw under the same torch seed: the same softmax and the same
    `torch.multinomial` calls on the same probability tables (top-k draws from the k kept probabilities, top-p
    from all of them sorted). `choose_next` samples the same distributions but always from the full table in
    token order (as `generate` does), and `torch.multinomial`'s draw depends on the table's layout, so only
    this function reproduces the reference's individual draws.

    temperature: a float (<= 0 means 1.0) or a tensor broadcastable to `logits`; `"argmax"` ignores it.
    Returns int64 ids of shape `logits.shape[:-1]`.
    """
    if strategy not in REFERENCE_STRATEGIES:
        raise ValueError(f"Unknown sampling strategy {strategy!r}; expected one of {REFERENCE_STRATEGIES}.")
    if logits.ndim < 1 or logits.shape[-1] == 0:
        raise ValueError(f"sample expects logits with a non-empty vocabulary axis, got shape {tuple(logits.shape)}.")
    check_logits(logits)
    if strategy == "argmax":
        return logits.argmax(dim=-1)
    batch_shape = logits.shape[:-1]
    probs = torch.softmax(logits / _reference_temperature(temperature, logits), dim=-1)
    if strategy == "roulette":
        return _draw(probs, batch_shape)
    if strategy == "top_k":
        if top_k < 1:
            raise ValueError(f"top_k sampling needs top_k >= 1, got {top_k}.")
        kept_probs, kept_ids = torch.topk(probs, min(top_k, probs.shape[-1]), dim=-1)
        choice = _draw(kept_probs / kept_probs.sum(dim=-1, keepdim=True), batch_shape)
        return torch.gather(kept_ids, -1, choice.unsqueeze(-1)).squeeze(-1)
    if not 0.0 <= top_p <= 1.0:
        raise ValueError(f"top_p must be in [0, 1], got {top_p}.")
    sorted_probs, sorted_ids = torch.sort(probs, dim=-1, descending=True)
    sorted_probs[_reference_top_p_dropped(sorted_probs, top_p)] = 0.0
    choice = _draw(sorted_probs / sorted_probs.sum(dim=-1, keepdim=True), batch_shape)
    return torch.gather(sorted_ids, -1, choice.unsqueeze(-1)).squeeze(-1)


def _reference_temperature(temperature, logits: torch.Tensor):
    """A positive float, or a tensor broadcastable to `logits` (clamped to >= 1e-6), as brain-gen reads it."""
    if isinstance(temperature, (int, float)):
        return float(temperature) if temperature > 0 else 1.0
    temperature = torch.as_tensor(temperature, device=logits.device, dtype=logits.dtype)
    if temperature.numel() == 1:
        value = float(temperature.item())
        return value if value > 0 else 1.0
    return temperature.clamp(min=1e-6)


def _draw(probs: torch.Tensor, batch_shape: torch.Size) -> torch.Tensor:
    """One multinomial draw per row of `probs` (..., V), reshaped to `batch_shape`."""
    return torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1).view(batch_shape)


def forecast_progress(total: int, desc: str, progress: bool | None = None, *, unit: str = "step"):
    """A tqdm bar over `total` forecast steps: always shown with `progress=True`, never with `False`; with `None`
    only for a long forecast (`LONG_FORECAST` steps or more) in an interactive session. Use it as a context
    manager and `update(n)` it."""
    from tqdm.auto import tqdm

    if progress is not None and not isinstance(progress, bool):
        raise ValueError(f"progress must be True, False or None (automatic), got {progress!r}")
    if progress is None:
        progress = total >= LONG_FORECAST and _interactive()
    return tqdm(total=total, desc=desc, unit=unit, disable=not progress, leave=False, dynamic_ncols=True)


def _interactive() -> bool:
    return sys.stderr.isatty() or "ipykernel" in sys.modules
