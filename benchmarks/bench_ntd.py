"""NTD: sampling time per signal-second against the number of diffusion steps.

    OMP_NUM_THREADS=1 python benchmarks/bench_ntd.py [--steps 10 50 200] [--length 512] [--channels 16]

One model (`diffusion_time_steps` = the largest step count) samples with evenly strided chains of each length
(`num_inference_steps`); every chain step is one denoiser pass, so time should grow linearly with the steps.
Reported: seconds of compute per second of generated signal (at `--sampling-rate`), and the ratio to the
smallest step count measured in the same process (the ratio is what transfers between machines).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "2")


def build(length: int, channels: int, total_steps: int, sampling_rate: float):
    import torch
    from transformers import AutoModel

    import brain_gen_hf  # noqa: F401
    from brain_gen_hf.models.ntd.configuration_ntd import NTDConfig

    config = NTDConfig(
        signal_length=length,
        signal_channel=channels,
        diffusion_time_steps=total_steps,
        schedule="quad",
        end_beta=0.03,
        ou_sigma2=1.5,
        ou_ell=20.0,
        net_hidden_channel=8,
        net_slconv_kernel_size=17,
        net_num_scales=4,
        net_num_blocks=4,
        net_num_off_diag=8,
        net_use_pos_emb=True,
        mask_channel=1,
        p_forecast=0.8,
        sampling_rate=sampling_rate,
    )
    torch.manual_seed(0)
    return AutoModel.from_config(config).eval()


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 50, 200])
    parser.add_argument("--length", type=int, default=512)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--sampling-rate", type=float, default=100.0)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    steps = sorted(args.steps)
    model = build(args.length, args.channels, steps[-1], args.sampling_rate)
    params = sum(p.numel() for p in model.parameters())
    signal_seconds = args.batch * args.length / args.sampling_rate
    print(
        f"NTD: {params / 1e3:.0f}k parameters, C={args.channels}, L={args.length} ({signal_seconds:.2f} signal-s per "
        f"sample call), threads {torch.get_num_threads()}"
    )
    model.sample(args.batch, num_inference_steps=steps[0], generator=torch.Generator().manual_seed(0))  # warm-up
    print(f"{'steps':>6} {'s per call':>11} {'s / signal-s':>13} {'ms / step':>10} {'ratio':>7}")
    base = None
    for n in steps:
        best = float("inf")
        for repeat in range(args.repeats):
            generator = torch.Generator().manual_seed(repeat)
            started = time.perf_counter()
            model.sample(args.batch, num_inference_steps=n, generator=generator)
            best = min(best, time.perf_counter() - started)
        per_signal_second = best / signal_seconds
        base = base or per_signal_second
        ratio = per_signal_second / base
        print(f"{n:>6} {best:>11.3f} {per_signal_second:>13.4f} {1e3 * best / n:>10.2f} {ratio:>7.2f}")


if __name__ == "__main__":
    main()
