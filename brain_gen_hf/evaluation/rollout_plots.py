"""Figures of a `RolloutResult`, with the reference's file names (spec 5.4 step 5-6 and the 5.10 catalogue):

* `gen_vs_target_run{i}_timeseries.png`: the first `max_runs` runs, `max_channels` random channels (the same for
  both figures of a run), generated left / recording right, shared y-limits, the context end marked;
* `gen_vs_target_run{i}_stft.png`: their spectrograms (`scipy.signal.spectrogram`, `nperseg = min(128, T)`,
  75 % overlap, PSD in dB, one colour scale per run);
* `gen_vs_target_psd.png`: Welch PSD of the continuations (`nperseg = sfreq`, density), per run (thin) and over
  runs (thick), generated vs recording;
* `gen_vs_target_cov.png`: the mean channel covariance (`np.cov`) of the continuations, shared colour scale;
* `gen_vs_target_stacked_timeseries.png`: every run, all channels overlaid, up to `max_plot_seconds`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .rollouts import RolloutResult


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _visible(result: RolloutResult, max_plot_seconds: float | None) -> int:
    if max_plot_seconds is None:
        return result.total_steps
    return max(2, min(result.total_steps, round(max_plot_seconds * result.sfreq)))


def pick_channels(result: RolloutResult, rng: np.random.Generator, max_channels: int = 10) -> np.ndarray:
    """`min(max_channels, C)` distinct channels drawn with `rng`, in ascending order."""
    channels = result.generated.shape[1]
    return np.sort(rng.choice(channels, size=min(max_channels, channels), replace=False))


def _channel_label(result: RolloutResult, c: int) -> str:
    return result.channel_names[c] if result.channel_names else f"ch {c}"


def plot_run_timeseries(result: RolloutResult, run: int, channels, path, max_plot_seconds=None) -> Path:
    plt = _pyplot()
    steps = _visible(result, max_plot_seconds)
    t = np.arange(steps) / result.sfreq
    generated, target = result.generated[run, channels, :steps], result.target[run, channels, :steps]
    low, high = float(min(generated.min(), target.min())), float(max(generated.max(), target.max()))
    pad = 0.05 * (high - low or 1.0)
    fig, axes = plt.subplots(len(channels), 2, figsize=(12, 1.2 * len(channels) + 1), sharex=True, squeeze=False)
    for row, c in enumerate(channels):
        for col, (series, color) in enumerate(((generated[row], "tab:red"), (target[row], "tab:blue"))):
            ax = axes[row, col]
            ax.plot(t, series, color=color, lw=0.7)
            ax.axvline(result.context_steps / result.sfreq, color="0.4", ls="--", lw=0.7)
            ax.set_ylim(low - pad, high + pad)
            ax.tick_params(labelsize=6)
        axes[row, 0].set_ylabel(_channel_label(result, c), fontsize=7)
    axes[0, 0].set_title("generated", fontsize=9)
    axes[0, 1].set_title("target", fontsize=9)
    for ax in axes[-1]:
        ax.set_xlabel("time (s)", fontsize=8)
    fig.suptitle(f"run {run}: {_run_title(result, run)}", fontsize=9)
    _tidy(fig)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


def plot_run_stft(result: RolloutResult, run: int, channels, path, max_plot_seconds=None) -> Path:
    from scipy.signal import spectrogram

    plt = _pyplot()
    steps = _visible(result, max_plot_seconds)
    nperseg = min(128, steps)
    spectra = []
    for array in (result.generated[run, channels, :steps], result.target[run, channels, :steps]):
        freqs, times, power = spectrogram(
            array, fs=result.sfreq, nperseg=nperseg, noverlap=int(0.75 * nperseg), mode="psd", axis=-1
        )
        spectra.append(10 * np.log10(power + 1e-20))
    finite = np.concatenate([s.ravel() for s in spectra])
    half_bin = (times[1] - times[0]) / 2 if len(times) > 1 else nperseg / (2 * result.sfreq)
    extent = (times[0] - half_bin, times[-1] + half_bin, freqs[0], freqs[-1])
    vmin, vmax = np.percentile(finite, [1, 99])
    fig, axes = plt.subplots(len(channels), 2, figsize=(12, 1.3 * len(channels) + 1), sharex=True, squeeze=False)
    for row, c in enumerate(channels):
        for col in range(2):
            # imshow over the regular time/frequency grid: same picture as pcolormesh, much faster to draw.
            mesh = axes[row, col].imshow(
                spectra[col][row], origin="lower", aspect="auto", vmin=vmin, vmax=vmax, extent=extent
            )
            axes[row, col].axvline(result.context_steps / result.sfreq, color="w", ls="--", lw=0.7)
            axes[row, col].tick_params(labelsize=6)
        axes[row, 0].set_ylabel(f"{_channel_label(result, c)}\nHz", fontsize=7)
    axes[0, 0].set_title("generated", fontsize=9)
    axes[0, 1].set_title("target", fontsize=9)
    fig.colorbar(mesh, ax=axes, label="PSD (dB)", shrink=0.6)
    fig.suptitle(f"run {run}: {_run_title(result, run)}", fontsize=9)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


def continuation_psd(result: RolloutResult) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(freqs, generated (R, F), target (R, F)): channel-mean Welch PSD of each run's continuation."""
    from scipy.signal import welch

    horizon = result.horizon
    nperseg = min(horizon, max(2, round(result.sfreq)))
    psds = []
    for array in (result.generated_continuation, result.target_continuation):
        freqs, power = welch(array, fs=result.sfreq, nperseg=nperseg, scaling="density", axis=-1)
        psds.append(power.mean(axis=1))
    return freqs, psds[0], psds[1]


def plot_psd_summary(result: RolloutResult, path) -> Path:
    plt = _pyplot()
    freqs, generated, target = continuation_psd(result)
    keep = freqs > 0
    fig, ax = plt.subplots(figsize=(6, 4))
    for psd, color, label in ((generated, "tab:red", "generated"), (target, "tab:blue", "target")):
        for run in psd:
            ax.semilogy(freqs[keep], run[keep], color=color, lw=0.4, alpha=0.3)
        ax.semilogy(freqs[keep], psd.mean(axis=0)[keep], color=color, lw=1.6, label=label)
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("PSD (density)")
    ax.set_title(f"continuation PSD over {result.num_runs} runs", fontsize=9)
    ax.legend(fontsize=8)
    _tidy(fig)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def mean_covariance(signals: np.ndarray) -> np.ndarray:
    """Mean over runs of `np.cov` of each `(C, T)` run (rows are channels)."""
    return np.mean([np.atleast_2d(np.cov(run)) for run in signals], axis=0)


def plot_cov_summary(result: RolloutResult, path) -> Path:
    plt = _pyplot()
    matrices = [mean_covariance(result.generated_continuation), mean_covariance(result.target_continuation)]
    limit = float(max(np.abs(m).max() for m in matrices)) or 1.0
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for ax, matrix, title in zip(axes, matrices, ("generated", "target")):
        image = ax.imshow(matrix, cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("channel")
    axes[0].set_ylabel("channel")
    fig.colorbar(image, ax=axes, shrink=0.8, label="covariance")
    fig.suptitle(f"mean continuation covariance over {result.num_runs} runs", fontsize=9)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def plot_stacked_timeseries(result: RolloutResult, path, max_plot_seconds: float | None = None, max_runs=16) -> Path:
    plt = _pyplot()
    steps = _visible(result, max_plot_seconds)
    runs = min(result.num_runs, max_runs)
    t = np.arange(steps) / result.sfreq
    fig, axes = plt.subplots(runs, 2, figsize=(12, 1.1 * runs + 1), sharex=True, squeeze=False)
    for run in range(runs):
        for col, array in enumerate((result.generated, result.target)):
            ax = axes[run, col]
            ax.plot(t, array[run, :, :steps].T, lw=0.4, alpha=0.6)
            ax.axvline(result.context_steps / result.sfreq, color="red", ls="--", lw=0.8)
            ax.tick_params(labelsize=6)
        axes[run, 0].set_ylabel(f"run {run}", fontsize=7)
    axes[0, 0].set_title("generated", fontsize=9)
    axes[0, 1].set_title("target", fontsize=9)
    for ax in axes[-1]:
        ax.set_xlabel("time (s)", fontsize=8)
    shown = f"first {runs} of {result.num_runs} runs" if runs < result.num_runs else f"{runs} runs"
    fig.suptitle(f"{shown}, all channels; red: end of context", fontsize=9)
    _tidy(fig)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


def _tidy(fig) -> None:
    # Fixed margins: tight_layout re-measures every label and costs seconds on figures with dozens of axes.
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.08, top=0.9, wspace=0.15, hspace=0.25)


def _run_title(result: RolloutResult, run: int) -> str:
    meta = result.metadata[run]
    parts = [meta.get(k) for k in ("dataset_key", "subject", "session", "task_type")]
    name = "/".join(str(p) for p in parts if p is not None)
    return f"{name} (rollout {meta.get('rollout_index', 0)})"


def plot_rollouts(
    result: RolloutResult,
    out_dir,
    *,
    seed: int | None = 0,
    max_runs: int = 10,
    max_channels: int = 10,
    max_plot_seconds: float | None = None,
) -> list[Path]:
    """Write every figure of the module docstring into `out_dir`; returns their paths. Channels are drawn with
    `np.random.default_rng(seed)`, run after run."""
    if not isinstance(result, RolloutResult):
        raise ValueError(f"plot_rollouts needs a RolloutResult, got {type(result).__name__}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    written = []
    for run in range(min(max_runs, result.num_runs)):
        channels = pick_channels(result, rng, max_channels)
        written.append(
            plot_run_timeseries(
                result, run, channels, out_dir / f"gen_vs_target_run{run}_timeseries.png", max_plot_seconds
            )
        )
        written.append(
            plot_run_stft(result, run, channels, out_dir / f"gen_vs_target_run{run}_stft.png", max_plot_seconds)
        )
    written.append(plot_psd_summary(result, out_dir / "gen_vs_target_psd.png"))
    written.append(plot_cov_summary(result, out_dir / "gen_vs_target_cov.png"))
    written.append(plot_stacked_timeseries(result, out_dir / "gen_vs_target_stacked_timeseries.png", max_plot_seconds))
    return written
