"""The family-agnostic accelerate training loop shared by `training_scripts/train.py` and the quickstart.

Each family's `DataContract` (looked up in `tasks.py`) builds its model and its collator; batches go to
`model(**batch)` unchanged. Single process, DDP or FSDP (whatever `accelerate launch` set up), mixed
precision, gradient accumulation and clipping, the reference's AdamW groups and warmup schedule (or any
transformers / torch schedule by name), periodic evaluation with early stopping, atomic keep-last-N checkpoints
plus the best-by-validation one with exact resume, training in phases (`curriculum.py`), trackers, tqdm with ETA,
the task's metrics (`DataContract.metrics`), the gradient norm and logged throughput (windows/s, signal-seconds/s,
tokens/s) and MFU against the device's peak (`throughput.py`).
Resuming from step k reproduces the uninterrupted run's later losses exactly: model, optimiser, scheduler and RNG
states come back through `accelerator.load_state`, the data order from a seedable sampler and
`skip_first_batches`; TensorBoard drops the events the interrupted run logged after the checkpoint, so the
replayed steps appear once.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..hub.upload import upload_errors
from .arguments import DataArguments, ModelArguments, RunArguments, resolved_config
from .checkpointing import (
    checkpoint_root,
    list_checkpoints,
    read_run_config_of,
    read_trainer_state,
    resolve_resume,
    resume_notice,
    save_checkpoint,
)
from .curriculum import (
    apply_model_settings,
    final_model_folder,
    is_new_phase,
    load_final_model_weights,
)
from .metrics import MetricAverager
from .model_building import build_model, check_batch_reaches_forward, check_config_keys
from .optim import build_optimizer, build_scheduler, with_new_hyperparameters
from .tasks import resolve_contract
from .throughput import (
    ThroughputMeter,
    batch_units,
    device_peak,
    throughput_unit,
    trainable_parameter_count,
)
from .training_data import load_training_data


@dataclass
class TrainResult:
    step: int
    losses: dict[int, float] = field(default_factory=dict)  # optimiser step -> mean train loss
    eval_losses: dict[int, float] = field(default_factory=dict)
    step_seconds: list[float] = field(default_factory=list)  # wall time of each optimiser step (this run)
    train_metrics: dict[int, dict[str, float]] = field(default_factory=dict)  # logged step -> metrics, grad norm
    eval_metrics: dict[int, dict[str, float]] = field(default_factory=dict)  # eval step -> the task's metrics
    resume_eval_loss: float | None = None  # validate_before_resume's loss of the resumed model
    stopped_early: bool = False
    output_dir: Path | None = None
    final_model_dir: Path | None = None
    best_checkpoint: Path | None = None
    batch_size: int | None = None  # the batch size trained with (auto_find_batch_size may lower it)


def _outputs_of(model, batch, loss_key: str = "loss"):
    """`(loss, outputs)` of one batch."""
    out = model(**batch)  # the collator names its keys as the model's forward does
    loss = out[loss_key] if not isinstance(out, torch.Tensor) else out
    if loss is None:
        raise ValueError(f"{type(model).__name__} returned no {loss_key}: the task's collator must provide labels")
    return loss, out


def _loss_of(model, batch, loss_key: str = "loss") -> torch.Tensor:
    return _outputs_of(model, batch, loss_key)[0]


def _announce_step(model, step: int) -> None:
    """Tell a model whose training depends on the optimiser step (Vidtok's FSQ entropy annealing) which step this is:
    its public `set_training_step(step)`, if it has one. The step comes from the trainer state, so a resumed run
    announces the same steps as an uninterrupted one."""
    set_step = getattr(model, "set_training_step", None)
    if set_step is not None:
        set_step(step)


@torch.no_grad()
def evaluate_with_metrics(
    model, loader, accelerator, max_batches: int | None, loss_key: str = "loss", metrics=None
) -> dict[str, float]:
    """Mean validation loss (`loss`) and the means of the task's `metrics` over the batches."""
    model.eval()
    total, count = torch.zeros((), device=accelerator.device), torch.zeros((), device=accelerator.device)
    averager = MetricAverager()
    for i, batch in enumerate(loader):
        if max_batches is not None and i >= max_batches:
            break
        loss, out = _outputs_of(model, batch, loss_key)
        total += loss.detach()
        count += 1
        if metrics is not None:
            averager.add(metrics(accelerator.unwrap_model(model), batch, out))
    model.train()
    total, count = accelerator.reduce(total, "sum"), accelerator.reduce(count, "sum")
    return {"loss": float(total / count.clamp_min(1)), **averager.means(accelerator)}


def evaluate(model, loader, accelerator, max_batches: int | None, loss_key: str = "loss") -> float:
    return evaluate_with_metrics(model, loader, accelerator, max_batches, loss_key)["loss"]


def train(
    model_args: ModelArguments,
    data_args: DataArguments,
    run_args: RunArguments,
    *,
    stop_after_steps: int | None = None,
    model=None,
) -> TrainResult:
    """Train one model. `stop_after_steps` ends the run early (as if preempted) without changing the
    schedule, which is defined over `run_args.max_steps`; a later `resume_from` continues it."""
    try:
        if run_args.auto_find_batch_size:
            return _train_with_a_fitting_batch(model_args, data_args, run_args, stop_after_steps, model)
        return _train(model_args, data_args, run_args, stop_after_steps=stop_after_steps, model=model)
    finally:
        _release_accelerator_state()


def _train_with_a_fitting_batch(model_args, data_args, run_args, stop_after_steps, model) -> TrainResult:
    """accelerate's `find_executable_batch_size`: on an out-of-memory error the run starts again with a smaller
    batch (accelerate's rule: 90 %, rounded down), from `batch_size` down to 1."""
    import dataclasses

    from accelerate.utils import find_executable_batch_size

    tried: list[int] = []

    @find_executable_batch_size(starting_batch_size=data_args.batch_size)
    def attempt(batch_size: int) -> TrainResult:
        if tried:
            tqdm.write(f"batch_size {tried[-1]} does not fit in memory; trying {batch_size}")
            _release_accelerator_state()
        tried.append(batch_size)
        fitted = dataclasses.replace(data_args, batch_size=batch_size)
        return _train(model_args, fitted, run_args, stop_after_steps=stop_after_steps, model=model)

    return attempt()


def _train(
    model_args: ModelArguments, data_args: DataArguments, run_args: RunArguments, *, stop_after_steps: int | None, model
) -> TrainResult:
    from accelerate import Accelerator
    from accelerate.utils import (
        DataLoaderConfiguration,
        DistributedDataParallelKwargs,
        ProjectConfiguration,
        set_seed,
    )

    contract = resolve_contract(model_args.task, model_args.model_type)
    # Fail on a mistyped model_config key before any data is read or anything is written.
    check_config_keys(model_args.model_type or contract.default_model_type, model_args.model_config or {})
    output_dir = Path(run_args.output_dir)
    _check_output_dir(output_dir)
    log_with = None if (run_args.log_with in (None, "none", "")) else run_args.log_with
    accelerator = Accelerator(
        gradient_accumulation_steps=run_args.gradient_accumulation_steps,
        mixed_precision=run_args.mixed_precision,
        log_with=log_with,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "logs")),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=run_args.ddp_find_unused_parameters)],
    )
    set_seed(run_args.seed)

    splits, data = load_training_data(data_args, contract.task)
    if data_args.train_split not in splits:
        raise ValueError(f"dataset {data_args.dataset} has no split {data_args.train_split!r} (has {sorted(splits)})")
    if model is None:
        model = build_model(contract, model_args, data)
    collate = contract.make_collator(data, model)
    check_batch_reaches_forward(model, collate, contract)
    train_loader, eval_loader = _data_loaders(splits, collate, data_args, run_args, accelerator)

    config_dump = resolved_config(model_args, data_args, run_args)
    weights_folder = final_model_folder(run_args.resume_from)
    checkpoint = None if weights_folder else resolve_resume(run_args.resume_from, output_dir)
    checkpoint = _own_phase_checkpoint(accelerator, output_dir, checkpoint, config_dump, run_args)
    if checkpoint is not None:
        weights_folder = None
    if weights_folder is not None:
        load_final_model_weights(model, weights_folder)
    if checkpoint is not None or weights_folder is not None:
        for change in apply_model_settings(model, run_args, data.window_length):
            accelerator.print(f"resumed with {change}")

    if run_args.compile:
        model.compile()  # in place: parameter names (and so checkpoints) stay free of `_orig_mod.`
    optimizer = build_optimizer(model, run_args)
    scheduler = build_scheduler(optimizer, run_args)
    model, optimizer, train_loader, scheduler = accelerator.prepare(model, optimizer, train_loader, scheduler)
    if eval_loader is not None:
        eval_loader = accelerator.prepare(eval_loader)

    state = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "best_eval": math.inf, "bad_evals": 0}
    result = TrainResult(step=0, output_dir=output_dir, batch_size=data_args.batch_size)
    notice = resume_notice(run_args.resume_from, output_dir, checkpoint)
    if notice:
        accelerator.print(notice)
    if checkpoint is not None and is_new_phase(read_run_config_of(checkpoint), config_dump):
        _start_phase(accelerator, model, checkpoint, config_dump, state, result)
    elif checkpoint is not None:
        _restore_state(accelerator, checkpoint, config_dump, state, result)
    if checkpoint is not None or weights_folder is not None:
        # A new phase's lr / weight decay; idempotent on a resumed phase, whose saved optimiser already has them.
        with_new_hyperparameters(optimizer, scheduler, lr=run_args.resume_lr, weight_decay=run_args.resume_weight_decay)
    if log_with:
        flat = {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in config_dump.items()}
        accelerator.init_trackers(
            "brain_gen_hf", config=flat, init_kwargs=_tracker_kwargs(log_with, checkpoint, state["step"])
        )
    accelerator.print(_outputs_line(output_dir, log_with))
    resumed = checkpoint is not None or weights_folder is not None
    if run_args.validate_before_resume and resumed and eval_loader is not None:
        before = evaluate_with_metrics(
            model, eval_loader, accelerator, data_args.max_eval_batches, contract.loss, contract.metrics
        )
        result.resume_eval_loss = before["loss"]
        accelerator.log({f"val/{k}": v for k, v in before.items()}, step=state["step"])
        accelerator.print(f"validation before resuming at step {state['step']}: loss {before['loss']:.4f}")

    meter = _throughput_meter(accelerator, model, collate, data, run_args)
    stop_at = min(run_args.max_steps, stop_after_steps or run_args.max_steps)
    bar = tqdm(
        total=run_args.max_steps,
        initial=state["step"],
        desc="train",
        unit="step",
        dynamic_ncols=True,
        disable=not (run_args.progress_bar and accelerator.is_main_process),
    )
    card = {
        "training_data": f"`{data_args.dataset}` (split `{data_args.train_split}`), windows of "
        f"{data_args.example_seconds} s",
        "datasets": _dataset_ids(data_args.dataset),
    }

    def checkpoint_now(name: str | None = None):
        # Strict JSON: no best validation loss yet is null, not Infinity.
        best = state["best_eval"] if math.isfinite(state["best_eval"]) else None
        trainer_state = {**state, "best_eval": best, "losses": result.losses, "eval_losses": result.eval_losses}
        path = save_checkpoint(
            accelerator,
            model,
            output_dir=output_dir,
            step=state["step"],
            run_config=config_dump,
            trainer_state=trainer_state,
            keep_last=run_args.keep_last,
            card=card,
            name=name,
        )
        if name is None and run_args.push_to_hub and accelerator.is_main_process and path is not None:
            _push_checkpoint(path, run_args)
        return path

    model.train()
    window_losses: list[torch.Tensor] = []
    window_metrics = MetricAverager()
    grad_norm = None
    step_started = time.perf_counter()
    while state["step"] < stop_at:
        loader = train_loader
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(state["epoch"])
        if state["batch_in_epoch"]:
            loader = accelerator.skip_first_batches(loader, state["batch_in_epoch"])
        for batch in loader:
            state["batch_in_epoch"] += 1
            started = time.perf_counter()
            logs_next = (state["step"] + 1) % max(1, run_args.log_every) == 0 or state["step"] == 0
            _announce_step(accelerator.unwrap_model(model), state["step"])
            with accelerator.accumulate(model):
                loss, out = _outputs_of(model, batch, contract.loss)
                if contract.metrics is not None and logs_next:
                    with torch.no_grad():
                        window_metrics.add(contract.metrics(accelerator.unwrap_model(model), batch, out))
                del out
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    # The global gradient norm before clipping; an infinite bound measures without clipping.
                    grad_norm = accelerator.clip_grad_norm_(model.parameters(), run_args.max_grad_norm or math.inf)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            window_losses.append(loss.detach())
            meter.add(
                batch_units(batch) * accelerator.num_processes,
                data_args.batch_size * accelerator.num_processes,
                time.perf_counter() - started,
            )
            if not accelerator.sync_gradients:
                continue
            state["step"] += 1
            result.step_seconds.append(time.perf_counter() - step_started)
            step_started = time.perf_counter()
            step_loss = float(accelerator.reduce(torch.stack(window_losses).mean(), "mean"))
            window_losses = []
            result.losses[state["step"]] = step_loss
            bar.update(1)
            bar.set_postfix(loss=f"{step_loss:.4f}", **meter.postfix())
            if state["step"] % max(1, run_args.log_every) == 0 or state["step"] == 1:
                logged = {f"train/{k}": v for k, v in window_metrics.means(accelerator).items()}
                if grad_norm is not None:
                    logged["train/grad_norm"] = float(grad_norm)
                result.train_metrics[state["step"]] = logged
                accelerator.log(
                    {
                        "train/loss": step_loss,
                        "train/lr": scheduler.get_last_lr()[0],
                        "train/weight_decay": optimizer.param_groups[0]["weight_decay"],
                        **logged,
                        **meter.metrics(),
                    },
                    step=state["step"],
                )
                window_metrics = MetricAverager()
            if eval_loader is not None and state["step"] % run_args.eval_every == 0:
                evaluated = evaluate_with_metrics(
                    model, eval_loader, accelerator, data_args.max_eval_batches, contract.loss, contract.metrics
                )
                val = evaluated["loss"]
                result.eval_losses[state["step"]] = val
                result.eval_metrics[state["step"]] = evaluated
                accelerator.log({f"val/{k}": v for k, v in evaluated.items()}, step=state["step"])
                if val < state["best_eval"]:
                    state["best_eval"], state["bad_evals"] = val, 0
                    if run_args.keep_best:
                        result.best_checkpoint = checkpoint_now("best")
                else:
                    state["bad_evals"] += 1
                if accelerator.is_main_process:
                    tqdm.write(
                        f"step {state['step']}: train loss {step_loss:.4f}, validation loss {val:.4f} "
                        f"(best {state['best_eval']:.4f}); {meter.summary()}"
                    )
                if run_args.early_stopping_patience and state["bad_evals"] >= run_args.early_stopping_patience:
                    result.stopped_early = True
            if run_args.checkpoint_every and state["step"] % run_args.checkpoint_every == 0:
                checkpoint_now()
            if state["step"] >= stop_at or result.stopped_early:
                break
        else:
            state["epoch"] += 1
            state["batch_in_epoch"] = 0
            continue
        break
    bar.close()
    if result.step_seconds:
        accelerator.print(f"throughput over the last steps: {meter.summary()}")

    result.step = state["step"]
    if not (run_args.checkpoint_every and state["step"] % run_args.checkpoint_every == 0):
        checkpoint_now()
    if state["step"] >= run_args.max_steps or result.stopped_early:
        result.final_model_dir = _save_final(accelerator, model, output_dir, run_args, card, result)
    accelerator.end_training()
    return result


def _data_loaders(splits, collate, data_args: DataArguments, run_args: RunArguments, accelerator):
    """The shuffled (seeded) training loader and, when the eval split exists and evaluation is on, the eval loader."""
    train_set = splits[data_args.train_split]
    generator = torch.Generator().manual_seed(run_args.seed)
    train_loader = torch.utils.data.DataLoader(
        train_set,
        batch_size=data_args.batch_size,
        shuffle=True,
        drop_last=True,
        collate_fn=collate,
        generator=generator,
        num_workers=data_args.num_workers,
    )
    if len(train_loader) == 0:
        raise ValueError(
            f"the training split has {len(train_set)} windows, fewer than one batch of "
            f"{data_args.batch_size}; lower batch_size or add data"
        )
    eval_loader = None
    if data_args.eval_split and data_args.eval_split not in splits and run_args.eval_every > 0:
        accelerator.print(
            f"WARNING: dataset {data_args.dataset} has no split {data_args.eval_split!r} (has "
            f"{sorted(splits)}): no validation runs; set eval_split to one of them"
        )
    if data_args.eval_split and data_args.eval_split in splits and run_args.eval_every > 0:
        eval_loader = torch.utils.data.DataLoader(
            splits[data_args.eval_split],
            batch_size=data_args.eval_batch_size or data_args.batch_size,
            shuffle=False,
            collate_fn=collate,
        )
    return train_loader, eval_loader


def _restore_state(accelerator, checkpoint: Path, config_dump: dict, state: dict, result: TrainResult) -> None:
    """Model, optimiser, scheduler and RNG states from `checkpoint`, plus the trainer's counters and loss logs."""
    _load_checkpoint_state(accelerator, checkpoint, config_dump)
    saved = read_trainer_state(checkpoint)
    state.update({k: saved[k] for k in state})
    state["best_eval"] = math.inf if state["best_eval"] is None else state["best_eval"]
    result.losses = {int(k): v for k, v in saved.get("losses", {}).items()}
    result.eval_losses = {int(k): v for k, v in saved.get("eval_losses", {}).items()}
    accelerator.print(f"resumed from {checkpoint} at step {state['step']}")


def _own_phase_checkpoint(
    accelerator, output_dir: Path, checkpoint: Path | None, config_dump: dict, run_args
) -> Path | None:
    """A phase run (any `resume_*` setting) that was preempted continues from its own newest checkpoint, not
    from the earlier phase its `resume_from` names again."""
    phase_run = any(config_dump.get(k) is not None for k in ("resume_context", "resume_lr", "resume_weight_decay"))
    own = list_checkpoints(output_dir)
    if not (phase_run and own) or (checkpoint is not None and checkpoint in own):
        return checkpoint
    if is_new_phase(read_run_config_of(own[-1]), config_dump):
        return checkpoint
    accelerator.print(f"this phase already has a checkpoint: continuing from {own[-1]} (not {run_args.resume_from})")
    return own[-1]


def _start_phase(accelerator, model, checkpoint: Path, config_dump: dict, state: dict, result: TrainResult) -> None:
    """A new curriculum phase from an earlier phase's checkpoint: its weights, its optimiser and schedule state
    where they fit (else fresh ones, with a warning), its step count; the data order starts over."""
    try:
        _load_checkpoint_state(accelerator, checkpoint, config_dump)
    except ValueError as err:
        if "parameter group" not in str(err):  # torch's words for an optimiser state of other parameters
            raise
        accelerator.print(
            f"WARNING: the optimiser state of {checkpoint} does not fit this run's trainable parameters ({err}); "
            "continuing from its weights with a fresh optimiser and schedule (warmup included)"
        )
        load_final_model_weights(accelerator.unwrap_model(model), checkpoint / "model")
    saved = read_trainer_state(checkpoint)
    state["step"] = saved["step"]
    result.losses = {int(k): v for k, v in saved.get("losses", {}).items()}
    result.eval_losses = {int(k): v for k, v in saved.get("eval_losses", {}).items()}
    accelerator.print(f"new phase from {checkpoint} (step {state['step']}): data order and best loss start over")


def _throughput_meter(accelerator, model, collate, data, run_args: RunArguments) -> ThroughputMeter:
    """Throughput and MFU over every process (units and peak both scale with the process count)."""
    window_seconds = data.window_length / float(data.sampling_rate)
    peak = device_peak(accelerator.device, run_args.mixed_precision)
    accelerator.print(
        f"MFU is computed against {peak.source}"
        + (
            f" (x {accelerator.num_processes} processes)"
            if peak.flops is not None and accelerator.num_processes > 1
            else ""
        )
    )
    # Units are counted over every process, so the peak is too.
    meter = ThroughputMeter(
        n_params=trainable_parameter_count(accelerator.unwrap_model(model)),
        unit=throughput_unit(collate.model_inputs),
        window_seconds=window_seconds,
        peak_flops=None if peak.flops is None else peak.flops * accelerator.num_processes,
    )
    return meter


def _load_checkpoint_state(accelerator, checkpoint: Path, config_dump: dict) -> None:
    """`accelerator.load_state`, or a ValueError naming the model settings that differ from the checkpoint's
    (its weights do not fit the model this run config builds)."""
    try:
        accelerator.load_state(str(checkpoint / "state"))
    except RuntimeError as err:
        if "size mismatch" not in str(err) and "Missing key" not in str(err) and "Unexpected key" not in str(err):
            raise
        saved = read_run_config_of(checkpoint)
        differ = {}
        for key in ("task", "model_type", "model_config", "pretrained", "tokenizer"):
            was, now = saved.get(key), config_dump.get(key)
            if key not in saved or was == now:
                continue
            if isinstance(was, dict) and isinstance(now, dict):
                differ.update(
                    {
                        f"{key}.{k}": (was.get(k), now.get(k))
                        for k in sorted(set(was) | set(now))
                        if was.get(k) != now.get(k)
                    }
                )
            else:
                differ[key] = (was, now)
        detail = "; ".join(f"{key} was {was!r}, now {now!r}" for key, (was, now) in differ.items())
        raise ValueError(
            f"cannot resume from {checkpoint}: its weights do not fit the model this run config builds"
            + (f" ({detail})" if detail else "")
            + "; resume with the checkpoint's model settings, or start a new run in another "
            "output_dir without resume_from"
        ) from None


def _check_output_dir(output_dir: Path) -> None:
    """Refuse an output_dir the run cannot write into before any work is done (not at the first checkpoint)."""
    for folder in (output_dir, *output_dir.parents):
        if folder.exists():
            if not folder.is_dir():
                raise NotADirectoryError(
                    f"output_dir {output_dir}: {folder} is a file, not a folder; choose another output_dir"
                )
            break


def _tracker_kwargs(log_with: str, checkpoint: Path | None, step: int) -> dict:
    """After a resume from step k, TensorBoard purges what the interrupted run logged after k (steps > k are
    replayed and logged again); `SummaryWriter(purge_step=...)` through accelerate's tracker init kwargs."""
    if checkpoint is None or log_with not in ("tensorboard", "all"):
        return {}
    return {"tensorboard": {"purge_step": step + 1}}


def _outputs_line(output_dir: Path, log_with: str | None) -> str:
    logs = f"; {log_with} logs in {output_dir / 'logs'}" if log_with else ""
    return f"outputs: checkpoints in {checkpoint_root(output_dir)}, final model in {output_dir / 'final_model'}{logs}"


def _release_accelerator_state() -> None:
    """accelerate keeps one process-wide AcceleratorState (mixed precision, plugins): clear it after a run so a
    later run in the same process (the quickstart, a notebook) may use other settings. The process group
    (PartialState) is kept."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=False)
    GradientState._reset_state()


def _dataset_ids(dataset: str) -> list[str] | None:
    return [dataset] if "/" in dataset and not Path(dataset).exists() else None


def _save_final(accelerator, model, output_dir: Path, run_args: RunArguments, card: dict, result: TrainResult):
    final = output_dir / "final_model"
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        metrics = {"final train loss": round(result.losses[max(result.losses)], 5)} if result.losses else {}
        if result.eval_losses:
            metrics["best validation loss"] = round(min(result.eval_losses.values()), 5)
        unwrapped = accelerator.unwrap_model(model)
        full_card = {**card, "metrics": metrics}
        unwrapped.save_pretrained(final, model_card=full_card)
        if run_args.push_to_hub:
            with upload_errors(f"the final model to {run_args.hub_model_id}", f"the final model {final}"):
                unwrapped.push_to_hub(
                    run_args.hub_model_id,
                    private=run_args.hub_private,
                    model_card=full_card,
                    commit_message=f"Final model after {result.step} steps",
                )
    accelerator.wait_for_everyone()
    return final


def _push_checkpoint(path: Path, run_args: RunArguments) -> None:
    from huggingface_hub import HfApi

    api = HfApi()
    try:  # a failed checkpoint upload must not end the run: the checkpoint is on disk
        with upload_errors(f"checkpoint {path.name} to {run_args.hub_model_id}", f"the checkpoint {path}"):
            api.create_repo(run_args.hub_model_id, private=run_args.hub_private, exist_ok=True)
            api.upload_folder(
                repo_id=run_args.hub_model_id,
                folder_path=str(path),
                path_in_repo=f"checkpoints/{path.name}",
                commit_message=f"Checkpoint {path.name}",
            )
    except OSError as err:
        tqdm.write(f"WARNING: {err}; training goes on")
