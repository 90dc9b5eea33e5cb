"""`evaluate()`: is a trained brain LM any good? Rollouts of the model and of every baseline through the same code,
the sliding-window and divergence analyses with their statistics, the token summary, and the report.

Output layout (the file names inside each forecaster's folder are the reference's, spec 5.10)::

    OUTPUT/report.md, OUTPUT/report.json, OUTPUT/eval_config.yaml
    OUTPUT/model/                paired_rollouts.npz/.json, gen_vs_target_*.png, rollout_divergence.{json,png},
                                 rollout_divergence_stats.{json,md}, rollout_window_metrics.{json,png},
                                 token_summary.{json,png} (token language models)
    OUTPUT/baselines/<name>/     the same for each baseline (no token summary)

With an `accelerate.Accelerator` the sampled sessions are split between the processes (each generates the
rollouts of its share), gathered in session order, and the main process runs the analyses and writes the
report: the numbers are those of a single-process run.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from .config import EvaluationConfig
from .report import HEADLINE_METRICS, EvaluationReport, compare_paired

MODEL_NAME = "model"
_REPO_ID = re.compile(r"[\w.-]+/[\w.-]+")


def _say(message: str) -> None:
    print(f"[evaluate] {message}", flush=True)


# ---------------------------------------------------------------------------------------------- inputs
def check_output_dir(output_dir: str | Path) -> Path:
    """The output folder (created), or a NotADirectoryError when it, or a folder above it, is a file."""
    output = Path(output_dir)
    blocking = next((folder for folder in (output, *output.parents) if folder.exists()), None)
    if blocking is not None and not blocking.is_dir():
        raise NotADirectoryError(f"--output {output}: {blocking} is a file, not a folder; choose another --output")
    output.mkdir(parents=True, exist_ok=True)
    return output


def load_model(model: Any):
    """`(model, label)`: an already-loaded model as is, else `AutoModel.from_pretrained` of a folder or repo id."""
    if not isinstance(model, (str, Path)):
        if not callable(getattr(model, "forecast", None)):
            raise ValueError(f"{type(model).__name__} has no forecast(): evaluate needs a forecasting model")
        return model, getattr(getattr(model, "config", None), "name_or_path", None) or type(model).__name__
    from transformers import AutoModel

    import brain_gen_hf  # noqa: F401  (registers the model classes with the Auto classes)

    name = str(model)
    folder = Path(name).expanduser()
    if folder.exists():
        if not folder.is_dir():
            raise NotADirectoryError(f"model {folder} is a file; pass a folder written by save_pretrained")
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(
                f"model folder {folder} has no config.json, so it is not a saved model; pass a folder written by "
                "save_pretrained (e.g. a training run's final_model)"
            )
    elif not _REPO_ID.fullmatch(name):
        raise FileNotFoundError(
            f"model folder {name} does not exist (and it is not a Hub repo id 'org/name'); pass a folder written by "
            "save_pretrained, e.g. quickstart_output/lm/final_model"
        )
    try:
        loaded = AutoModel.from_pretrained(name)
    except OSError as err:
        raise OSError(f"could not load the model {name!r}: {' '.join(str(err).split())}") from err
    if not callable(getattr(loaded, "forecast", None)):
        raise ValueError(
            f"{name} is a {type(loaded).__name__} ({loaded.config.model_type}), which has no forecast(): evaluate "
            "needs a forecasting model (a brain language model, not a tokenizer or classifier)"
        )
    return loaded.eval(), name


def load_split(dataset: Any, split: str):
    """The segments of `split` of a built dataset folder / Hub repo, or a ValueError listing the splits there are."""
    if not isinstance(dataset, (str, Path)):
        return dataset  # already loaded segments
    from ..data.windows import load_segments

    splits = load_segments(str(dataset))
    if split == "val" and "val" not in splits and "validation" in splits:
        split = "validation"  # the reference's name for our datasets' validation split
    if split not in splits:
        raise ValueError(
            f"dataset {dataset} has no {split!r} split; it has {sorted(splits)}: pass --split "
            + " or --split ".join(sorted(splits))
        )
    return splits[split]


# ---------------------------------------------------------------------------------------------- evaluation
def evaluate(
    model: Any,
    dataset: Any,
    *,
    split: str | None = None,
    config: EvaluationConfig | dict | str | Path | None = None,
    output_dir: str | Path,
    baselines: list[str] | tuple[str, ...] | None = None,
    accelerator=None,
    progress: bool | None = None,
) -> EvaluationReport | None:
    """Evaluate `model` on the sessions of `dataset[split]` against `baselines` (default: the config's).

    model: a saved model folder, a Hub repo id or a loaded model with `forecast()`.
    dataset: a built dataset folder or Hub dataset repo (`brain-gen-hf preprocess`), or loaded segments.
    split: the split to sample sessions from (default: the config's `sampler.split`, "test").
    Returns the report on the main process (None on the others, which only generate their share).
    """
    config = EvaluationConfig.coerce(config)
    split = split or config.sampler.split
    if baselines is not None:
        config = config.replace(
            baselines=list(baselines),
            baseline_options={k: v for k, v in config.baseline_options.items() if k in baselines},
        )
    main = accelerator is None or accelerator.is_main_process
    output = check_output_dir(output_dir) if main else Path(output_dir)
    from .baselines import build_baselines

    forecasters = build_baselines(config.baselines, **config.baseline_options)  # fails fast on a bad name
    segments = load_split(dataset, split)  # before the model: a wrong split costs no model download
    model, model_label = load_model(model)
    if accelerator is not None and hasattr(model, "to"):
        model = model.to(accelerator.device)

    from .sessions import sample_sessions

    samples = sample_sessions(segments, config.sampler)
    if main:
        _say(f"{len(samples)} session(s) from split {split!r}; forecasters: model, {', '.join(forecasters) or '-'}")
        import yaml

        (output / "eval_config.yaml").write_text(yaml.safe_dump(_jsonable(config.to_dict()), sort_keys=False))
    results = {MODEL_NAME: _generate(model, samples, config, accelerator, progress)}
    for name, forecaster in forecasters.items():
        results[name] = _generate(forecaster, samples, config, accelerator, progress)
    if not main:  # no collective call follows: the other processes are done once the rollouts are gathered
        return None
    numbers = analyse(
        results,
        config,
        output,
        model=model,
        segments=segments,
        progress=progress,
    )
    numbers = {
        "model": model_label,
        "dataset": str(dataset) if isinstance(dataset, (str, Path)) else type(dataset).__name__,
        "split": split,
        **numbers,
        "skipped_baselines": dict(forecasters.skipped),
    }
    report = EvaluationReport(numbers, output, model=model)
    report.files = report.save(output)
    for line in report.lines:
        _say(line)
    return report


def _jsonable(value):
    import json

    from .report import to_json

    return json.loads(to_json(value))


def shard_blocks(n_samples: int, rollouts_per_context: int, batch_size: int) -> list[list[int]]:
    """Sample indices in blocks whose runs fill whole rollout batches: a process then forecasts exactly the batches
    (same runs stacked, same seeds) that a single process would, so sharding changes no number."""
    per_block = math.lcm(rollouts_per_context, batch_size) // rollouts_per_context
    return [list(range(i, min(i + per_block, n_samples))) for i in range(0, n_samples, per_block)]


def concatenate_rollouts(parts: list):
    """One `RolloutResult` of several (from consecutive blocks of the same sample list), in order."""
    from .rollouts import RolloutResult

    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    wall = sum(p.stats.get("wall_s") or 0.0 for p in parts)
    seconds = sum(p.stats.get("signal_seconds") or 0.0 for p in parts)
    return RolloutResult(
        generated=np.concatenate([p.generated for p in parts]),
        target=np.concatenate([p.target for p in parts]),
        context_steps=first.context_steps,
        total_steps=first.total_steps,
        sfreq=first.sfreq,
        metadata=[meta for p in parts for meta in p.metadata],
        channel_names=first.channel_names,
        pos_2d=first.pos_2d,
        stats={**first.stats, "wall_s": wall, "signal_seconds": seconds, "blocks": len(parts)},
    )


def _generate(forecaster, samples: list, config: EvaluationConfig, accelerator, progress):
    """The rollouts of every sample, each process generating its share; every process gets the whole result."""
    from .rollouts import generate_rollouts

    if accelerator is None or accelerator.num_processes == 1:
        return generate_rollouts(forecaster, samples, config.generator, progress=progress)
    from accelerate.utils import gather_object

    generator = config.generator
    blocks = shard_blocks(len(samples), generator.rollouts_per_context, generator.rollout_batch_size)
    parts = []
    with accelerator.split_between_processes(blocks) as mine:
        for block in mine:
            block_samples = [samples[i] for i in block]
            parts.append(
                generate_rollouts(forecaster, block_samples, generator, progress=progress, index_offset=block[0])
            )
    gathered = gather_object([(block[0], part) for block, part in zip(mine, parts)])
    result = concatenate_rollouts([part for _, part in sorted(gathered, key=lambda item: item[0])])
    # wall_s sums the processes' generation times; signal-seconds per second is then per process
    result.stats = {**result.stats, "processes": accelerator.num_processes}
    return result


def forecaster_dir(output: Path, name: str) -> Path:
    return output / MODEL_NAME if name == MODEL_NAME else output / "baselines" / name


def _sample_keys(metadata: list[dict]) -> list:
    """Which sampled context each run continues (runs of one context are averaged before any test)."""
    for key in ("session_index", "sample_index", "context_index"):
        if metadata and all(key in meta for meta in metadata):
            return [meta[key] for meta in metadata]
    return list(range(len(metadata)))


def per_context(values: np.ndarray, keys: list) -> np.ndarray:
    """Per-run values -> the NaN-mean per context, in order of first appearance."""
    import warnings

    values = np.asarray(values, dtype=np.float64)
    order = list(dict.fromkeys(keys))
    keys = np.asarray([order.index(k) for k in keys])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a context with no finite value gives NaN
        return np.asarray([np.nanmean(values[keys == i]) for i in range(len(order))])


def _summary(values: np.ndarray) -> dict:
    finite = values[np.isfinite(values)]
    if not finite.size:
        return {"median": None, "q25": None, "q75": None, "per_context": values}
    q25, median, q75 = np.percentile(finite, [25, 50, 75])
    return {"median": median, "q25": q25, "q75": q75, "per_context": values}


def continuation_metrics(result, divergence: dict) -> dict[str, np.ndarray]:
    """Per context: every divergence metric of the correct pairing at the longest prefix, and the point MSE."""
    keys = _sample_keys(result.metadata)
    out = {}
    for name, entry in divergence["metrics"].items():
        runs = np.asarray(entry["runs"], dtype=np.float64)  # (n_runs, n_points), rows in context_ids order
        by_run = np.full(len(keys), np.nan)
        by_run[np.asarray(entry["context_ids"], dtype=np.int64)] = runs[:, -1]
        out[name] = per_context(by_run, keys)
    context = int(result.context_steps)
    error = (np.asarray(result.generated)[..., context:] - np.asarray(result.target)[..., context:]) ** 2
    out["mse"] = per_context(error.reshape(len(keys), -1).mean(axis=1), keys)
    return out


def analyse_forecaster(name: str, result, config: EvaluationConfig, metrics_config, folder: Path) -> dict:
    """The analyses of one forecaster's rollouts, written into `folder`; returns their numbers."""
    from .divergence import divergence_analysis
    from .sliding_windows import sliding_window_analysis
    from .statistics import divergence_statistics

    folder.mkdir(parents=True, exist_ok=True)
    result.save(folder / "paired_rollouts")
    sfreq = float(result.sfreq)
    plot = config.plots and (name == MODEL_NAME or config.baseline_plots)
    if plot:
        from .rollout_plots import plot_rollouts

        plot_rollouts(result, folder, seed=config.generator.seed, max_plot_seconds=config.generator.max_plot_seconds)
    sliding = sliding_window_analysis(result, config.sliding_window, metrics_config, sfreq, folder, plot=plot)
    divergence = divergence_analysis(result, config.divergence, metrics_config, sfreq, folder, plot=plot)
    stats = divergence_statistics(divergence, config.stats, folder)
    continuation = continuation_metrics(result, divergence)
    return {
        "continuation": {metric: _summary(values) for metric, values in continuation.items()},
        "continuation_horizon_seconds": divergence["metrics"][next(iter(divergence["metrics"]))]["x"][-1]
        if divergence["metrics"]
        else None,
        "rollout_stats": dict(result.stats),
        "sliding_window": sliding,
        "divergence": divergence,
        "divergence_stats": stats,
    }


def context_effect(stats: dict, horizon: float | None) -> dict:
    """The correct-vs-target-swap statistics of the headline metrics at the longest horizon."""
    out = {}
    for row in stats.get("comparisons", []):
        if row["comparison"] != "correct_vs_target_swap" or row["metric"] not in HEADLINE_METRICS:
            continue
        if horizon is not None and not np.isclose(row["horizon"], horizon):
            continue
        test, ci = row.get("test") or {}, row.get("ci") or {}
        out[row["metric"]] = {
            "median_delta": row["median_delta"],
            "prob_improvement": row["prob_improvement"],
            "n": row["n"],
            "p_value": test.get("p_value"),
            "ci_low": ci.get("low"),
            "ci_high": ci.get("high"),
            "horizon": row["horizon"],
        }
    return out


def analyse(results: dict, config: EvaluationConfig, output: Path, *, model, segments, progress) -> dict:
    """Every analysis of every forecaster, the model-vs-baseline comparisons and the token summary."""
    from .distances import SIMILARITY_METRICS

    first = results[MODEL_NAME]
    sfreq = float(first.sfreq)
    metrics_config = config.metrics if config.metrics.fs else config.metrics.with_fs(sfreq)
    forecasters = {}
    for name, result in results.items():
        _say(f"analysing the rollouts of {name}")
        forecasters[name] = analyse_forecaster(name, result, config, metrics_config, forecaster_dir(output, name))
    model_values = forecasters[MODEL_NAME]["continuation"]
    comparisons = {}
    for name in results:
        if name == MODEL_NAME:
            continue
        theirs = forecasters[name]["continuation"]
        comparisons[name] = {
            metric: compare_paired(
                model_values[metric]["per_context"],
                theirs[metric]["per_context"],
                higher_is_better=metric in SIMILARITY_METRICS,
            )
            for metric in (*HEADLINE_METRICS, "mse")
            if metric in model_values and metric in theirs
        }
    n_runs, _, total = np.asarray(first.generated).shape
    contexts = len(dict.fromkeys(_sample_keys(first.metadata)))
    numbers = {
        "setup": {
            "sfreq": sfreq,
            "contexts": contexts,
            "rollouts_per_context": n_runs // max(contexts, 1),
            "context_seconds": first.context_steps / sfreq,
            "continuation_seconds": (total - first.context_steps) / sfreq,
            "sessions": first.metadata,
        },
        "comparisons": comparisons,
        "context_effect": context_effect(
            forecasters[MODEL_NAME]["divergence_stats"], forecasters[MODEL_NAME]["continuation_horizon_seconds"]
        ),
        "token_summary": run_token_summary(model, segments, config, sfreq, forecaster_dir(output, MODEL_NAME)),
        "forecasters": forecasters,
    }
    return numbers


def is_token_model(model) -> bool:
    """Token language models (FlatGPT families) get a token summary; signal forecasters do not."""
    return isinstance(getattr(model, "prediction_block", None), int) and isinstance(
        getattr(getattr(model, "config", None), "vocab_size", None), int
    )


def token_batches(model, segments, count: int, batch_size: int):
    """`count` batches of `batch_size` signal windows of the model's training length, evenly spread over the
    split (the same windows on every run)."""
    import torch

    from ..data.windows import WindowDataset

    input_shape = getattr(model.config, "input_shape", None)
    sfreq = float(segments[0]["sfreq"]) if len(segments) else None
    if not input_shape or not sfreq:
        return []
    windows = WindowDataset(segments, input_shape[0] / sfreq, 0.0)
    n = min(len(windows), count * batch_size)
    picks = np.unique(np.linspace(0, len(windows) - 1, n).round().astype(np.int64))
    device = next(model.parameters()).device
    return [
        torch.from_numpy(windows.window_array(picks[i : i + batch_size])).to(device)
        for i in range(0, len(picks), batch_size)
    ]


def run_token_summary(model, segments, config: EvaluationConfig, sfreq: float, folder: Path) -> dict | None:
    """bits/token, perplexity and the unigram baseline on windows of the split (token language models only)."""
    from .token_summary import token_summary

    if not config.token_batches or not config.token_summary.enabled or not is_token_model(model):
        return None
    batches = token_batches(model, segments, config.token_batches, config.token_batch_size)
    if not batches:
        return None
    result = token_summary(model, batches, config.token_summary, sfreq, folder)
    summary = dict(result["summary"])
    summary["unigram_bits_per_token"] = math.log2(summary["unigram_perplexity"])
    return {**summary, "details": result}


# ---------------------------------------------------------------------------------------------- command line
def evaluate_command(args, accelerator=None) -> int:
    """`brain-gen-hf evaluate` / `training_scripts/evaluate.py`: the parsed arguments -> exit status."""
    if args.push_to_hub:
        from ..hub.upload import check_repo_id

        check_repo_id(args.push_to_hub, "--push-to-hub")  # before the evaluation, not after it
    config = EvaluationConfig.coerce(args.config)
    baselines = None
    if args.baselines is not None:
        baselines = [name.strip() for name in args.baselines.split(",") if name.strip()]
    report = evaluate(
        args.model,
        args.dataset,
        split=args.split,
        config=config,
        output_dir=args.output,
        baselines=baselines,
        accelerator=accelerator,
        progress=not args.no_progress,
    )
    if report is None:
        return 0
    print(f"wrote {report.output_dir / 'report.md'} (read it first) and report.json")
    if args.push_to_hub:
        from .report import push_report_to_hub

        url = push_report_to_hub(report, args.push_to_hub, private=args.private or None)
        print(f"pushed the evaluation to {args.push_to_hub}: {url}")
    return 0
