"""Forecast figures: context + forecast vs truth per channel, and the power spectra of both."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def welch_psd(signal: np.ndarray, sfreq: float, segment: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Mean Welch PSD over channels of `(C, T)` (Hann windows, 50% overlap), as (freqs, power)."""
    from scipy.signal import welch

    freqs, power = welch(signal, fs=sfreq, nperseg=min(segment, signal.shape[-1]), axis=-1)
    return freqs, power.mean(axis=0)


def plot_forecast(
    context: np.ndarray,
    forecast: np.ndarray,
    truth: np.ndarray,
    sfreq: float,
    path: str | Path,
    channel_names: list[str] | None = None,
    n_channels: int = 4,
    title: str = "",
) -> Path:
    """`(C, Tc)` context, `(C, Th)` forecast and truth -> a stacked per-channel figure saved at `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = min(n_channels, context.shape[0])
    t_context = np.arange(context.shape[-1]) / sfreq
    t_future = (context.shape[-1] + np.arange(forecast.shape[-1])) / sfreq
    fig, axes = plt.subplots(n, 1, figsize=(10, 1.8 * n), sharex=True, squeeze=False)
    for i, ax in enumerate(axes[:, 0]):
        ax.plot(t_context, context[i], color="0.3", lw=0.8, label="context")
        ax.plot(t_future, truth[i], color="tab:blue", lw=0.8, label="truth")
        ax.plot(t_future, forecast[i], color="tab:red", lw=0.8, label="forecast")
        ax.axvline(t_context[-1], color="0.6", ls="--", lw=0.6)
        ax.set_ylabel(channel_names[i] if channel_names else f"ch {i}", fontsize=8)
    axes[0, 0].legend(loc="upper left", fontsize=7, ncol=3)
    axes[-1, 0].set_xlabel("time (s)")
    fig.suptitle(title or "forecast vs truth", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_psd(forecast: np.ndarray, truth: np.ndarray, sfreq: float, path: str | Path, title: str = "") -> Path:
    """Channel-averaged Welch PSD of forecast and truth on a log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for signal, label, color in ((truth, "truth", "tab:blue"), (forecast, "forecast", "tab:red")):
        freqs, power = welch_psd(signal, sfreq)
        ax.semilogy(freqs, np.maximum(power, 1e-20), label=label, color=color)
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("power")
    ax.legend()
    ax.set_title(title or "power spectral density", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
