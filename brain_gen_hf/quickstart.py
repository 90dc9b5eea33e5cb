"""`brain-gen-hf quickstart`: the whole pipeline, small, on a CPU, offline.

recordings (yours, or SIMULATED MEG) -> cleaned Parquet dataset -> BrainTokMix tokenizer ->
pretokenized codes -> FlatGPTEmbedsRVQ language model -> forecast -> plots -> evaluation on the held-out
split against the zero / mean / persistence / AR baselines, with both models saved (weights, config, model card)
so that `AutoModel.from_pretrained(folder)` loads them.

Output layout::

    OUTPUT/dataset/              the built dataset (load_dataset(OUTPUT/dataset))
    OUTPUT/tokenizer/            BrainTokMix training run; final model in tokenizer/final_model
    OUTPUT/tokens/               the pretokenized dataset
    OUTPUT/lm/                   FlatGPTEmbedsRVQ training run; final model in lm/final_model
    OUTPUT/forecast.png, OUTPUT/psd.png, OUTPUT/summary.json
    OUTPUT/evaluation/           `brain-gen-hf evaluate` of the LM on the held-out split (report.md first)
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

# Small enough for minutes on two CPU cores; the real scale is in training_scripts/configs/*paper*.yaml.
WINDOW_SECONDS = 2.56  # 256 samples at 100 Hz
TOKENIZER_CONFIG = {
    "window_length": 128,
    "n_filters": 8,
    "ratios": [2, 2],
    "kernel_size": 5,
    "last_kernel_size": 5,
    "n_dim": 64,
    "n_neuro": 2,
    "codebook_dim": 16,
    "codebook_size": 256,
    "num_quantizers": 2,
    "n_residual_layers": 1,
    "lstm_layers": 0,
}
LM_CONFIG = {
    "hidden_size": 64,
    "backbone_config": {
        "model_type": "qwen2_5_vl_text",
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "intermediate_size": 128,
        "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0,
        "max_position_embeddings": 4096,
        "rope_scaling": {"rope_type": "default", "mrope_section": 2},
    },
}
# Simulated data: magnetometers only (fast). Your recordings: MEG if present, else EEG ("auto"), or your own
# `--config` (a preprocessing build config, as for `brain-gen-hf preprocess`).
BUILD_CONFIG = {
    "dataset_name": "quickstart",
    "preprocessing": {"picks": "mag"},
    "cleaning": {"min_segment_seconds": 10.0},
    # 10 simulated sessions: 3 train, 1 validation (early stopping), 6 test (the evaluation: a paired test over
    # contexts needs at least 6 of them to reach p < 0.05).
    "splits": {"strategy": "session", "val_ratio": 0.1, "test_ratio": 0.6, "seed": 0},
}
SIMULATED_SESSIONS, SIMULATED_SECONDS = 10, 30.0
# BrainTokMix ignores sensor positions, so EEG without a montage is kept (positions stored as zeros).
RECORDINGS_BUILD_CONFIG = {
    **BUILD_CONFIG,
    "preprocessing": {"picks": "auto", "missing_positions": "zeros"},
    "splits": {"strategy": "session", "val_ratio": 0.34, "test_ratio": 0.0, "seed": 0},
}


@dataclass
class QuickstartResult:
    output_dir: Path
    tokenizer_dir: Path
    lm_dir: Path
    plots: list[Path]
    summary: dict


def _say(message: str) -> None:
    print(f"[quickstart] {message}", flush=True)


def quickstart_build_config(inputs: list[str] | None, config_file: str | Path | None = None):
    """The preprocessing `BuildConfig`: the user's YAML if given, else the quickstart's for simulated or real data."""
    from .data.config import BuildConfig

    if config_file is not None:
        config = BuildConfig.from_yaml(config_file)
        config.dataset_name = config.dataset_name or "quickstart"
        return config
    return BuildConfig.from_dict(RECORDINGS_BUILD_CONFIG if inputs else BUILD_CONFIG)


def build_quickstart_dataset(
    output: Path, inputs: list[str] | None, progress: bool, config_file: str | Path | None = None
) -> Path:
    from .data.shards import build_dataset

    dataset = output / "dataset"
    config = quickstart_build_config(inputs, config_file)
    if inputs:
        _say(
            f"building a dataset from {len(inputs)} input(s)"
            + (f" with the build config {config_file}" if config_file else "")
        )
        sources = list(inputs)
    else:
        from .data.simulate import write_simulated_recordings

        _say(
            f"no recordings given: simulating {SIMULATED_SESSIONS} SIMULATED MEG recordings of {SIMULATED_SECONDS:g} s "
            "(306-channel Neuromag-like helmet, 1/f background + alpha); pass --input to use real data"
        )
        write_simulated_recordings(
            output / "simulated_raw",
            n_subjects=SIMULATED_SESSIONS,
            n_sessions=1,
            duration_seconds=SIMULATED_SECONDS,
            sfreq=200.0,
        )
        sources = [str(output / "simulated_raw")]
    # The card marks SIMULATED data (recognised from the `simulated_raw` source folder).
    build_dataset(sources, dataset, config, progress=progress)
    return dataset


def fitting_batch_size(dataset: Path, batch_size: int) -> int:
    """Short recordings give fewer training windows than one batch: train on batches of all of them instead."""
    from .data.windows import load_window_datasets

    windows = len(load_window_datasets(str(dataset), WINDOW_SECONDS, WINDOW_SECONDS / 2)["train"])
    if 0 < windows < batch_size:
        _say(
            f"the training split has {windows} windows of {WINDOW_SECONDS} s, fewer than --batch-size "
            f"{batch_size}: training on batches of {windows}"
        )
        return windows
    return batch_size


def forecast_values(lm, context, horizon: int):
    """The LM's greedy `(B, C, horizon)` forecast after `context`: the quickstart's one call into the forecast API
    (a tensor from the old `forecast(context, horizon)`, `ForecastOutput.values` under the shared contract)."""
    import torch

    out = lm.forecast(context, horizon)
    return out if isinstance(out, torch.Tensor) else out.values


def run_quickstart(
    output_dir: str | Path = "quickstart_output",
    inputs: list[str] | None = None,
    *,
    tokenizer_steps: int = 300,
    lm_steps: int = 300,
    batch_size: int = 8,
    horizon_seconds: float = 1.28,
    progress: bool = True,
    seed: int = 0,
    config_file: str | Path | None = None,
    evaluation: str | Path | dict | None = "small",
) -> QuickstartResult:
    """evaluation: the evaluation config of the final step (a preset name `small`/`tiny`/`paper`, a YAML path or a
    dict; None skips the evaluation)."""
    import numpy as np
    import torch
    from transformers import AutoModel

    import brain_gen_hf  # noqa: F401

    from .data.pretokenize import pretokenize_dataset
    from .evaluation.plots import plot_forecast, plot_psd
    from .training.arguments import parse_run_config
    from .training.trainer import train

    # Checked before the dataset is built and the tokenizer trained, so a typo costs seconds, not minutes.
    for flag, value in (("--tokenizer-steps", tokenizer_steps), ("--lm-steps", lm_steps), ("--batch-size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{flag} must be a positive integer, got {value!r}")
    if not horizon_seconds > 0:
        raise ValueError(f"horizon_seconds must be positive, got {horizon_seconds!r}")
    if evaluation is not None:
        from .evaluation.config import EvaluationConfig

        evaluation = EvaluationConfig.coerce(evaluation)  # a bad config fails now, not after training
    started = time.perf_counter()
    output = Path(output_dir)
    blocking = next((folder for folder in (output, *output.parents) if folder.exists()), None)
    if blocking is not None and not blocking.is_dir():
        raise NotADirectoryError(f"--output {output}: {blocking} is a file, not a folder; choose another --output")
    output.mkdir(parents=True, exist_ok=True)
    _say(f"writing the dataset, both models, plots and summary.json under {output}")
    dataset = build_quickstart_dataset(output, inputs, progress, config_file)
    batch_size = fitting_batch_size(dataset, batch_size)

    common = {
        "dataset": str(dataset),
        "example_seconds": WINDOW_SECONDS,
        "overlap_seconds": WINDOW_SECONDS / 2,
        "batch_size": batch_size,
        "log_with": "tensorboard",
        "progress_bar": progress,
        "seed": seed,
        "keep_last": 1,
        "eval_split": "validation",
    }
    _say(f"training a BrainTokMix tokenizer for {tokenizer_steps} steps")
    tok_run = train(
        *parse_run_config(
            {
                **common,
                "task": "brain_tokenizer",
                "model_type": "braintokmix",
                "model_config": TOKENIZER_CONFIG,
                "output_dir": str(output / "tokenizer"),
                "max_steps": tokenizer_steps,
                "learning_rate": 3e-3,
                "warmup_steps": min(20, tokenizer_steps),
                "eval_every": max(1, tokenizer_steps // 3),
                "checkpoint_every": 0,
            }
        )
    )
    tokenizer_dir = tok_run.final_model_dir

    _say("pretokenizing the dataset with the frozen tokenizer")
    tokenizer = AutoModel.from_pretrained(tokenizer_dir)
    pretokenize_dataset(
        tokenizer,
        str(dataset),
        output / "tokens",
        example_seconds=WINDOW_SECONDS,
        overlap_seconds=WINDOW_SECONDS / 2,
        progress=progress,
    )

    _say(f"training a FlatGPTEmbedsRVQ language model for {lm_steps} steps")
    lm_run = train(
        *parse_run_config(
            {
                **common,
                "dataset": str(output / "tokens"),
                "task": "flatgpt",
                "model_type": "flatgpt_embeds_rvq",
                "tokenizer": str(tokenizer_dir),
                "model_config": LM_CONFIG,
                "output_dir": str(output / "lm"),
                "max_steps": lm_steps,
                "learning_rate": 2e-3,
                "warmup_steps": min(20, lm_steps),
                "eval_every": max(1, lm_steps // 3),
                "checkpoint_every": 0,
            }
        )
    )
    lm_dir = lm_run.final_model_dir

    from .data.windows import load_window_datasets

    windows = load_window_datasets(str(dataset), WINDOW_SECONDS, 0.0)
    held_out = windows.get("validation")
    _say(
        "forecasting a held-out window"
        if held_out
        else "forecasting a training window (the dataset has no validation split)"
    )
    held_out = held_out or windows["train"]
    layout = held_out.layout
    sfreq = float(layout.sfreq)
    lm = AutoModel.from_pretrained(lm_dir).eval()
    signal = torch.from_numpy(held_out.window_array([0]))  # (1, C, L)
    horizon = round(horizon_seconds * sfreq)
    hop = lm.config.temporal_reduction
    context_len = (signal.shape[-1] - horizon) // hop * hop
    context, truth = signal[..., :context_len], signal[..., context_len : context_len + horizon]
    torch.manual_seed(seed)
    forecast = forecast_values(lm, context, horizon)
    if not torch.isfinite(forecast).all():
        raise RuntimeError("the forecast is not finite")
    c, f, t = (a[0].numpy() for a in (context, forecast, truth))
    plots = [
        plot_forecast(
            c,
            f,
            t,
            sfreq,
            output / "forecast.png",
            channel_names=layout.names,
            title="FlatGPTEmbedsRVQ forecast (quickstart" + ("" if inputs else ", SIMULATED data") + ")",
        ),
        plot_psd(f, t, sfreq, output / "psd.png", title="PSD: forecast vs truth"),
    ]
    summary = {
        "data": "user recordings" if inputs else "SIMULATED MEG",
        "channels": len(layout.names),
        "sampling_rate": sfreq,
        "tokenizer_final_train_loss": tok_run.losses[max(tok_run.losses)],
        "lm_final_train_loss": lm_run.losses[max(lm_run.losses)],
        "lm_best_validation_loss": min(lm_run.eval_losses.values()) if lm_run.eval_losses else None,
        "forecast_mse": float(np.mean((f - t) ** 2)),
        "truth_variance": float(np.var(t)),
        "tokenizer": str(tokenizer_dir),
        "language_model": str(lm_dir),
        "seconds": round(time.perf_counter() - started, 1),
    }
    report = None
    if evaluation is not None:
        from .evaluation.runner import evaluate
        from .evaluation.sessions import SegmentsTooShortError

        split = next(name for name in ("test", "validation", "train") if windows.get(name))
        _say(
            f"evaluating the LM on the {split} split against the baselines {', '.join(evaluation.baselines)} "
            "(one line per baseline below; the report is evaluation/report.md)"
        )
        try:
            report = evaluate(
                lm_dir, dataset, split=split, config=evaluation, output_dir=output / "evaluation", progress=progress
            )
        except SegmentsTooShortError as err:
            # Recordings of a few seconds cannot hold the evaluation's context + continuation: say so, keep the rest.
            _say(f"evaluation skipped: {err}")
            summary["evaluation"] = {"split": split, "skipped": str(err)}
    if report is not None:
        model_numbers = report.numbers["forecasters"]["model"]["continuation"]
        summary["evaluation"] = {
            "split": split,
            "report": str(output / "evaluation" / "report.md"),
            "contexts": report.numbers["setup"]["contexts"],
            "model": {name: model_numbers[name]["median"] for name in ("psd_jsd", "covariance", "mse")},
            "verdict": report.lines,
        }
    summary["seconds"] = round(time.perf_counter() - started, 1)
    (output / "summary.json").write_text(json.dumps(summary, indent=2, allow_nan=False), encoding="utf-8")
    _say(f"done in {summary['seconds']} s; models in {tokenizer_dir} and {lm_dir}; plots in {output}")
    return QuickstartResult(output, tokenizer_dir, lm_dir, plots, summary)
