"""Throughput and MFU accounting (model FLOPs per unit / measured matmul peak of this machine)."""

from __future__ import annotations

import time
from functools import lru_cache

import torch


@lru_cache(maxsize=None)
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
    """The standard estimate for a forward + backward pass: 6 FLOPs per parameter per token/sample."""
    return 6.0 * n_params


class ThroughputMeter:
    """Running units/s (tokens or samples) and MFU over the last steps."""

    def __init__(self, n_params: int, unit: str, window: int = 20, peak_flops: float | None = None):
        self.n_params, self.unit, self.window = n_params, unit, window
        self._peak = peak_flops
        self._units: list[int] = []
        self._seconds: list[float] = []

    @property
    def peak(self) -> float:
        if self._peak is None:
            self._peak = matmul_peak_flops()
        return self._peak

    def add(self, units: int, seconds: float) -> None:
        self._units = (self._units + [units])[-self.window:]
        self._seconds = (self._seconds + [seconds])[-self.window:]

    def rate(self) -> float:
        total = sum(self._seconds)
        return sum(self._units) / total if total > 0 else 0.0

    def mfu(self) -> float:
        return self.rate() * training_flops_per_unit(self.n_params) / self.peak

    def metrics(self) -> dict[str, float]:
        return {f"throughput/{self.unit}_per_s": self.rate(), "throughput/mfu": self.mfu()}

    def postfix(self) -> dict[str, str]:
        return {f"{self.unit}/s": f"{self.rate():.0f}"}
