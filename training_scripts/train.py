"""Train any brain_gen_hf family with accelerate.

    accelerate launch training_scripts/train.py --config training_scripts/configs/wavenet_small.yaml \
        [--key=value ...]

Single process, DDP (`--multi_gpu`, on CPU with `ACCELERATE_USE_CPU=1`) or FSDP, as accelerate is
configured. Every key of the YAML is a field of `ModelArguments`, `DataArguments` or `RunArguments`
(brain_gen_hf/training/arguments.py); unknown keys stop the run before any work starts.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from brain_gen_hf.training.arguments import load_run_config, parse_run_config
    from brain_gen_hf.training.trainer import train

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="YAML run config")
    known, overrides = parser.parse_known_args(argv)
    model_args, data_args, run_args = parse_run_config(load_run_config(known.config, overrides))
    result = train(model_args, data_args, run_args)
    print(f"finished at step {result.step}; final model: {result.final_model_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
