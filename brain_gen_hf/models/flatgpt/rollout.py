"""The sliding-window rollout every FlatGPT variant generates with (brain-gen's forecast loop).

The context is capped at a window of tokens. Within a window, each new block of `model.prediction_block` tokens
is fed through the KV cache (or the whole context is re-run without one); once the window is full its first
`stride` tokens are dropped, in whole time steps so grid positions and per-slot tables stay aligned, and the rest
is prefilled again with positions restarting at 0. Cached and uncached rollouts give the same tokens.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import torch

from ...forecasting import forecast_progress


def window_arg(window, name: str) -> int | None:
    """A window length in tokens, or `None` for the default (`None` or -1). A float or a string would be
    truncated or fail deep in the rollout, so only integers are read."""
    if window is None or (isinstance(window, numbers.Integral) and window == -1):
        return None
    if isinstance(window, bool) or not isinstance(window, numbers.Integral):
        raise ValueError(  # noqa: TRY004 (bad inputs are ValueErrors throughout, as in `check_tokens`)
            f"{name} must be an int (tokens) or None (the context length), got {window!r}"
        )
    return int(window)


def check_window(window: int, step: int, needed: int) -> None:
    """A window must hold a time step; one that must slide must hold more, or the rollout never advances."""
    if window < step:
        raise ValueError(f"the window ({window} tokens) must hold at least one time step ({step} tokens)")
    if window == step and needed > window:
        raise ValueError(
            f"a window of one time step ({step} tokens) cannot slide: after each slide it would "
            "be full again before generating anything. The context and the new tokens need "
            f"{needed} tokens; pass a window (`window` / `max_context_tokens`) of at least "
            f"{2 * step} tokens (two time steps), or of {needed} to avoid sliding"
        )


def window_stride(window: int, overlap: float | int, step: int) -> int:
    """Tokens dropped when the window slides: an int overlap counts tokens, a float is a fraction of the window;
    rounded down to whole time steps (at least one)."""
    if isinstance(overlap, bool) or not isinstance(overlap, (int, float)):
        raise ValueError(f"sliding_window_overlap must be an int (tokens) or a float (fraction), got {overlap!r}")
    if not math.isfinite(overlap) or overlap < 0:
        raise ValueError(f"sliding_window_overlap must be a non-negative number, got {overlap}")
    stride = max(1, overlap) if isinstance(overlap, int) else round(window * overlap)
    stride = max(1, min(stride, window))
    return max(step, stride // step * step)


def checked_ids(sample_fn: Callable, logits: torch.Tensor, vocab_size: int, device: torch.device) -> torch.Tensor:
    """`sample_fn(logits (B, n, V))`, checked: a sampler must return `(B, n)` vocabulary ids (the decode step
    skips forward()'s check, and a wrong shape would silently change how many tokens were generated)."""
    new = sample_fn(logits)
    if not isinstance(new, torch.Tensor):
        raise TypeError(f"sample_fn must return a tensor of token ids, got {type(new).__name__}")
    if tuple(new.shape) != tuple(logits.shape[:2]):
        raise ValueError(
            f"sample_fn must return token ids of shape {tuple(logits.shape[:2])} (one per logits "
            f"row), got {tuple(new.shape)}"
        )
    if new.is_floating_point() or new.is_complex():
        raise ValueError(f"sample_fn must return integer token ids, got dtype {new.dtype}")
    new = new.to(device, torch.long)
    if int(new.min()) < 0 or int(new.max()) >= vocab_size:
        raise ValueError(f"sample_fn returned ids outside [0, {vocab_size - 1}]")
    return new


def windowed_rollout(
    model,
    input_ids: torch.Tensor,
    max_new_tokens: int,
    sample_fn: Callable,
    *,
    window: int | None,
    sliding_window_overlap: float | int,
    use_cache: bool,
    progress: bool | None,
) -> torch.Tensor:
    """`max_new_tokens` tokens after `input_ids` (see the module docstring); returns the new tokens only.

    `model` provides `check_input_ids`, `sequence_step`, `prediction_block`, `new_cache()` and
    `_next_block_logits(ids, cache, decode=...)`.
    """
    model.check_input_ids(input_ids)
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be a non-negative int, got {max_new_tokens!r}")
    step = model.sequence_step
    window = window_arg(window, "window")
    if window is None and input_ids.shape[1] < step:
        # The default window is the context length; name the context, not a window the caller never passed.
        raise ValueError(
            f"the context ({input_ids.shape[1]} tokens) is shorter than one time step ({step} "
            f"tokens), so it cannot set the default window; pass a longer context or "
            f"`window` (at least {step} tokens)"
        )
    window = input_ids.shape[1] if window is None else window
    check_window(window, step, input_ids.shape[1] + max_new_tokens)
    stride = window_stride(window, sliding_window_overlap, step)
    block, vocab_size = model.prediction_block, model.config.vocab_size
    context, generated, total = input_ids, [], 0
    with forecast_progress(max_new_tokens, f"{type(model).__name__} rollout", progress, unit="token") as bar:
        while total < max_new_tokens:
            if context.shape[1] > window:
                excess = context.shape[1] - window
                context = context[:, -(-excess // step) * step :]
            cache = model.new_cache() if use_cache else None
            logits = model._next_block_logits(context, cache, decode=False)
            # With the cache, the window's new tokens are joined to `context` once, when the window slides,
            # instead of re-copying the growing context on every step.
            length, window_new = context.shape[1], []
            while total < max_new_tokens and length < window:
                n = min(block, max_new_tokens - total, window - length, logits.shape[1])
                new = checked_ids(sample_fn, logits[:, :n], vocab_size, context.device)
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
                logits = model._next_block_logits(new if use_cache else context, cache, decode=use_cache)
            if total >= max_new_tokens:
                break
            if window_new:
                context = torch.cat([context, *window_new], dim=1)
            context = context[:, stride:] if context.shape[1] > stride else context[:, -step:]
    if not generated:
        return input_ids[:, :0]
    return torch.cat(generated, dim=1)
