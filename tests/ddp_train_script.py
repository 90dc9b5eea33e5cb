"""Run by `accelerate launch` in tests/test_training.py: train a few steps, report per-rank parameters."""

import json
import os
import sys

import torch

from brain_gen_hf.training.arguments import load_run_config, parse_run_config
from brain_gen_hf.training.trainer import train


def main():
    config = load_run_config(sys.argv[sys.argv.index("--config") + 1])
    captured = {}

    import brain_gen_hf.training.trainer as trainer_module

    original = trainer_module._save_final

    def capture(accelerator, model, *args, **kwargs):
        unwrapped = accelerator.unwrap_model(model)
        captured["checksum"] = float(sum(p.double().sum() for p in unwrapped.parameters()))
        captured["world_size"] = accelerator.num_processes
        captured["rank"] = accelerator.process_index
        return original(accelerator, model, *args, **kwargs)

    trainer_module._save_final = capture
    result = train(*parse_run_config(config))
    report = {"world_size": captured["world_size"], "param_checksum": captured["checksum"], "losses": result.losses}
    path = os.path.join(os.environ["DDP_REPORT_DIR"], f"rank{captured['rank']}.json")
    with open(path, "w") as handle:
        json.dump(report, handle)
    torch.distributed.barrier() if torch.distributed.is_initialized() else None


if __name__ == "__main__":
    main()
