"""Evaluation cost: rollout throughput batched vs one context at a time, and a full evaluation's wall time.

Both on the quickstart's model and held-out split (run `brain-gen-hf quickstart --output quickstart_output` first):

1. the same runs (same contexts, same seeds) generated with `rollout_batch_size` 1 and N, side by side in this
   process; prints signal-seconds generated per second for each and the batched / one-at-a-time ratio;
2. `evaluate()` with the quickstart's evaluation config (`small`) against the default baselines; prints the wall
   time, split into rollout generation (model, baselines) and the analyses.

    python benchmarks/bench_evaluation.py [--model quickstart_output/lm/final_model]
        [--dataset quickstart_output/dataset] [--split validation] [--contexts 8] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="quickstart_output/lm/final_model")
    parser.add_argument("--dataset", default="quickstart_output/dataset")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--config", default="small", help="evaluation preset or YAML (default: small)")
    parser.add_argument("--contexts", type=int, default=8, help="rollouts for the throughput comparison")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--skip-full", action="store_true", help="only the throughput comparison")
    args = parser.parse_args()
    if not Path(args.model).is_dir() or not Path(args.dataset).is_dir():
        raise SystemExit(
            f"{args.model} or {args.dataset} is missing: run `brain-gen-hf quickstart --output quickstart_output` "
            "first, or pass --model / --dataset"
        )

    import torch

    from brain_gen_hf.evaluation.config import EvaluationConfig
    from brain_gen_hf.evaluation.rollouts import measure_rollout_throughput
    from brain_gen_hf.evaluation.runner import evaluate, load_model, load_split
    from brain_gen_hf.evaluation.sessions import sample_sessions

    torch.set_num_threads(max(1, torch.get_num_threads()))
    config = EvaluationConfig.coerce(args.config)
    model, _ = load_model(args.model)
    samples = sample_sessions(load_split(args.dataset, args.split), config.sampler)
    # One context repeated: every run the same length, the batch filled whatever the split holds.
    generator = config.generator.to_dict()
    generator["rollouts_per_context"] = max(1, args.contexts // len(samples))
    rates = measure_rollout_throughput(model, samples, generator, batch_sizes=(1, args.batch_size))
    one, batched = rates["batch_1"], rates[f"batch_{args.batch_size}"]
    print(f"rollouts: {one['runs']} runs of {samples[0].total_steps - samples[0].context_steps} samples each")
    print(f"{'':24s}{'batch 1':>14s}{f'batch {args.batch_size}':>14s}{'ratio':>10s}")
    print(
        f"{'signal-s per second':24s}{one['signal_seconds_per_second']:14.3f}"
        f"{batched['signal_seconds_per_second']:14.3f}"
        f"{batched['signal_seconds_per_second'] / one['signal_seconds_per_second']:10.2f}x"
    )
    print(f"{'wall (s)':24s}{one['wall_s']:14.2f}{batched['wall_s']:14.2f}{one['wall_s'] / batched['wall_s']:10.2f}x")
    if args.skip_full:
        return

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        report = evaluate(model, args.dataset, split=args.split, config=config, output_dir=tmp, progress=False)
        wall = time.perf_counter() - started
    generation = {
        name: values.get("rollout_stats", {}).get("wall_s") or 0.0
        for name, values in report.numbers["forecasters"].items()
    }
    total_generation = sum(generation.values())
    setup = report.numbers["setup"]
    print(
        f"full evaluation ({args.config}: {setup['contexts']} contexts x {setup['rollouts_per_context']} rollouts, "
        f"{setup['continuation_seconds']:.2f} s generated, baselines {', '.join(report.numbers['comparisons'])}): "
        f"{wall:.1f} s wall"
    )
    print(f"  rollout generation {total_generation:.1f} s ({total_generation / wall:.0%}): ", end="")
    print(", ".join(f"{name} {seconds:.1f} s" for name, seconds in generation.items()))
    print(f"  analyses, plots and report {wall - total_generation:.1f} s ({(wall - total_generation) / wall:.0%})")


if __name__ == "__main__":
    main()
