"""Throughput and MFU accounting (model FLOPs per unit / measured matmul peak of this machine).

Rates are reported in units nobody has to guess: training windows per second, seconds of recorded
signal per second, and (for token models) tokens per second.
"""

from __future__ import annotations

import time
from functools import cache

import torch


@cache
def matmul_peak_flops(size: int = 1024, repeats: int = 3, dtype: torch.dtype = torch.float32) -> float:
    """FLOP/s of one `torch.mm` of `size`x`size` matrices on CPU (best of `repeats`), the MFU denominator."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    torch.mm(a, b)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best


def training_flops_per_unit(n_params: int) -> float:
    """The standard estimate for a forward + backward pass: 6 FLOPs per parameter per token/signal sample."""
    return 6.0 * n_params


class ThroughputMeter:
    """Running windows/s, signal-seconds/s, tokens/s (token tasks) and MFU over the last steps.

    `unit` is what the MFU estimate counts per parameter: "tokens" or "signal_samples" (one time sample of
    one window, all channels)."""

    def __init__(self, n_params: int, unit: str, window_seconds: float, window: int = 20,
                 peak_flops: float | None = None):
        self.n_params, self.unit, self.window_seconds, self.window = n_params, unit, window_seconds, window
        self._peak = peak_flops
        self._units: list[int] = []
        self._windows: list[int] = []
        self._seconds: list[float] = []

    @property
    def peak(self) -> float:
        if self._peak is None:
            self._peak = matmul_peak_flops()
        return self._peak

    def add(self, units: int, windows: int, seconds: float) -> None:
        self._units = (self._units + [units])[-self.window:]
        self._windows = (self._windows + [windows])[-self.window:]
        self._seconds = (self._seconds + [seconds])[-self.window:]

    def _per_second(self, counts: list[int]) -> float:
        total = sum(self._seconds)
        return sum(counts) / total if total > 0 else 0.0

    def rate(self) -> float:
        """`unit`s per second."""
        return self._per_second(self._units)

    def windows_per_second(self) -> float:
        return self._per_second(self._windows)

    def signal_seconds_per_second(self) -> float:
        return self.windows_per_second() * self.window_seconds

    def mfu(self) -> float:
        return self.rate() * training_flops_per_unit(self.n_params) / self.peak

    def metrics(self) -> dict[str, float]:
        metrics = {"throughput/windows_per_s": self.windows_per_second(),
                   "throughput/signal_seconds_per_s": self.signal_seconds_per_second()}
        if self.unit == "tokens":
            metrics["throughput/tokens_per_s"] = self.rate()
        return {**metrics, "throughput/mfu": self.mfu()}

    def postfix(self) -> dict[str, str]:
        postfix = {"windows/s": f"{self.windows_per_second():.1f}",
                   "signal-s/s": f"{self.signal_seconds_per_second():.1f}"}
        if self.unit == "tokens":
            postfix["tokens/s"] = f"{self.rate():.0f}"
        return postfix
