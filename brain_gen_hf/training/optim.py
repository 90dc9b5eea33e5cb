"""The reference's optimiser and schedules: AdamW with decay / no-decay groups, linear warmup; or any
transformers schedule (`transformers.get_scheduler` names) or `torch.optim.lr_scheduler` class by name.

Every schedule steps once per optimiser step.
"""

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
    # `decays` marks the group a resumed phase's new weight decay applies to (`with_new_hyperparameters`).
    groups = [
        {"params": decay, "weight_decay": weight_decay, "decays": True},
        {"params": no_decay, "weight_decay": 0.0, "decays": False},
    ]
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


REFERENCE_SCHEDULES = ("linear_warmup", "cosine", "constant")
# Schedules that need a validation metric at each step; the trainer steps schedules per optimiser step.
_METRIC_SCHEDULES = ("reduce_lr_on_plateau", "ReduceLROnPlateau")


def _transformers_schedules() -> tuple[str, ...]:
    from transformers import SchedulerType

    return tuple(kind.value for kind in SchedulerType)


def _torch_schedule(name: str):
    cls = getattr(torch.optim.lr_scheduler, name, None)
    is_schedule = isinstance(cls, type) and issubclass(cls, torch.optim.lr_scheduler.LRScheduler)
    return cls if is_schedule and cls is not torch.optim.lr_scheduler.LRScheduler else None


def check_schedule_name(name: str, kwargs: dict | None) -> None:
    """A ValueError naming the choices when `name` is no schedule this trainer can step per optimiser step."""
    if name in _METRIC_SCHEDULES:
        raise ValueError(
            f"lr_schedule {name!r} needs a validation metric at every step; use a step schedule "
            "(e.g. cosine, CosineAnnealingLR, inverse_sqrt)"
        )
    if name in REFERENCE_SCHEDULES:
        if kwargs:
            raise ValueError(f"lr_schedule {name!r} takes no lr_scheduler_kwargs (got {sorted(kwargs)})")
        return
    if name in _transformers_schedules() or _torch_schedule(name) is not None:
        return
    torch_names = sorted(
        n for n in dir(torch.optim.lr_scheduler) if _torch_schedule(n) is not None and n not in _METRIC_SCHEDULES
    )
    raise ValueError(
        f"unknown lr_schedule {name!r}; use one of {list(REFERENCE_SCHEDULES)}, a transformers schedule "
        f"{[n for n in _transformers_schedules() if n not in _METRIC_SCHEDULES]} or a torch.optim.lr_scheduler "
        f"class {torch_names}"
    )


def build_scheduler(optimizer: torch.optim.Optimizer, args) -> torch.optim.lr_scheduler.LRScheduler:
    """The schedule `args.lr_schedule` names. The reference's names keep their meaning (`cosine` decays to
    `min_lr_ratio`); a torch class gets `args.warmup_steps` of the reference's linear warmup in front of it."""
    name, kwargs = args.lr_schedule, dict(args.lr_scheduler_kwargs or {})
    if name in REFERENCE_SCHEDULES:
        warmup = args.warmup_steps if name != "constant" else 0
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            lambda step: lr_multiplier(
                step,
                warmup_steps=warmup,
                total_steps=args.max_steps,
                schedule=name,
                min_lr_ratio=args.min_lr_ratio,
            ),
        )
    if name in _transformers_schedules():
        from transformers import get_scheduler

        return get_scheduler(
            name,
            optimizer,
            num_warmup_steps=args.warmup_steps,
            num_training_steps=args.max_steps,
            scheduler_specific_kwargs=kwargs,
        )
    try:
        schedule = _torch_schedule(name)(optimizer, **kwargs)
    except TypeError as err:
        raise ValueError(f"lr_scheduler_kwargs {kwargs} do not fit torch.optim.lr_scheduler.{name}: {err}") from None
    if not args.warmup_steps:
        return schedule
    warmup = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / args.warmup_steps))
    return torch.optim.lr_scheduler.SequentialLR(optimizer, [warmup, schedule], milestones=[args.warmup_steps])


def with_new_hyperparameters(optimizer, scheduler, *, lr: float | None, weight_decay: float | None) -> None:
    """A resumed phase's new peak lr / weight decay, after the previous phase's optimiser and schedule state were
    loaded: the schedule's base lrs (through its state dict, chained schedules included) and every group's lr,
    keeping the schedule's current factor; decay groups get `weight_decay`, no-decay groups keep 0."""
    for group in optimizer.param_groups:
        if weight_decay is not None:
            group["weight_decay"] = weight_decay if group.get("decays", group["weight_decay"] != 0.0) else 0.0
        base = group.get("initial_lr") or group["lr"]
        if lr is not None and base != lr:  # (a resumed phase's saved state already has it: leave its bits alone)
            group["lr"] = lr * (group["lr"] / base if base else 1.0)
            group["initial_lr"] = lr
    if lr is not None:
        state = scheduler.state_dict()
        _set_base_lrs(state, lr)
        scheduler.load_state_dict(state)


def _set_base_lrs(state: dict, lr: float) -> None:
    if "base_lrs" in state:
        state["base_lrs"] = [lr] * len(state["base_lrs"])
    for child in state.get("_schedulers", []) or []:
        if isinstance(child, dict):
            _set_base_lrs(child, lr)
