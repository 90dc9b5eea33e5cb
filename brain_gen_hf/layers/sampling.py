"""Token samplers for rollouts (FlatGPT, the BrainOmni forecaster): argmax, or roulette (multinomial) behind
transformers' logits warpers. The reference's exact sampler (with its top-p quirk) is `tokenizers.sampling.sample`."""

from __future__ import annotations

import torch
from transformers.generation.logits_process import (LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper,
                                                    TopPLogitsWarper)


def make_sampler(strategy: str = "argmax", *, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                 generator: torch.Generator | None = None):
    """`logits (..., V) -> ids (...)`. "roulette" samples the full (warped) distribution, as brain-gen's eval."""
    if strategy == "argmax":
        return lambda logits: logits.argmax(-1)
    if strategy != "roulette":
        raise ValueError(f"strategy must be 'argmax' or 'roulette', got {strategy!r}")
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    warpers = LogitsProcessorList()
    if temperature != 1.0:
        warpers.append(TemperatureLogitsWarper(temperature))
    if top_k:
        warpers.append(TopKLogitsWarper(top_k))
    if top_p < 1.0:
        warpers.append(TopPLogitsWarper(top_p))

    def sample(logits: torch.Tensor) -> torch.Tensor:
        flat = logits.reshape(-1, logits.shape[-1]).float()
        flat = warpers(None, flat)
        ids = torch.multinomial(flat.softmax(-1), 1, generator=generator)
        return ids.reshape(logits.shape[:-1])

    return sample
