"""Harness overhead: our accelerate training loop vs a bare PyTorch loop on the same model and data.

    python benchmarks/bench_training_overhead.py [--task flatgpt] [--steps 30] [--dataset DIR]

Both loops train the same freshly initialised model (same seed) on the same batches with the same
AdamW and clipping; the median optimiser-step time after warm-up is compared in one process.
Target: overhead below 5%.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

TASK_SETTINGS = {
    "wavenet": dict(model_config=dict(quant_levels=256, quant_emb=16, residual_channels=16, dilation_channels=16,
                                      skip_channels=16, head_channels=16, dilations=[1, 2, 4, 8, 16]),
                    example_seconds=1.0, batch_size=4),
    "flatgpt": dict(model_type="flatgpt_embeds_rvq", example_seconds=1.28, batch_size=4),
}


def simulated_dataset(folder: Path) -> Path:
    from brain_gen_hf.data.config import BuildConfig
    from brain_gen_hf.data.shards import build_dataset
    from brain_gen_hf.data.simulate import write_simulated_recordings

    write_simulated_recordings(folder / "raw", n_subjects=2, duration_seconds=60.0, sfreq=200.0)
    config = BuildConfig.from_dict({"preprocessing": {"picks": "mag", "detect_bad_channels": False},
                                    "cleaning": {"min_segment_seconds": 10.0}, "splits": {"val_ratio": 0.0,
                                                                                         "test_ratio": 0.0}})
    build_dataset([str(folder / "raw")], folder / "dataset", config, progress=False)
    return folder / "dataset"


def bare_loop(model, loader, steps: int, run_args) -> list[float]:
    """The minimal loop a researcher would write by hand."""
    import torch

    from brain_gen_hf.training.optim import build_optimizer

    optimizer = build_optimizer(model, run_args)
    model.train()
    times, iterator = [], iter(loader)
    for _ in range(steps):
        started = time.perf_counter()  # batch loading counts, as it does in the trainer's step time
        try:
            batch = next(iterator)
        except StopIteration:
            iterator = iter(loader)
            batch = next(iterator)
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), run_args.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    import torch

    from brain_gen_hf.training.arguments import parse_run_config
    from brain_gen_hf.training.tasks import get_task, load_training_data
    from brain_gen_hf.training.trainer import train

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--task", default="wavenet", choices=sorted(TASK_SETTINGS))
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--dataset", default=None)
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

    with tempfile.TemporaryDirectory() as tmp:
        dataset = args.dataset or str(simulated_dataset(Path(tmp)))
        settings = TASK_SETTINGS[args.task]
        config = dict(task=args.task, dataset=dataset, eval_split=None, overlap_seconds=0.0,
                      output_dir=str(Path(tmp) / "run"), max_steps=args.steps, log_with="none", progress_bar=False,
                      checkpoint_every=0, seed=0, **settings)
        model_args, data_args, run_args = parse_run_config(config)

        # Ours: the full trainer (accelerate, scheduler, accumulation bookkeeping, meters, tqdm disabled).
        ours = train(model_args, data_args, run_args).step_seconds[args.warmup:]

        # Bare: the same model and batches, by hand.
        task = get_task(args.task)
        splits, data = load_training_data(data_args)
        torch.manual_seed(0)
        model = task.build_model(model_args, data)
        loader = torch.utils.data.DataLoader(splits["train"], batch_size=data_args.batch_size, shuffle=True,
                                             drop_last=True, collate_fn=task.make_collator(data, model),
                                             generator=torch.Generator().manual_seed(0))
        bare = bare_loop(model, loader, args.steps, run_args)[args.warmup:]

    ours_ms, bare_ms = statistics.median(ours) * 1e3, statistics.median(bare) * 1e3
    print(f"task {args.task}: {args.steps - args.warmup} timed steps each")
    print(f"  bare PyTorch loop : {bare_ms:8.2f} ms/step")
    print(f"  brain_gen_hf train: {ours_ms:8.2f} ms/step")
    print(f"  harness overhead  : {100 * (ours_ms / bare_ms - 1):+.1f}% (target < 5%)")


if __name__ == "__main__":
    main()
