"""Token-level summary of a FlatGPT language model (spec 5.9): bits per token, perplexity, unigram perplexity,
bits per second and decoded MSE, as curves over the position in the context.

The logits at flat index p score the code at p + `model.prediction_block` (the models' own loss), so the
per-token negative log-likelihood is `cross_entropy(logits[:, :-block], labels[:, block:], reduction="none")`.
Leading tokens are dropped until the sequence is whole steps of `tokens_per_step` tokens (as the reference
does); the curves then hold, per step `s`, the mean over that step's tokens. `summary` holds token-weighted means
over every scored token (nothing dropped), so `summary["bits_per_token"]` is the model's loss / ln 2.
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .config_keys import dataclass_values

CURVES = ("bits_per_token", "perplexity", "unigram_perplexity", "bits_per_second", "decoded_mse")


@dataclass
class TokenSummaryConfig:
    """enabled: whether the runner computes the summary (the reference code's default is off; here on).
    tokens_per_step: tokens per time step (default: the model's `sequence_step`).
    tokens_per_second: for bits/s (default: tokens_per_step * sfreq / temporal_reduction when the model has one,
        times the channel rows of FlatGPTMix).
    max_batches: batches read (None: all). decoded_mse: decode argmax predictions and targets (models with
    `decode`). plot: write token_summary.png."""

    enabled: bool = True
    tokens_per_step: int | None = None
    tokens_per_second: float | None = None
    max_batches: int | None = None
    decoded_mse: bool = True
    plot: bool = True

    ALIASES = {"tokens_per_sec": "tokens_per_second"}

    @classmethod
    def from_dict(cls, values: dict | None) -> TokenSummaryConfig:
        values = dataclass_values(cls, "token summary", values, cls.ALIASES)
        config = cls(**values)
        config.validate()
        return config

    def validate(self) -> None:
        for name in ("tokens_per_step", "max_batches"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1):
                raise ValueError(f"token summary: {name} must be a positive int or None, got {value!r}")
        value = self.tokens_per_second
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0):
            raise ValueError(f"token summary: tokens_per_second must be positive or None, got {value!r}")


def per_token_nll(logits: torch.Tensor, labels: torch.Tensor, block: int) -> torch.Tensor:
    """Nats `(B, L - block)`: logits at p against the label at p + block."""
    if logits.ndim != 3 or labels.shape != logits.shape[:2]:
        raise ValueError(f"logits (B, L, V) {tuple(logits.shape)} and labels (B, L) {tuple(labels.shape)} disagree")
    if labels.shape[1] <= block:
        raise ValueError(f"sequences of {labels.shape[1]} tokens hold nothing to score past the first {block}")
    shifted, targets = logits[:, :-block].float(), labels[:, block:]
    nll = F.cross_entropy(shifted.reshape(-1, shifted.shape[-1]), targets.reshape(-1), reduction="none")
    return nll.reshape(targets.shape)


def per_step(values: torch.Tensor, tokens_per_step: int) -> torch.Tensor:
    """`(B, L)` -> `(B, L // step)` means over whole steps, dropping leading tokens."""
    steps = values.shape[1] // tokens_per_step
    if steps == 0:
        raise ValueError(f"{values.shape[1]} scored tokens do not fill one step of {tokens_per_step} tokens")
    return values[:, values.shape[1] - steps * tokens_per_step :].reshape(values.shape[0], steps, -1).mean(-1)


def _batch_inputs(batch) -> dict:
    if isinstance(batch, torch.Tensor):
        return {"input_values": batch} if batch.is_floating_point() else {"input_ids": batch}
    if isinstance(batch, dict):
        unknown = sorted(set(batch) - {"input_ids", "input_values", "labels", "pos", "sensor_type"})
        if unknown:
            raise ValueError(
                f"token summary batches hold input_ids or input_values (+ labels, pos, sensor_type); got {unknown}"
            )
        return dict(batch)
    raise ValueError(f"a token summary batch must be a tensor or a dict, got {type(batch).__name__}")


def _stats(rows: list[np.ndarray]) -> dict:
    """Per-position mean/median/quartiles/std over items (NaN-padded to the longest) and the item counts."""
    width = max(len(r) for r in rows)
    table = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        table[i, : len(r)] = r
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return {
                "mean": np.nanmean(table, 0).tolist(),
                "median": np.nanmedian(table, 0).tolist(),
                "q25": np.nanpercentile(table, 25, 0).tolist(),
                "q75": np.nanpercentile(table, 75, 0).tolist(),
                "std": np.nanstd(table, 0).tolist(),
                "lengths": np.isfinite(table).sum(0).astype(int).tolist(),
            }


def _decoded_squared_error(model, logits, labels, block, tokens_per_step, reduction, inputs) -> torch.Tensor:
    """`(B, steps)` MSE between the decoded argmax predictions and the decoded targets, per token step."""
    predicted, targets = logits[:, :-block].argmax(-1), labels[:, block:]
    start = (-block) % tokens_per_step  # absolute index `block + start` is a step boundary
    steps = (targets.shape[1] - start) // tokens_per_step
    if steps < 1:
        raise ValueError("too few tokens to decode one whole step")
    span = slice(start, start + steps * tokens_per_step)
    geometry = {k: inputs[k] for k in ("pos", "sensor_type") if inputs.get(k) is not None}
    decoded_pred = model.decode(predicted[:, span], **geometry).float()
    decoded_true = model.decode(targets[:, span], **geometry).float()
    error = (decoded_pred - decoded_true) ** 2  # (B, C, steps * reduction)
    batch, channels, length = error.shape
    return error.reshape(batch, channels, length // reduction, reduction).mean(dim=(1, 3))


def token_summary(
    model, batches, config: TokenSummaryConfig | dict | None = None, sfreq: float | None = None, out_dir=None
) -> dict:
    """The token summary of `model` (a FlatGPT LM) over `batches` (dicts with `input_ids` codes (B, L), or
    `input_values` signals (B, C, T) for the RVQ LMs, which encode them; optional `labels`, `pos`,
    `sensor_type`). Writes `token_summary.json` / `.png` into `out_dir` when given; returns the JSON's dict."""
    if config is None or isinstance(config, dict):
        config = TokenSummaryConfig.from_dict(config)
    config.validate()
    block = getattr(model, "prediction_block", None)
    vocab_size = getattr(getattr(model, "config", None), "vocab_size", None)
    if not isinstance(block, int) or not isinstance(vocab_size, int):
        raise ValueError(
            f"token_summary needs a token language model (FlatGPT: `prediction_block`, `config.vocab_size`); "
            f"{type(model).__name__} has neither"
        )
    tokens_per_step = config.tokens_per_step or getattr(model, "sequence_step", None) or 1
    reduction = getattr(model.config, "temporal_reduction", None)
    tokens_per_second = config.tokens_per_second
    if tokens_per_second is None and sfreq and reduction:
        # FlatGPTMix reads one row per channel: the signal's rate is that of all its rows.
        rows = getattr(model, "rows_per_example", 1)
        tokens_per_second = tokens_per_step * rows * float(sfreq) / reduction
    can_decode = config.decoded_mse and callable(getattr(model, "decode", None)) and bool(reduction)
    device = next(model.parameters()).device if isinstance(model, torch.nn.Module) else torch.device("cpu")
    curves: dict[str, list[np.ndarray]] = {name: [] for name in CURVES}
    total_nll = total_unigram = 0.0
    total_tokens = 0
    squared_errors: list[float] = []
    was_training = getattr(model, "training", False)
    if isinstance(model, torch.nn.Module):
        model.eval()
    try:
        for index, batch in enumerate(batches):
            if config.max_batches is not None and index >= config.max_batches:
                break
            inputs = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in _batch_inputs(batch).items()}
            inputs = _amplitude_tokens(model, inputs)
            with torch.no_grad():
                output = model(**inputs) if "labels" in inputs else model(**inputs, labels=_labels(inputs))
            labels = inputs.get("labels")
            if labels is None:
                labels = inputs.get("input_ids") if inputs.get("input_ids") is not None else output.input_ids
            logits = output.logits
            if not torch.isfinite(logits).all():
                raise ValueError(f"batch {index}: the model's logits hold NaN/inf")
            nll = per_token_nll(logits, labels, block)
            counts = torch.bincount(labels[:, block:].reshape(-1), minlength=vocab_size).double()
            unigram = -torch.log(
                (counts / counts.sum()).clamp_min(1e-12)[labels[:, block:]]
            )  # nats per token, the batch's own token frequencies
            total_nll += float(nll.double().sum())
            total_unigram += float(unigram.sum())
            total_tokens += nll.numel()
            bits = per_step(nll.double(), tokens_per_step) / math.log(2)
            unigram_bits = per_step(unigram, tokens_per_step) / math.log(2)
            for b in range(bits.shape[0]):
                curves["bits_per_token"].append(bits[b].cpu().numpy())
                curves["perplexity"].append(np.exp2(bits[b].cpu().numpy()))
                curves["unigram_perplexity"].append(np.exp2(unigram_bits[b].cpu().numpy()))
                if tokens_per_second is not None:
                    curves["bits_per_second"].append(bits[b].cpu().numpy() * tokens_per_second)
            if can_decode:
                error = _decoded_squared_error(model, logits, labels, block, tokens_per_step, reduction, inputs)
                curves["decoded_mse"].extend(error.double().cpu().numpy())
                squared_errors.extend(error.double().cpu().numpy().ravel().tolist())
    finally:
        if isinstance(model, torch.nn.Module):
            model.train(was_training)
    if total_tokens == 0:
        raise ValueError("token_summary read no batches: pass at least one batch of tokens")
    mean_bits = total_nll / total_tokens / math.log(2)
    summary = {
        "tokens": total_tokens,
        "bits_per_token": mean_bits,
        "perplexity": 2.0**mean_bits,
        "unigram_perplexity": 2.0 ** (total_unigram / total_tokens / math.log(2)),
        "bits_per_second": mean_bits * tokens_per_second if tokens_per_second is not None else None,
        "decoded_mse": float(np.mean(squared_errors)) if squared_errors else None,
    }
    result = {
        "context_unit": "seconds" if sfreq and reduction else "steps",
        "tokens_per_second": tokens_per_second,
        "tokens_per_step": tokens_per_step,
        "temporal_reduction": reduction,
        "sfreq": sfreq,
        "vocab_size": vocab_size,
        "metrics": {name: _stats(rows) for name, rows in curves.items() if rows},
        "summary": summary,
    }
    if not can_decode:
        result["decoded_mse_skipped"] = (
            "disabled in the config" if not config.decoded_mse else f"{type(model).__name__} has no decode(codes)"
        )
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "token_summary.json").write_text(json.dumps(_json_safe(result), indent=1, allow_nan=False))
        if config.plot:
            plot_token_summary(result, out_dir / "token_summary.png")
    return result


def _amplitude_tokens(model, inputs: dict) -> dict:
    """A signal for an amplitude LM (FlatGPT on mu-law bins, no `encode`) -> its `input_ids`, through the model's
    own `context_bins` and `tokenize` (what its forecast reads)."""
    if inputs.get("input_values") is None or callable(getattr(model, "encode", None)):
        return inputs
    if not (callable(getattr(model, "context_bins", None)) and callable(getattr(model, "tokenize", None))):
        raise ValueError(f"{type(model).__name__} reads token ids: pass batches of input_ids, not input_values")
    bins = model.context_bins(inputs.pop("input_values"))  # (B, C, T)
    return {**inputs, "input_ids": model.tokenize(bins.transpose(1, 2))}


def _labels(inputs: dict):
    # The RVQ LMs score a signal against its own codes when no labels are given; codes are their own labels.
    return inputs["input_ids"] if inputs.get("input_ids") is not None else None


def _json_safe(value):
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def step_positions(steps: int, temporal_reduction: int | None, sfreq: float | None) -> np.ndarray:
    """Where step i ends in the context: `(i + 1) * temporal_reduction / sfreq` seconds, else `i + 1` steps."""
    x = np.arange(1, steps + 1, dtype=float)
    return x * temporal_reduction / sfreq if temporal_reduction and sfreq else x


def window_mean(values, window: int) -> np.ndarray:
    """Means over non-overlapping windows of `window` points (a trailing partial window is dropped)."""
    values = np.asarray(values, dtype=float)
    n = len(values) // window * window
    return values[:n].reshape(-1, window).mean(axis=1)


def plot_token_summary(result: dict, path: str | Path) -> Path:
    """One row per curve (median with the IQR band) over the position in the context; smoothed by
    non-overlapping means over one second of steps when the rate is known."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = result["metrics"]
    rows = [name for name in ("bits_per_token", "perplexity", "bits_per_second", "decoded_mse") if name in metrics]
    fig, axes = plt.subplots(len(rows), 1, figsize=(8, 2.4 * len(rows)), squeeze=False)
    seconds = result["context_unit"] == "seconds"
    steps_per_second = None
    if seconds and result["tokens_per_second"]:
        steps_per_second = max(1, round(result["tokens_per_second"] / result["tokens_per_step"]))
    for ax, name in zip(axes[:, 0], rows):
        series = [(name, metrics[name])]
        if name == "perplexity" and "unigram_perplexity" in metrics:
            series.append(("unigram_perplexity", metrics["unigram_perplexity"]))
        for label, stats in series:
            median, q25, q75 = (np.asarray(stats[k], dtype=float) for k in ("median", "q25", "q75"))
            x = step_positions(len(median), result["temporal_reduction"] if seconds else None, result["sfreq"])
            if steps_per_second and len(median) >= 2 * steps_per_second:
                median, q25, q75, x = (window_mean(a, steps_per_second) for a in (median, q25, q75, x))
            ax.plot(x, median, lw=1.0, label=label)
            ax.fill_between(x, q25, q75, alpha=0.25)
        ax.set_ylabel(name.replace("_", " "), fontsize=8)
        if len(series) > 1:
            ax.legend(fontsize=7)
    axes[-1, 0].set_xlabel("position in context (s)" if seconds else "position in context (steps)")
    fig.suptitle("token summary", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
