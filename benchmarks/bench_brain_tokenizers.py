"""Throughput and peak memory of the brain tokenizers (CPU, fp32), per unit of matmul peak.

Absolute speed does not carry between machines, so the script first measures `torch.mm` GFLOP/s on
2048x2048 and reports every throughput divided by it, next to the reference's ratio (timed side by
side on a 2-core machine, 2026-12-01). Each case runs in its own process so its peak RSS is its own.

    python benchmarks/bench_brain_tokenizers.py                 # all cases
    python benchmarks/bench_brain_tokenizers.py --cases small_encode small_train --threads 2

Codebooks are filled with random codewords instead of k-means (the paper config's k-means alone takes
minutes); their content does not change the cost of encoding or decoding.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

SAMPLING_RATE = 100.0  # Hz: signal seconds = samples / 100, as in the paper setup

SMALL = dict(
    window_length=1024,
    ratios=[2, 2],
    kernel_size=5,
    last_kernel_size=5,
    n_filters=128,
    n_dim=512,
    n_neuro=4,
    lstm_layers=0,
    n_residual_layers=1,
    codebook_size=1024,
    codebook_dim=128,
    num_quantizers=2,
    num_sensors=68,
    n_head=2,
)
PAPER = dict(
    window_length=1024,
    ratios=[2, 2],
    kernel_size=5,
    last_kernel_size=5,
    n_filters=1024,
    n_dim=4096,
    n_neuro=4,
    lstm_layers=0,
    n_residual_layers=2,
    codebook_size=16384,
    codebook_dim=1024,
    num_quantizers=4,
    num_sensors=68,
    n_head=2,
)

# name: (config, work, batch, reference signal-s/s, reference ratio per peak GFLOP/s)
CASES = {
    "small_encode": (SMALL, "encode", 8, 381.0, 2.25),
    "small_decode": (SMALL, "decode", 8, None, None),
    "small_train": (SMALL, "train", 8, 88.0, 0.52),
    "paper_encode": (PAPER, "encode", 1, 3.3, 0.019),
    "paper_decode": (PAPER, "decode", 1, None, None),
}


def matmul_peak_gflops(size: int = 2048, repeats: int = 5) -> float:
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def _timed(fn, min_time: float = 2.0, max_runs: int = 20) -> float:
    fn()  # warm-up
    times = []
    while len(times) < max_runs and (sum(times) < min_time or len(times) < 2):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def run_case(name: str) -> dict:
    import torch

    from brain_gen_hf.models.braintokmix.configuration_braintokmix import BrainTokMixConfig
    from brain_gen_hf.models.braintokmix.modeling_braintokmix import BrainTokMixModel

    config_kwargs, work, batch, ref_speed, ref_ratio = CASES[name]
    peak = matmul_peak_gflops()
    torch.manual_seed(0)
    model = BrainTokMixModel(BrainTokMixConfig(**config_kwargs, codebook_init="explicit"))
    with torch.no_grad():
        for layer in model.quantizer.rvq.layers:
            layer._codebook.embed.normal_()
            layer._codebook.inited.fill_(1.0)
    x = torch.randn(batch, config_kwargs["num_sensors"], config_kwargs["window_length"])
    signal_seconds = batch * x.shape[-1] / SAMPLING_RATE

    if work == "encode":
        model.eval()

        def step():
            with torch.no_grad():
                model.encode(x)
    elif work == "decode":
        model.eval()
        with torch.no_grad():
            codes = model.encode(x).codes

        def step():
            with torch.no_grad():
                model.decode(codes)
    else:
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step():
            optimizer.zero_grad(set_to_none=True)
            model(x).loss.backward()
            optimizer.step()

    seconds = _timed(step)
    speed = signal_seconds / seconds
    return {
        "case": name,
        "threads": torch.get_num_threads(),
        "matmul_peak_gflops": round(peak, 1),
        "seconds_per_call": round(seconds, 4),
        "signal_s_per_s": round(speed, 2),
        "per_peak": round(speed / peak, 4),
        "reference_per_peak": ref_ratio,
        "speedup_vs_reference": round(speed / peak / ref_ratio, 2) if ref_ratio else None,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", 2)))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import torch

        torch.set_num_threads(args.threads)
        print(json.dumps(run_case(args.child)))
        return
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    header = (
        f"{'case':<14}{'thr':>4}{'mm GF/s':>9}{'s/call':>9}{'sig-s/s':>10}{'/peak':>9}{'ref/peak':>10}"
        f"{'x ref':>7}{'RSS MiB':>9}{'params M':>10}"
    )
    print(header)
    for name in args.cases:
        out = subprocess.run(
            [sys.executable, __file__, "--child", name, "--threads", str(args.threads)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"{r['case']:<14}{r['threads']:>4}{r['matmul_peak_gflops']:>9}{r['seconds_per_call']:>9}"
            f"{r['signal_s_per_s']:>10}{r['per_peak']:>9}{str(r['reference_per_peak']):>10}"
            f"{str(r['speedup_vs_reference']):>7}{r['peak_rss_mib']:>9}{r['params_m']:>10}",
            flush=True,
        )


if __name__ == "__main__":
    main()
