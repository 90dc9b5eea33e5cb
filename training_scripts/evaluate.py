"""`brain-gen-hf evaluate` under accelerate: the sampled sessions are split between the processes.

    accelerate launch [--num_processes N] training_scripts/evaluate.py MODEL DATASET --output DIR [--split test]
        [--config eval.yaml | paper | small | tiny] [--baselines zero,mean,...] [--push-to-hub REPO_ID]

Same arguments and outputs as `brain-gen-hf evaluate`; each process generates the rollouts of its share of the
sessions, the main process gathers them (in session order), runs the analyses and writes the report, so the
numbers equal a single-process run's.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from brain_gen_hf.cli import build_parser, run_reporting_errors

    args = build_parser().parse_args(["evaluate", *(sys.argv[1:] if argv is None else argv)])

    def run() -> int:
        from accelerate import Accelerator

        from brain_gen_hf.evaluation.runner import evaluate_command

        accelerator = Accelerator()
        return evaluate_command(args, accelerator=accelerator)

    return run_reporting_errors(run, interrupted="interrupted; rerun the same command to evaluate again")


if __name__ == "__main__":
    sys.exit(main())
