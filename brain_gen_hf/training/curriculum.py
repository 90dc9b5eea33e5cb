"""Training in phases (the paper's long-context curriculum, 20.48 s -> 81.92 s -> 163.84 s): a run resumes from
an earlier phase and changes its context, learning rate, weight decay or token corruption.

A checkpoint belongs to an earlier phase when the data settings saved with it (`PHASE_KEYS`) differ from this
run's; a final model folder (`save_pretrained`, no trainer state) always starts a new phase. A new phase
- keeps the weights, and the optimiser and schedule state where they fit (same trainable parameters); when they do
  not (another set of trainable parameters), the optimiser and the schedule start fresh, warmup included, with a
  warning;
- continues the step count (`max_steps` is the step the phase ends at) but not the data order: the data differ;
- forgets the best validation loss (losses over another context do not compare).
A final model folder starts the phase at step 0 with a fresh optimiser. Resuming a preempted phase from its own
checkpoint stays exact: the context, corruption, lr and weight decay settings are applied again, which changes
nothing (the saved optimiser state already has them).
"""

from __future__ import annotations

import math
from pathlib import Path

RESIZE_KEYS = ("input_shape", "rope_theta", "max_position_embeddings")
# Settings whose change makes a checkpoint an earlier phase's.
PHASE_KEYS = ("dataset", "train_split", "example_seconds", "overlap_seconds", "batch_size", "resume_context")
RESUME_SETTINGS = ("resume_context", "resume_lr", "resume_weight_decay", "resume_token_corruption")


def check_resume_settings(args) -> None:
    """Types and ranges of the `resume_*` run settings (a ValueError naming the setting)."""
    context = args.resume_context
    if context is not None:
        unknown = sorted(set(context) - set(RESIZE_KEYS))
        if unknown:
            raise ValueError(
                f"resume_context keys {unknown} are not supported: resize_context changes only the time length "
                f"(input_shape) and the RoPE settings; valid keys: {list(RESIZE_KEYS)}"
            )
        if not context:
            raise ValueError(f"resume_context is empty; give at least one of {list(RESIZE_KEYS)}")
    if args.resume_lr is not None and not (math.isfinite(args.resume_lr) and args.resume_lr > 0):
        raise ValueError(f"resume_lr must be a positive number, got {args.resume_lr!r}")
    if args.resume_weight_decay is not None and not (
        math.isfinite(args.resume_weight_decay) and args.resume_weight_decay >= 0
    ):
        raise ValueError(f"resume_weight_decay must be 0 or more, got {args.resume_weight_decay!r}")
    given = [name for name in RESUME_SETTINGS if getattr(args, name) is not None]
    if args.validate_before_resume:
        given.append("validate_before_resume")
    if given and not args.resume_from:
        raise ValueError(f"{given} apply when a run resumes; set resume_from (the earlier phase's output_dir)")


def final_model_folder(resume_from: str | None) -> Path | None:
    """`resume_from` as a `save_pretrained` folder (config.json, no checkpoint inside), else None."""
    if not resume_from:
        return None
    path = Path(resume_from)
    if (path / "config.json").is_file() and not (path / "trainer_state.json").exists():
        if not (path / "checkpoints").exists():
            return path
    return None


def is_new_phase(saved_run_config: dict, run_config: dict) -> bool:
    """Whether a checkpoint's saved run config belongs to another phase than `run_config` (an unreadable one is
    taken as this phase's: an exact resume is then attempted)."""
    if not saved_run_config:
        return False
    return any(saved_run_config.get(key) != run_config.get(key) for key in PHASE_KEYS)


def apply_model_settings(model, run_args, window_length: int) -> list[str]:
    """`resize_context` and the token corruption of a resumed run, on the unwrapped model; what changed, in
    words. A `resume_context` without `input_shape` grows the time length to this run's windows
    (`window_length` samples)."""
    changed = []
    if run_args.resume_context is not None:
        if not callable(getattr(model, "resize_context", None)):
            raise ValueError(
                f"resume_context needs a model with resize_context() (the FlatGPT LMs); {type(model).__name__} has none"
            )
        context = dict(run_args.resume_context)
        context.setdefault("input_shape", [window_length, *model.config.input_shape[1:]])
        model.resize_context(**context)
        changed.append(f"context {model.config.input_shape}")
    corruption = run_args.resume_token_corruption
    if corruption is not None:
        if not hasattr(model.config, "token_corruption"):
            raise ValueError(f"resume_token_corruption: {type(model).__name__} has no token corruption")
        model.config.token_corruption = dict(corruption)
        model.config._init_token_corruption()  # normalise and check, as the config's constructor does
        changed.append(f"token corruption {model.config.token_corruption}")
    return changed


def load_final_model_weights(model, folder: Path) -> None:
    """The weights of a `save_pretrained` folder into `model` (built by this run's config; same parameters)."""
    from transformers import AutoModel

    import brain_gen_hf  # noqa: F401  (Auto registration)

    source = AutoModel.from_pretrained(folder)
    missing, unexpected = model.load_state_dict(source.state_dict(), strict=False)
    if missing or unexpected:
        raise ValueError(
            f"cannot start from {folder}: its weights do not fit the model this run config builds "
            f"(missing {sorted(missing)[:4]}, unexpected {sorted(unexpected)[:4]}); use the earlier phase's model "
            "settings"
        )
