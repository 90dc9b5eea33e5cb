"""Throughput and MFU accounting: model FLOPs per second over the peak FLOP/s of the device the run trains on.

Rates are reported in units nobody has to guess: training windows per second, seconds of recorded signal per
second, and (for token models) tokens per second. MFU needs the device's peak: on a CPU it is measured (a
`torch.mm` probe in the training dtype), on a GPU it is the vendor's dense peak for the recognised model and
dtype; for any other device no MFU is reported, rather than one divided by a guess.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from functools import cache

import torch

# Dense (no sparsity) tensor-core peaks in FLOP/s: (16-bit, TF32, FP32 without tensor cores). Matched against
# `torch.cuda.get_device_name` in this order, so variants come before the family name they contain.
GPU_PEAK_FLOPS = (
    ("H100 PCIe", (756e12, 378e12, 51.2e12)),
    ("H100 NVL", (835e12, 418e12, 60e12)),
    ("H100", (989e12, 494e12, 67e12)),  # SXM / HBM3
    ("H200", (989e12, 494e12, 67e12)),
    ("A100", (312e12, 156e12, 19.5e12)),
    ("L40S", (362e12, 183e12, 91.6e12)),
    ("L4", (121e12, 60e12, 30.3e12)),
)
MIXED_PRECISION_DTYPES = {"no": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class DevicePeak:
    """Peak FLOP/s of one device for the training dtype (`flops` None: unknown, so no MFU) and where it comes
    from, for the run's log."""

    flops: float | None
    source: str


@cache
def matmul_peak_flops(size: int = 1024, repeats: int = 3, dtype: torch.dtype = torch.float32) -> float:
    """FLOP/s of one `torch.mm` of `size`x`size` matrices on CPU (best of `repeats`), the MFU denominator."""
    # A private generator: measuring (once per process) must not move the global RNG that training draws from.
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.randn(size, size, dtype=dtype, generator=generator) for _ in range(2))
    torch.mm(a, b)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best


def gpu_peak_flops(name: str, dtype: torch.dtype, tf32: bool) -> float | None:
    """The dense peak of a recognised GPU for `dtype` (`tf32`: fp32 matmuls run on TF32 tensor cores), else None."""
    for family, (half, tensor_float, single) in GPU_PEAK_FLOPS:
        if re.search(rf"\b{re.escape(family)}\b", name):  # whole words: an L40 is no L4
            if dtype in (torch.bfloat16, torch.float16):
                return half
            return tensor_float if tf32 else single
    return None


def device_peak(device: torch.device, mixed_precision: str = "no") -> DevicePeak:
    """The MFU denominator for training on `device` with accelerate's `mixed_precision`."""
    dtype = MIXED_PRECISION_DTYPES[mixed_precision]
    label = str(dtype).removeprefix("torch.")
    device = torch.device(device)
    if device.type == "cpu":
        flops = matmul_peak_flops(dtype=dtype)
        return DevicePeak(flops, f"the {label} torch.mm peak measured on this CPU, {flops / 1e9:.1f} GFLOP/s")
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        tf32 = dtype == torch.float32 and torch.get_float32_matmul_precision() != "highest"
        flops = gpu_peak_flops(name, dtype, tf32)
        if flops is None:
            return DevicePeak(None, f"no known peak for {name}, so no MFU is reported")
        return DevicePeak(flops, f"the dense {'tf32' if tf32 else label} peak of {name}, {flops / 1e12:.1f} TFLOP/s")
    return DevicePeak(None, f"no known peak for a {device.type} device, so no MFU is reported")


def training_flops_per_unit(n_params: int) -> float:
    """The standard estimate for a forward + backward pass: 6 FLOPs per parameter per token/signal sample."""
    return 6.0 * n_params


def trainable_parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def throughput_unit(model_inputs) -> str:
    """What a batch's throughput counts: token ids (`input_ids`) or time samples of a signal (`input_values`)."""
    return "tokens" if "input_ids" in model_inputs else "signal_samples"


def batch_units(batch: dict) -> int:
    """Tokens of a token batch (every id), or signal samples (windows x time samples, all channels together)."""
    if "input_ids" in batch:
        return int(batch["input_ids"].numel())
    signal = batch["input_values"]
    return int(signal.shape[0] * signal.shape[-1])


class ThroughputMeter:
    """Running windows/s, signal-seconds/s, tokens/s (token tasks) and MFU over the last steps.

    `unit` is what the MFU estimate counts per parameter: "tokens" or "signal_samples" (one time sample of
    one window, all channels). `peak_flops`: the peak of every device the counted units ran on together
    (None: unknown, and no MFU is reported)."""

    def __init__(
        self, n_params: int, unit: str, window_seconds: float, window: int = 20, peak_flops: float | None = None
    ):
        self.n_params, self.unit, self.window_seconds, self.window = n_params, unit, window_seconds, window
        self.peak = peak_flops
        self._units: list[int] = []
        self._windows: list[int] = []
        self._seconds: list[float] = []

    def add(self, units: int, windows: int, seconds: float) -> None:
        self._units = (self._units + [units])[-self.window :]
        self._windows = (self._windows + [windows])[-self.window :]
        self._seconds = (self._seconds + [seconds])[-self.window :]

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

    def mfu(self) -> float | None:
        """Model FLOPs utilisation, a fraction of `peak_flops`; None without a known peak."""
        if self.peak is None:
            return None
        return self.rate() * training_flops_per_unit(self.n_params) / self.peak

    def metrics(self) -> dict[str, float]:
        metrics = {
            "throughput/windows_per_s": self.windows_per_second(),
            "throughput/signal_seconds_per_s": self.signal_seconds_per_second(),
        }
        if self.unit == "tokens":
            metrics["throughput/tokens_per_s"] = self.rate()
        if self.peak is not None:
            metrics["throughput/mfu"] = self.mfu()
        return metrics

    def postfix(self) -> dict[str, str]:
        postfix = {
            "windows/s": f"{self.windows_per_second():.1f}",
            "signal-s/s": f"{self.signal_seconds_per_second():.1f}",
        }
        if self.unit == "tokens":
            postfix["tokens/s"] = f"{self.rate():.0f}"
        return postfix

    def summary(self) -> str:
        """One line for the log: the rates and, with a known peak, the MFU."""
        line = ", ".join(f"{value} {key}" for key, value in self.postfix().items())
        mfu = self.mfu()
        return line + (f", MFU {100 * mfu:.2f}%" if mfu is not None else "")
