"""Train any brain_gen_hf family with accelerate.

    accelerate launch training_scripts/train.py --config training_scripts/configs/wavenet_small.yaml \
        [--key=value ...]
    python training_scripts/train.py --mode test --config ... [--split test]

`--mode test` scores the run's trained model (`pretrained`, `resume_from`, or `<output_dir>/final_model`) on a
split and writes `<output_dir>/test/metrics.json` (classifiers: macro-F1 and the confusion matrix, also as PNG).

Single process, DDP (`--multi_gpu`, on CPU with `ACCELERATE_USE_CPU=1`) or FSDP, as accelerate is
configured. Every key of the YAML is a field of `ModelArguments`, `DataArguments` or `RunArguments`
(brain_gen_hf/training/arguments.py); unknown keys stop the run before any work starts. A user error (a bad
config, a missing or damaged file or dataset) prints one `error: ...` line and exits with code 2.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from brain_gen_hf.cli import run_reporting_errors

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="YAML run config")
    parser.add_argument("--mode", choices=("train", "test"), default="train", help="train, or score a trained model")
    parser.add_argument("--split", default="test", help="--mode test: the split to score")
    known, overrides = parser.parse_known_args(argv)
    if known.mode == "test":
        return run_reporting_errors(
            lambda: run_test_mode(known.config, overrides, known.split), interrupted="interrupted; nothing was written"
        )
    return run_reporting_errors(
        lambda: run(known.config, overrides),
        interrupted="interrupted; complete checkpoints are kept: rerun with --resume_from=latest to continue",
    )


def run(config_file: str, overrides: list[str]) -> None:
    from brain_gen_hf.training.arguments import read_run_config
    from brain_gen_hf.training.trainer import train

    result = train(*read_run_config(config_file, overrides))
    print(f"finished at step {result.step}; final model: {result.final_model_dir}")


def run_test_mode(config_file: str, overrides: list[str], split: str) -> None:
    from brain_gen_hf.training.arguments import read_run_config
    from brain_gen_hf.training.test_mode import run_test

    report = run_test(*read_run_config(config_file, overrides), split=split)
    shown = {k: v for k, v in report.items() if k not in ("confusion_matrix", "labels")}
    print(f"test results: {shown}")


if __name__ == "__main__":
    sys.exit(main())
