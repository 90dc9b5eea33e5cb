"""Token sampling over the last axis of a logits tensor (spec models.md §2.9).

Matches the reference `utils.eval.sample` draw for draw under the same torch seed: the same
softmax, the same `torch.multinomial` calls on the same (flattened) probability tables.
"""

from __future__ import annotations

import torch

SAMPLING_STRATEGIES = ("argmax", "roulette", "top_k", "top_p")


def _resolve_temperature(temperature, logits: torch.Tensor):
    """A positive float, or a tensor broadcastable to `logits` (clamped to >= 1e-6)."""
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


@torch.inference_mode()
def sample(
    logits: torch.Tensor,
    strategy: str = "argmax",
    temperature: float | torch.Tensor = 1.0,
    top_k: int = 0,
    top_p: float = 0.0,
) -> torch.Tensor:
    """Pick one token per position from `logits` (..., V).

    Args:
        logits: unnormalised scores, vocabulary on the last axis.
        strategy: `"argmax"` (ignores temperature), `"roulette"` (full distribution),
            `"top_k"` (the k most likely tokens, renormalised) or `"top_p"`.
        temperature: a float (<= 0 means 1.0) or a tensor broadcastable to `logits`.
        top_k: number of tokens kept by `"top_k"`; must be >= 1 for that strategy.
        top_p: probability mass for `"top_p"`. As in the reference, a token is dropped when the
            cumulative probability *including itself* exceeds `top_p` (so the token that crosses
            the threshold is excluded, unlike standard nucleus sampling); the most likely token
            is always kept. `top_p=1.0` equals roulette.

    Returns:
        int64 token ids of shape `logits.shape[:-1]`.
    """
    if strategy not in SAMPLING_STRATEGIES:
        raise ValueError(f"Unknown sampling strategy {strategy!r}; expected one of {SAMPLING_STRATEGIES}.")
    if logits.ndim < 1 or logits.shape[-1] == 0:
        raise ValueError(f"sample expects logits with a non-empty vocabulary axis, got shape {tuple(logits.shape)}.")
    if bool(torch.isnan(logits).any()):  # argmax would pick a NaN's index, multinomial fail with a raw error
        raise ValueError(f"sample got logits with {int(torch.isnan(logits).sum())} NaN values; no token can be drawn.")
    if strategy == "argmax":
        return logits.argmax(dim=-1)

    batch_shape = logits.shape[:-1]
    probs = torch.softmax(logits / _resolve_temperature(temperature, logits), dim=-1)

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
    dropped = torch.cumsum(sorted_probs, dim=-1) > top_p
    dropped[..., 0] = False
    sorted_probs[dropped] = 0.0
    choice = _draw(sorted_probs / sorted_probs.sum(dim=-1, keepdim=True), batch_shape)
    return torch.gather(sorted_ids, -1, choice.unsqueeze(-1)).squeeze(-1)
