"""Rollout generation: batched, seeded forecasts of sampled sessions through the shared `forecast()` contract
(spec 5.4).

`generate_rollouts(forecaster, samples, config)` runs each `SessionSample`'s context `rollouts_per_context` times
through `forecaster.forecast(context (B, C, T), horizon, generation_config, **sensor_metadata)` (a brain_gen_hf
model or a baseline) and returns a `RolloutResult`: context + forecast next to the true recording, for every run.
Runs with the same horizon, channels and sampling rate are stacked up to `rollout_batch_size`; the sensor metadata
a forecaster's signature names (`channel_names`, `pos`, `sensor_type`, `sampling_rate`, `max_context_tokens`,
`sliding_window_overlap`) is passed from the sample and the config.

Differences from the reference, on purpose: outputs must be `(B, C, horizon)` (the contract), so there is no
transpose heuristic; sampling follows a transformers `GenerationConfig`; the RVQ temperature curriculum is a
transformers `LogitsProcessor`; results are saved as `.npz` + JSON (no pickle).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import numbers
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList

from .config_keys import dataclass_values
from .sessions import SessionSample

# GenerationConfig fields a forecast honours (see brain_gen_hf.forecasting.sampling).
SAMPLING_FIELDS = ("do_sample", "temperature", "top_k", "top_p", "min_p", "use_cache")
FORMAT_VERSION = 1


@dataclass
class RolloutConfig:
    """How rollouts are generated.

    rollouts_per_context: forecasts drawn from each session's context (R = sessions * this).
    rollout_batch_size: runs forecast together (stacked on the batch axis).
    seed: each batch is seeded with `seed + index of its first run` (`torch.manual_seed`), so a run's draws do
        not depend on which process generated it when sessions are sharded in whole batches; None: unseeded.
    sampling: GenerationConfig fields (`do_sample`, `temperature`, `top_k`, `top_p`, `min_p`, `use_cache`);
        None uses the forecaster's own generation config (greedy unless the model sets one). The paper sampled
        with `{"do_sample": True, "top_p": 0.8}`.
    temperature_curriculum: RVQ models only (`config.num_levels > 1`): True gives level q the temperature
        `temperature * temperature_decay**q`, a list gives the per-level temperatures; clamped below by
        `temperature_min` and padded with its last value / cut to the model's levels. Needs `do_sample`.
    kv_overlap / max_context_tokens: the sliding window of models whose forecast takes
        `sliding_window_overlap` / `max_context_tokens` (None / -1: the context length).
    positions: sensor positions passed as `pos` where the forecaster takes it: "3d" (position ++ orientation,
        `(B, C, 6)`), "2d" (`(B, C, 2)`) or None (never).
    mu / mulaw_max_value: where the data or a forecast hold integer mu-law bins, they are mapped back to signal
        units (`mulaw_to_signal` with `mu + 1` levels); float arrays are already in signal units.
    max_plot_seconds: how much of each run the rollout plots show (None: all).
    enabled / paired_file: read by the evaluation runner (whether to generate; the cache file name).
    """

    rollouts_per_context: int = 1
    rollout_batch_size: int = 1
    seed: int | None = 0
    sampling: dict | None = None
    temperature_curriculum: bool | list[float] = False
    temperature_decay: float = 0.85
    temperature_min: float | None = None
    kv_overlap: float | int = 0.5
    max_context_tokens: int | None = None
    positions: str | None = "3d"
    mu: int | None = None
    mulaw_max_value: float = 1.0
    max_plot_seconds: float | None = None
    enabled: bool = True
    paired_file: str = "paired_rollouts.npz"

    ALIASES = {
        "num_rollouts_per_context": "rollouts_per_context",
        "max_plot_length_s": "max_plot_seconds",
        "temperature_levels": "temperature_curriculum",
        "temperature_per_level": "temperature_curriculum",
        "paired_name": "paired_file",
    }

    @classmethod
    def from_dict(cls, values: dict | None) -> RolloutConfig:
        values = dataclass_values(cls, "rollout generator", values, cls.ALIASES)
        config = cls(**values)
        config.validate()
        return config

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def validate(self) -> None:
        for name in ("rollouts_per_context", "rollout_batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"rollout generator: {name} must be a positive int, got {value!r}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral)):
            raise ValueError(f"rollout generator: seed must be an int or None, got {self.seed!r}")
        if self.sampling is not None:
            if not isinstance(self.sampling, dict):
                raise ValueError(
                    f"rollout generator: sampling must be a dict of GenerationConfig fields, got {self.sampling!r}"
                )
            unknown = sorted(set(self.sampling) - set(SAMPLING_FIELDS))
            if unknown:
                raise ValueError(
                    f"rollout generator: unknown sampling key(s) {unknown}; a forecast honours {list(SAMPLING_FIELDS)}"
                )
        curriculum = self.temperature_curriculum
        if isinstance(curriculum, (list, tuple)):
            if not curriculum or not all(
                isinstance(t, numbers.Real) and not isinstance(t, bool) and t > 0 for t in curriculum
            ):
                raise ValueError(
                    f"rollout generator: temperature_curriculum must be True/False or a list of positive "
                    f"temperatures, got {curriculum!r}"
                )
        elif not isinstance(curriculum, bool):
            raise ValueError(f"rollout generator: temperature_curriculum must be a bool or a list, got {curriculum!r}")
        if not isinstance(self.temperature_decay, numbers.Real) or not self.temperature_decay > 0:
            raise ValueError(f"rollout generator: temperature_decay must be positive, got {self.temperature_decay!r}")
        if self.temperature_min is not None and not (
            isinstance(self.temperature_min, numbers.Real) and self.temperature_min > 0
        ):
            raise ValueError(
                f"rollout generator: temperature_min must be positive or None, got {self.temperature_min!r}"
            )
        if self.max_context_tokens == -1:
            self.max_context_tokens = None
        if self.positions not in ("3d", "2d", None):
            raise ValueError(f"rollout generator: positions must be '3d', '2d' or None, got {self.positions!r}")
        if self.mu is not None and (
            isinstance(self.mu, bool) or not isinstance(self.mu, numbers.Integral) or self.mu < 1
        ):
            raise ValueError(f"rollout generator: mu must be a positive int or None, got {self.mu!r}")
        if self.max_plot_seconds is not None and not (
            isinstance(self.max_plot_seconds, numbers.Real) and self.max_plot_seconds > 0
        ):
            raise ValueError(
                f"rollout generator: max_plot_seconds must be positive or None, got {self.max_plot_seconds!r}"
            )

    def generation_config(self) -> GenerationConfig | None:
        if self.sampling is None:
            return None
        return GenerationConfig(**self.sampling)


@dataclass
class RolloutResult:
    """Every run's context + forecast (`generated`) next to the recording (`target`), both `(R, C, total_steps)`
    float32; `metadata[r]` says which session and rollout run r is (`session_index`, `rollout_index`,
    `dataset_key`, `subject`, `session`, `task_type`, `segment_index`)."""

    generated: np.ndarray
    target: np.ndarray
    context_steps: int
    total_steps: int
    sfreq: float
    metadata: list[dict]
    channel_names: list[str] | None = None
    pos_2d: np.ndarray | None = None
    stats: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.generated.shape != self.target.shape or self.generated.ndim != 3:
            raise ValueError(f"generated {self.generated.shape} and target {self.target.shape} must both be (R, C, T)")
        if self.generated.shape[-1] != self.total_steps or not 0 < self.context_steps < self.total_steps:
            raise ValueError(
                f"runs of {self.generated.shape[-1]} samples do not match context_steps={self.context_steps}, "
                f"total_steps={self.total_steps}"
            )
        if len(self.metadata) != self.generated.shape[0]:
            raise ValueError(f"{len(self.metadata)} metadata entries for {self.generated.shape[0]} runs")

    @property
    def num_runs(self) -> int:
        return self.generated.shape[0]

    @property
    def horizon(self) -> int:
        return self.total_steps - self.context_steps

    @property
    def generated_continuation(self) -> np.ndarray:
        return self.generated[..., self.context_steps :]

    @property
    def target_continuation(self) -> np.ndarray:
        return self.target[..., self.context_steps :]

    def save(self, path: str | Path) -> Path:
        """Write `path` (.npz: the arrays) and `path` with suffix .json (everything else); returns the .npz path."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"generated": self.generated, "target": self.target}
        if self.pos_2d is not None:
            arrays["pos_2d"] = np.asarray(self.pos_2d, dtype=np.float32)
        np.savez(path, **arrays)
        sidecar = {
            "format_version": FORMAT_VERSION,
            "context_steps": int(self.context_steps),
            "total_steps": int(self.total_steps),
            "sfreq": float(self.sfreq),
            "metadata": self.metadata,
            "channel_names": self.channel_names,
            "stats": self.stats,
        }
        path.with_suffix(".json").write_text(json.dumps(_finite(sidecar), indent=1, allow_nan=False))
        return path

    @classmethod
    def load(cls, path: str | Path) -> RolloutResult:
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        sidecar_path = path.with_suffix(".json")
        if not path.is_file() or not sidecar_path.is_file():
            raise FileNotFoundError(f"a saved RolloutResult needs {path} and {sidecar_path}; one is missing")
        sidecar = json.loads(sidecar_path.read_text())
        if sidecar.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{sidecar_path}: format_version {sidecar.get('format_version')!r}, expected {FORMAT_VERSION}"
            )
        with np.load(path, allow_pickle=False) as arrays:
            generated, target = arrays["generated"], arrays["target"]
            pos_2d = arrays["pos_2d"] if "pos_2d" in arrays.files else None
        return cls(
            generated=generated,
            target=target,
            context_steps=sidecar["context_steps"],
            total_steps=sidecar["total_steps"],
            sfreq=sidecar["sfreq"],
            metadata=sidecar["metadata"],
            channel_names=sidecar.get("channel_names"),
            pos_2d=pos_2d,
            stats=sidecar.get("stats") or {},
        )


def _finite(value):
    """JSON-safe copy: non-finite floats become None (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


class RVQTemperatureCurriculum(LogitsProcessor):
    """Divides the scores of each sampled RVQ code by its level's temperature.

    The flat codes of an RVQ FlatGPT run in (time, latent, level) order and a forecast starts on a whole token
    step, so the i-th generated code has level `i mod Q`. Each call receives the scores of the `n` codes chosen
    next for each of `batch_size` rows (`(batch_size * n, V)`, row-major); a running offset tracks the level.
    Make one processor per forecast call (it counts the codes it has seen).
    """

    def __init__(self, temperatures, batch_size: int):
        self.temperatures = torch.as_tensor(list(temperatures), dtype=torch.float32)
        self.batch_size, self.offset = int(batch_size), 0

    def __call__(self, input_ids, scores: torch.FloatTensor) -> torch.FloatTensor:
        rows = scores.shape[0]
        if rows % self.batch_size:
            raise ValueError(f"{rows} score rows is not a multiple of the batch size {self.batch_size}")
        n = rows // self.batch_size
        levels = (self.offset + torch.arange(n)) % len(self.temperatures)
        self.offset += n
        temperature = self.temperatures.to(scores.device)[levels].repeat(self.batch_size)
        return scores / temperature[:, None]


def curriculum_temperatures(config: RolloutConfig, num_levels: int, base_temperature: float) -> list[float]:
    """The per-level temperatures of the RVQ curriculum (see `RolloutConfig`)."""
    if isinstance(config.temperature_curriculum, (list, tuple)):
        temperatures = [float(t) for t in config.temperature_curriculum]
    else:
        temperatures = [base_temperature * config.temperature_decay**q for q in range(num_levels)]
    if config.temperature_min is not None:
        temperatures = [max(t, float(config.temperature_min)) for t in temperatures]
    temperatures = (temperatures + [temperatures[-1]] * num_levels)[:num_levels]
    return temperatures


def _accepted_keywords(forecaster) -> set[str]:
    """The sensor-metadata / option keywords `forecaster.forecast` names: those of a brain_gen_hf model's
    `_forecast` (what its `forecast` accepts), else of `forecast` itself; `**kwargs` alone accepts none."""
    function = getattr(forecaster, "_forecast", None) or forecaster.forecast
    parameters = inspect.signature(function).parameters.values()
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {p.name for p in parameters if p.kind in kinds}


def _device(forecaster) -> torch.device:
    if isinstance(forecaster, torch.nn.Module):
        parameter = next(forecaster.parameters(), None)
        if parameter is not None:
            return parameter.device
    return torch.device("cpu")


def _check_samples(samples) -> list[SessionSample]:
    samples = list(samples)
    if not samples:
        raise ValueError("generate_rollouts needs at least one SessionSample (sample_sessions returned none?)")
    first = samples[0]
    for sample in samples:
        if not isinstance(sample, SessionSample):
            raise ValueError(
                f"samples must be SessionSample objects (from sample_sessions), got {type(sample).__name__}"
            )
        data = sample.data
        if not isinstance(data, np.ndarray) or data.ndim != 2:
            raise ValueError(f"{sample.name}: data must be a (C, T) array, got {getattr(data, 'shape', type(data))}")
        if not 0 < sample.context_steps < sample.total_steps or data.shape[1] != sample.total_steps:
            raise ValueError(
                f"{sample.name}: context_steps ({sample.context_steps}) must be in (0, total_steps "
                f"({sample.total_steps})) and data must hold total_steps samples (it holds {data.shape[1]})"
            )
        if not np.isfinite(data).all():
            raise ValueError(f"{sample.name}: data hold {int((~np.isfinite(data)).sum())} NaN/inf values")
        same = (sample.context_steps, sample.total_steps, data.shape[0], sample.sfreq)
        if same != (first.context_steps, first.total_steps, first.data.shape[0], first.sfreq):
            raise ValueError(
                f"every sample must share context_steps, total_steps, channel count and sfreq (one RolloutResult "
                f"holds them): {sample.name} has {same}, {first.name} has "
                f"{(first.context_steps, first.total_steps, first.data.shape[0], first.sfreq)}; sample one "
                "dataset / channel set at a time"
            )
    return samples


def _sensor_kwargs(forecaster, batch: list[SessionSample], config: RolloutConfig, device) -> dict:
    accepted = _accepted_keywords(forecaster)
    sample, kwargs = batch[0], {}
    if "channel_names" in accepted:
        kwargs["channel_names"] = list(sample.channel_names)
    if "sampling_rate" in accepted:
        kwargs["sampling_rate"] = float(sample.sfreq)
    if "pos" in accepted and config.positions is not None:
        if config.positions == "3d" and sample.pos_3d is not None and sample.ori_3d is not None:
            pos = [np.concatenate([s.pos_3d, s.ori_3d], axis=1) for s in batch]
        elif config.positions == "2d" and sample.pos_2d is not None:
            pos = [s.pos_2d for s in batch]
        else:
            raise ValueError(
                f"{sample.name} has no {config.positions} sensor positions for positions={config.positions!r}"
            )
        kwargs["pos"] = torch.from_numpy(np.stack(pos).astype(np.float32)).to(device)
        kwargs["sensor_type"] = torch.from_numpy(np.stack([s.sensor_type_ids for s in batch])).to(device)
    for option, keyword in (("max_context_tokens", "max_context_tokens"), ("kv_overlap", "sliding_window_overlap")):
        value = getattr(config, option)
        if keyword in accepted:
            kwargs[keyword] = value
        elif option == "max_context_tokens" and value is not None:
            raise ValueError(
                f"max_context_tokens={value} is set but {type(forecaster).__name__}.forecast has no sliding "
                "window (no max_context_tokens keyword); unset it"
            )
    return kwargs


def _curriculum(forecaster, config: RolloutConfig, generation_config: GenerationConfig | None, batch_size: int):
    """(generation_config, logits processors) with the RVQ temperature curriculum, or the inputs unchanged."""
    if config.temperature_curriculum is False:
        return generation_config, None
    model_config = getattr(forecaster, "config", None)
    num_levels = getattr(model_config, "num_levels", None)
    if not isinstance(num_levels, int) or num_levels < 2:
        raise ValueError(
            f"temperature_curriculum applies to RVQ FlatGPT models (config.num_levels > 1); "
            f"{type(forecaster).__name__} has num_levels={num_levels!r}; unset temperature_curriculum"
        )
    if generation_config is None or not generation_config.do_sample:
        raise ValueError("temperature_curriculum needs sampling: set sampling: {do_sample: true, ...}")
    base = generation_config.temperature if generation_config.temperature is not None else 1.0
    temperatures = curriculum_temperatures(config, num_levels, float(base))
    # The curriculum's temperatures include the base temperature: the config's own warper must not apply it again.
    generation_config = GenerationConfig(**{**config.sampling, "temperature": 1.0})
    return generation_config, LogitsProcessorList([RVQTemperatureCurriculum(temperatures, batch_size)])


def _signal_units(array: np.ndarray, config: RolloutConfig) -> np.ndarray:
    if config.mu is not None and np.issubdtype(array.dtype, np.integer):
        from ..layers.mulaw_signal import mulaw_to_signal

        array = mulaw_to_signal(torch.from_numpy(array.astype(np.int64)), config.mu + 1, config.mulaw_max_value).numpy()
    return np.asarray(array, dtype=np.float32)


def _batches(runs: list[tuple[int, int, SessionSample]], batch_size: int):
    """Runs grouped by what must match to stack them (channel names, geometry presence), in run order."""
    groups: dict[tuple, list] = {}
    for run in runs:
        sample = run[2]
        key = (tuple(sample.channel_names), sample.pos_3d is None, sample.pos_2d is None)
        groups.setdefault(key, []).append(run)
    for group in groups.values():
        for start in range(0, len(group), batch_size):
            yield group[start : start + batch_size]


def generate_rollouts(
    forecaster,
    samples: list[SessionSample],
    config: RolloutConfig | dict | None = None,
    *,
    progress: bool | None = None,
    index_offset: int = 0,
) -> RolloutResult:
    """Forecast every sample's continuation `rollouts_per_context` times; see the module docstring.

    `index_offset` is added to the session indices (the position in `samples`), for a shard of a longer list:
    run indices, and so the seeds, are then those of the whole list.
    """
    if config is None or isinstance(config, dict):
        config = RolloutConfig.from_dict(config)
    config.validate()
    if not callable(getattr(forecaster, "forecast", None)):
        raise ValueError(
            f"the forecaster must have a forecast() method (the shared contract), got {type(forecaster).__name__}"
        )
    samples = _check_samples(samples)
    first = samples[0]
    context_steps, total_steps = first.context_steps, first.total_steps
    horizon = total_steps - context_steps
    k = config.rollouts_per_context
    runs = [(index_offset + i, r, sample) for i, sample in enumerate(samples) for r in range(k)]
    device = _device(forecaster)
    accepted = _accepted_keywords(forecaster)
    base_generation_config = config.generation_config()
    generated = np.empty((len(runs), first.data.shape[0], total_steps), dtype=np.float32)
    target = np.empty_like(generated)
    metadata: list[dict] = [{} for _ in runs]
    position = {(run[0], run[1]): j for j, run in enumerate(runs)}
    from tqdm.auto import tqdm

    show = progress if progress is not None else sys.stderr.isatty()
    started = time.perf_counter()
    with tqdm(total=len(runs), desc="rollouts", unit="run", disable=not show, leave=False) as bar:
        for batch in _batches(runs, config.rollout_batch_size):
            batch_samples = [run[2] for run in batch]
            context = np.stack([_signal_units(s.context, config) for s in batch_samples])
            inputs = torch.from_numpy(context).to(device)
            kwargs = _sensor_kwargs(forecaster, batch_samples, config, device)
            generation_config, processors = _curriculum(forecaster, config, base_generation_config, len(batch))
            if processors is not None:
                kwargs["logits_processor"] = processors
            if "progress" in accepted:
                kwargs["progress"] = False
            if config.seed is not None:
                torch.manual_seed(config.seed + batch[0][0] * k + batch[0][1])
            output = forecaster.forecast(inputs, horizon, generation_config, **kwargs)
            values = output["values"] if isinstance(output, dict) else output.values  # ForecastOutput is a dict too
            if isinstance(values, torch.Tensor):
                # bfloat16 / float16 have no numpy dtype; integer mu-law bins stay integers for `_signal_units`.
                values = (values.float() if values.is_floating_point() else values).detach().cpu().numpy()
            else:
                values = np.asarray(values)
            expected = (len(batch), context.shape[1], horizon)
            if values.shape != expected:
                raise ValueError(
                    f"{type(forecaster).__name__}.forecast returned values of shape {values.shape}; the contract is "
                    f"(B, C, horizon) = {expected}"
                )
            values = _signal_units(values, config)
            if not np.isfinite(values).all():
                raise ValueError(
                    f"{type(forecaster).__name__}.forecast returned {int((~np.isfinite(values)).sum())} NaN/inf "
                    f"values for {batch_samples[0].name}"
                )
            for row, (session_index, rollout_index, sample) in enumerate(batch):
                j = position[(session_index, rollout_index)]
                truth = _signal_units(sample.data, config)
                generated[j] = np.concatenate([truth[:, :context_steps], values[row]], axis=1)
                target[j] = truth
                metadata[j] = {"session_index": session_index, "rollout_index": rollout_index, **sample.metadata()}
            bar.update(len(batch))
    wall = time.perf_counter() - started
    signal_seconds = len(runs) * horizon / float(first.sfreq)
    return RolloutResult(
        generated=generated,
        target=target,
        context_steps=context_steps,
        total_steps=total_steps,
        sfreq=float(first.sfreq),
        metadata=metadata,
        channel_names=list(first.channel_names),
        pos_2d=None if first.pos_2d is None else np.asarray(first.pos_2d, dtype=np.float32),
        stats={
            "wall_s": wall,
            "signal_seconds": signal_seconds,
            "signal_seconds_per_second": signal_seconds / wall if wall > 0 else None,
            "rollout_batch_size": config.rollout_batch_size,
        },
    )


def measure_rollout_throughput(
    forecaster, samples: list[SessionSample], config: RolloutConfig | dict | None = None, batch_sizes=(1, None)
) -> dict:
    """Signal-seconds generated per wall second for each rollout batch size (None: all runs in one batch).

    Returns `{"batch_<n>": {"rollout_batch_size", "runs", "wall_s", "signal_seconds",
    "signal_seconds_per_second"}, "speedup": batched / one-at-a-time}` (speedup when 1 and a larger size ran).
    """
    if config is None or isinstance(config, dict):
        config = RolloutConfig.from_dict(config)
    runs = len(list(samples)) * config.rollouts_per_context
    results = {}
    for size in batch_sizes:
        size = runs if size is None else int(size)
        sized = dataclasses.replace(config, rollout_batch_size=size)
        result = generate_rollouts(forecaster, samples, sized, progress=False)
        results[f"batch_{size}"] = {"rollout_batch_size": size, "runs": result.num_runs, **result.stats}
    rates = [v["signal_seconds_per_second"] for v in results.values()]
    if "batch_1" in results and len(results) > 1 and rates[0]:
        results["speedup"] = max(rates) / results["batch_1"]["signal_seconds_per_second"]
    return results
