"""Typed run configuration: YAML file + `--key=value` overrides -> dataclasses via `HfArgumentParser`.

Unknown or mistyped keys fail before any work starts, naming the key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class ModelArguments:
    """Which model to train and how to build it."""

    task: str = field(metadata={"help": "family switch: wavenet | brain_tokenizer | flatgpt | classifier | bendr"})
    model_type: str | None = field(default=None, metadata={"help": "registered model_type to build from config"})
    model_config: dict | None = field(default=None, metadata={"help": "config fields for model_type"})
    pretrained: str | None = field(default=None, metadata={"help": "folder or Hub repo to start from"})
    tokenizer: str | None = field(default=None, metadata={"help": "pretrained brain tokenizer (flatgpt RVQ)"})


@dataclass
class DataArguments:
    """Where the windows come from (a `brain-gen-hf preprocess` folder or Hub dataset repo)."""

    dataset: str = field(metadata={"help": "local dataset folder or Hub dataset repo id"})
    train_split: str = "train"
    eval_split: str | None = "validation"
    example_seconds: float = 10.24
    overlap_seconds: float = 0.0
    batch_size: int = 8
    eval_batch_size: int | None = None
    num_workers: int = 0
    max_eval_batches: int | None = None
    label_column: str | None = field(default=None, metadata={
        "help": "classifier task: segment metadata column whose value is each window's class (subject, "
                "session, task or dataset)"})


@dataclass
class RunArguments:
    """Optimisation, checkpointing, logging and Hub settings."""

    output_dir: str = "outputs/run"
    seed: int = 0
    max_steps: int = 1000
    learning_rate: float = 3e-4
    weight_decay: float = 0.1
    adam_beta1: float = 0.9
    adam_beta2: float = 0.95
    adam_epsilon: float = 1e-8
    warmup_steps: int = 0
    lr_schedule: str = field(default="linear_warmup", metadata={"help": "linear_warmup | cosine | constant"})
    min_lr_ratio: float = 0.0
    gradient_accumulation_steps: int = 1
    max_grad_norm: float | None = 1.0
    mixed_precision: str = field(default="no", metadata={"help": "no | fp16 | bf16"})
    eval_every: int = 0
    early_stopping_patience: int = 0
    checkpoint_every: int = 0
    keep_last: int = 2
    resume_from: str | None = field(default=None, metadata={"help": "checkpoint folder, 'latest', or Hub repo"})
    log_with: str | None = field(default="tensorboard", metadata={"help": "accelerate tracker, or 'none'"})
    log_every: int = 10
    compile: bool = False
    # Some families leave parameters out of the loss (WaveNet's last residual conv, frozen tokenizers'
    # heads): DDP must then look for unused parameters. Set False for a little speed when none are.
    ddp_find_unused_parameters: bool = True
    push_to_hub: bool = False
    hub_model_id: str | None = None
    hub_private: bool | None = None
    progress_bar: bool = True

    def __post_init__(self):
        if self.lr_schedule not in ("linear_warmup", "cosine", "constant"):
            raise ValueError(f"lr_schedule must be linear_warmup, cosine or constant, got {self.lr_schedule!r}")
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            raise ValueError(f"mixed_precision must be no, fp16 or bf16, got {self.mixed_precision!r}")
        if self.push_to_hub and not self.hub_model_id:
            raise ValueError("push_to_hub needs hub_model_id (e.g. 'your-name/braintokmix-small')")
        if self.max_steps <= 0 or self.gradient_accumulation_steps <= 0:
            raise ValueError("max_steps and gradient_accumulation_steps must be positive")


ARGUMENT_CLASSES = (ModelArguments, DataArguments, RunArguments)


def _parse_override(item: str) -> tuple[str, Any]:
    if not item.startswith("--") or "=" not in item:
        raise ValueError(f"overrides are written --key=value, got {item!r}")
    key, value = item[2:].split("=", 1)
    return key.replace("-", "_"), yaml.safe_load(value)


def load_run_config(config_file: str | Path | None = None, overrides: list[str] | None = None) -> dict:
    """Merge a YAML run config with `--key=value` overrides (dotted keys reach into dicts)."""
    merged: dict = {}
    if config_file is not None:
        merged = yaml.safe_load(Path(config_file).read_text(encoding="utf-8")) or {}
        if not isinstance(merged, dict):
            raise ValueError(f"{config_file} must hold a mapping of run settings")
    for item in overrides or []:
        key, value = _parse_override(item)
        target = merged
        *parents, leaf = key.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    return merged


def parse_run_config(config: dict) -> tuple[ModelArguments, DataArguments, RunArguments]:
    """dict -> the three argument dataclasses; unknown keys raise `ValueError` naming them."""
    from transformers import HfArgumentParser

    known = {f.name for cls in ARGUMENT_CLASSES for f in dataclasses.fields(cls)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(f"unknown run config keys {unknown}; valid keys are {sorted(known)}")
    parser = HfArgumentParser(ARGUMENT_CLASSES)
    return parser.parse_dict(config, allow_extra_keys=False)


def resolved_config(*args) -> dict:
    """The fully resolved run config (every default filled in), as saved next to each checkpoint."""
    out: dict = {}
    for arg in args:
        out.update(dataclasses.asdict(arg))
    return out
