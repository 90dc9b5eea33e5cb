"""What the rollouts (FlatGPT, the BrainOmni forecaster) share: token samplers and the progress bar.

Samplers: argmax, or roulette (multinomial) behind transformers' logits warpers. The reference's exact sampler
(with its top-p quirk) is `tokenizers.sampling.sample`.
"""

from __future__ import annotations

import sys

import torch
from transformers.generation.logits_process import (LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper,
                                                    TopPLogitsWarper)


def make_sampler(strategy: str = "argmax", *, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                 generator: torch.Generator | None = None):
    """`logits (..., V) -> ids (...)`. "roulette" samples the full (warped) distribution, as brain-gen's eval.

    NaN logits raise `ValueError` (argmax would pick a NaN's index, multinomial fail with a raw error).
    """
    if strategy == "argmax":
        return lambda logits: check_logits(logits).argmax(-1)
    if strategy != "roulette":
        raise ValueError(f"strategy must be 'argmax' or 'roulette', got {strategy!r}")
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
        raise ValueError(f"top_k must be a non-negative int (0 keeps every token), got {top_k!r}")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1] (1 keeps every token), got {top_p}")
    warpers = LogitsProcessorList()
    if temperature != 1.0:
        warpers.append(TemperatureLogitsWarper(temperature))
    if top_k:
        warpers.append(TopKLogitsWarper(top_k))
    if top_p < 1.0:
        warpers.append(TopPLogitsWarper(top_p))

    def sample(logits: torch.Tensor) -> torch.Tensor:
        flat = check_logits(logits).reshape(-1, logits.shape[-1]).float()
        flat = warpers(None, flat)
        ids = torch.multinomial(flat.softmax(-1), 1, generator=generator)
        return ids.reshape(logits.shape[:-1])

    return sample


def check_logits(logits: torch.Tensor) -> torch.Tensor:
    """`logits`, unless they hold NaN (-inf, a masked token, is fine)."""
    if bool(torch.isnan(logits).any()):
        raise ValueError(f"the logits hold {int(torch.isnan(logits).sum())} NaN values: no token can be sampled; check "
                         "the model's inputs and weights (or its dtype: float16 can overflow)")
    return logits


# With `progress=None`, rollouts of at least this many units (tokens or token steps) show a bar in a terminal or a
# notebook; shorter ones, and any run whose stderr is not interactive (logs, CI, batch jobs), stay quiet.
LONG_ROLLOUT = 256


def rollout_progress(total: int, progress: bool | None, *, desc: str, unit: str):
    """A tqdm bar over `total` rollout units: always shown with `progress=True`, never with `False`; with `None`
    only for a long rollout in an interactive session. Use it as a context manager and `update(n)` it."""
    from tqdm.auto import tqdm

    if progress is not None and not isinstance(progress, bool):
        raise ValueError(f"progress must be True, False or None (automatic), got {progress!r}")
    if progress is None:
        progress = total >= LONG_ROLLOUT and _interactive()
    return tqdm(total=total, desc=desc, unit=unit, disable=not progress, leave=False, dynamic_ncols=True)


def _interactive() -> bool:
    return sys.stderr.isatty() or "ipykernel" in sys.modules
