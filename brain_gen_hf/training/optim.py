"""The reference's optimiser and schedules: AdamW with decay / no-decay groups, linear warmup."""

from __future__ import annotations

import math

import torch
from torch import nn


def is_no_decay(name: str, param: torch.Tensor) -> bool:
    """Biases, norm weights and every 1-D parameter are not weight-decayed (brain-gen's rule)."""
    lower = name.lower()
    return (
        lower.endswith(("bias", ".norm.weight"))
        or "layernorm" in lower
        or "rmsnorm" in lower
        or ".norm." in lower
        or "_norm" in lower
        or param.ndim == 1
    )


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups over trainable parameters (frozen ones, e.g. a held tokenizer, are left out)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if is_no_decay(name, param) else decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def build_optimizer(model: nn.Module, args) -> torch.optim.AdamW:
    return torch.optim.AdamW(
        parameter_groups(model, args.weight_decay),
        lr=args.learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        eps=args.adam_epsilon,
    )


def lr_multiplier(step: int, *, warmup_steps: int, total_steps: int, schedule: str, min_lr_ratio: float) -> float:
    """LR factor at optimiser step `step` (0-based).

    Warmup follows the reference: `min(1, (step + 1) / warmup_steps)`, so the first step already uses
    `1 / warmup_steps`. After warmup: constant (the paper runs) or cosine decay to `min_lr_ratio`.
    """
    if warmup_steps > 0 and step < warmup_steps:
        return min(1.0, (step + 1) / warmup_steps)
    if schedule != "cosine":
        return 1.0
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def build_scheduler(optimizer: torch.optim.Optimizer, args) -> torch.optim.lr_scheduler.LambdaLR:
    warmup = args.warmup_steps if args.lr_schedule != "constant" else 0
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: lr_multiplier(
            step,
            warmup_steps=warmup,
            total_steps=args.max_steps,
            schedule=args.lr_schedule,
            min_lr_ratio=args.min_lr_ratio,
        ),
    )
