"""Typed run configuration: YAML file + `--key=value` overrides -> dataclasses via `HfArgumentParser`.

Unknown keys, values of the wrong type and unreadable YAML fail before any work starts, naming the
file and the key.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class ModelArguments:
    """Which model to train and how to build it."""

    task: str | None = field(
        default=None,
        metadata={
            "help": "wavenet | brain_tokenizer | flatgpt | brainomni_forecast | classifier | bendr; default: the task "
            "that trains model_type"
        },
    )
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
    label_column: str | None = field(
        default=None,
        metadata={
            "help": "classifier task: segment metadata column whose value is each window's class (subject, "
            "session, task or dataset)"
        },
    )

    def __post_init__(self):
        _check_at_least(self, 1, "batch_size", "eval_batch_size", "max_eval_batches")
        _check_at_least(self, 0, "num_workers")


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
    lr_schedule: str = field(
        default="linear_warmup",
        metadata={
            "help": "linear_warmup | cosine | constant (the reference's), a transformers schedule name "
            "(transformers.get_scheduler: cosine_with_restarts, polynomial, inverse_sqrt, ...), or a "
            "torch.optim.lr_scheduler class name (StepLR, CosineAnnealingLR, ...) with lr_scheduler_kwargs"
        },
    )
    lr_scheduler_kwargs: dict | None = field(
        default=None, metadata={"help": "keyword arguments of a transformers or torch schedule named by lr_schedule"}
    )
    min_lr_ratio: float = 0.0
    gradient_accumulation_steps: int = 1
    max_grad_norm: float | None = 1.0
    mixed_precision: str = field(default="no", metadata={"help": "no | fp16 | bf16"})
    eval_every: int = 0
    early_stopping_patience: int = 0
    checkpoint_every: int = 0
    keep_last: int = 2  # 0 keeps every checkpoint
    resume_from: str | None = field(default=None, metadata={"help": "checkpoint folder, 'latest', or Hub repo"})
    # Long-context curriculum: resuming from an earlier phase (a checkpoint whose data settings differ from this
    # run's, or a final model folder) starts a new phase from its weights with these changes.
    resume_context: dict | None = field(
        default=None,
        metadata={
            "help": "model.resize_context(...) on resume: {input_shape (default: this run's windows), rope_theta, "
            "max_position_embeddings}"
        },
    )
    resume_lr: float | None = field(default=None, metadata={"help": "new peak learning rate on resume"})
    resume_weight_decay: float | None = field(default=None, metadata={"help": "new weight decay on resume"})
    resume_token_corruption: dict | None = field(
        default=None,
        metadata={"help": "token corruption on resume: {p_start, p_end, block_len_steps, ...}; {enabled: false} = off"},
    )
    validate_before_resume: bool = field(
        default=False, metadata={"help": "run one validation pass with the resumed model before training"}
    )
    keep_best: bool = field(
        default=True, metadata={"help": "keep the best-by-validation checkpoint (checkpoints/best) besides the last"}
    )
    auto_find_batch_size: bool = field(
        default=False,
        metadata={"help": "lower batch_size until a step fits in memory (accelerate's find_executable_batch_size)"},
    )
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
        from .curriculum import check_resume_settings
        from .optim import check_schedule_name

        check_schedule_name(self.lr_schedule, self.lr_scheduler_kwargs)
        check_resume_settings(self)
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            raise ValueError(f"mixed_precision must be no, fp16 or bf16, got {self.mixed_precision!r}")
        if self.push_to_hub and not self.hub_model_id:
            raise ValueError("push_to_hub needs hub_model_id (e.g. 'your-name/braintokmix-small')")
        if self.push_to_hub:
            from ..hub.upload import check_repo_id

            check_repo_id(self.hub_model_id, "hub_model_id")
        if self.max_steps <= 0 or self.gradient_accumulation_steps <= 0:
            raise ValueError("max_steps and gradient_accumulation_steps must be positive")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(f"learning_rate must be a positive number, got {self.learning_rate!r}")
        _check_at_least(
            self, 0, "warmup_steps", "eval_every", "early_stopping_patience", "checkpoint_every", "keep_last"
        )
        _check_at_least(self, 1, "log_every")
        if self.max_grad_norm is not None and not (math.isfinite(self.max_grad_norm) and self.max_grad_norm > 0):
            # A negative norm would flip every gradient; 0 would silently mean "no clipping".
            raise ValueError(
                f"max_grad_norm must be a positive number, or null for no clipping, got {self.max_grad_norm!r}"
            )
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(
                f"min_lr_ratio must lie in [0, 1] (the cosine schedule's final fraction of "
                f"learning_rate), got {self.min_lr_ratio!r}"
            )


ARGUMENT_CLASSES = (ModelArguments, DataArguments, RunArguments)


def _check_at_least(args, minimum: int, *names: str) -> None:
    """Integer settings with a lower bound (None means unset and passes)."""
    for name in names:
        value = getattr(args, name)
        if value is not None and value < minimum:
            kind = "positive" if minimum == 1 else "0 or more"
            raise ValueError(f"{name} must be {kind}, got {value!r}")


def _yaml_problem(err: yaml.YAMLError) -> str:
    """One line: what PyYAML found wrong and where."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return " ".join(f"{problem}{where}".split())


def _parse_override(item: str) -> tuple[str, Any]:
    if not item.startswith("--") or "=" not in item:
        raise ValueError(f"overrides are written --key=value, got {item!r}")
    key, value = item[2:].split("=", 1)
    try:
        return key.replace("-", "_"), yaml.safe_load(value)
    except yaml.YAMLError as err:
        raise ValueError(f"override {item!r} is not valid YAML: {_yaml_problem(err)}") from None


def _read_yaml_mapping(config_file: str | Path) -> dict:
    path = Path(config_file)
    if not path.is_file():
        raise FileNotFoundError(f"run config {path} does not exist")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ValueError(f"{path} is not valid YAML: {_yaml_problem(err)}") from None
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not a UTF-8 text file ({err.reason} at byte {err.start})") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):  # a user's file, so ValueError (a user error), not TypeError
        raise ValueError(
            f"{path} must hold a mapping of run settings (key: value lines), "  # noqa: TRY004
            f"not a {type(loaded).__name__}"
        )
    return loaded


def load_run_config(config_file: str | Path | None = None, overrides: list[str] | None = None) -> dict:
    """Merge a YAML run config with `--key=value` overrides (dotted keys reach into dicts)."""
    merged: dict = _read_yaml_mapping(config_file) if config_file is not None else {}
    for item in overrides or []:
        key, value = _parse_override(item)
        target = merged
        *parents, leaf = key.split(".")
        for depth, parent in enumerate(parents):
            target = target.setdefault(parent, {})
            if not isinstance(target, dict):
                raise ValueError(f"override {item!r}: {'.'.join(parents[: depth + 1])} is not a mapping")  # noqa: TRY004
        target[leaf] = value
    return merged


_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string", dict: "a mapping"}


def _coerce(key: str, value: Any, hint) -> Any:
    """`value` as the field type `hint`, or a `ValueError` naming the key (`parse_dict` checks no types)."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None and type(None) in options:
        return None
    for option in options:
        if option is bool and isinstance(value, bool):
            return value
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if option is float and isinstance(value, str):
            try:  # YAML 1.1 reads `1e-3` (no dot) as a string
                return float(value)
            except ValueError:
                pass
        if option in (str, dict) and isinstance(value, option):
            return value
    expected = " or ".join(_TYPE_NAMES.get(option, "null") for option in options)
    raise ValueError(f"{key} must be {expected}, got {value!r}")


def _field_types() -> dict[str, Any]:
    hints: dict[str, Any] = {}
    for cls in ARGUMENT_CLASSES:
        hints.update(typing.get_type_hints(cls))
    return hints


def parse_run_config(config: dict) -> tuple[ModelArguments, DataArguments, RunArguments]:
    """dict -> the three argument dataclasses; unknown keys and wrong-typed values raise `ValueError` naming
    them."""
    from transformers import HfArgumentParser

    known = {f.name for cls in ARGUMENT_CLASSES for f in dataclasses.fields(cls)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(f"unknown run config keys {unknown}; valid keys are {sorted(known)}")
    hints = _field_types()
    typed = {key: _coerce(key, value, hints[key]) for key, value in config.items()}
    missing = sorted(
        f.name
        for cls in ARGUMENT_CLASSES
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and f.name not in typed
    )
    if missing:
        raise ValueError(f"the run config needs {missing}")
    parser = HfArgumentParser(ARGUMENT_CLASSES)
    return parser.parse_dict(typed, allow_extra_keys=False)


def read_run_config(
    config_file: str | Path, overrides: list[str] | None = None
) -> tuple[ModelArguments, DataArguments, RunArguments]:
    """`load_run_config` + `parse_run_config`; every error names the file (and the overrides, if any)."""
    from .model_building import check_config_keys
    from .tasks import resolve_contract

    config = load_run_config(config_file, overrides)
    try:
        model_args, data_args, run_args = parse_run_config(config)
        # `train` checks these too, but only here is the file known that holds the typo.
        contract = resolve_contract(model_args.task, model_args.model_type)
        model_type = model_args.model_type or contract.default_model_type
        check_config_keys(model_type, model_args.model_config or {})
        return model_args, data_args, run_args
    except ValueError as err:
        source = f"{config_file}" + (f" with overrides {' '.join(overrides)}" if overrides else "")
        raise ValueError(f"{source}: {err}") from None


def resolved_config(*args) -> dict:
    """The fully resolved run config (every default filled in), as saved next to each checkpoint."""
    out: dict = {}
    for arg in args:
        out.update(dataclasses.asdict(arg))
    return out
