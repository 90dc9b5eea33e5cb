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
    "wavenet": dict(
        model_config=dict(
            quant_levels=256,
            quant_emb=16,
            residual_channels=16,
            dilation_channels=16,
            skip_channels=16,
            head_channels=16,
            dilations=[1, 2, 4, 8, 16],
        ),
        example_seconds=1.0,
        batch_size=4,
    ),
    # the reference timings' small FlatGPTEmbedsRVQ: Qwen2.5 hidden 128, 2 layers, 4 heads (2 KV, head 32),
    # inter 256, vocab 1024, 2048 tokens per window (1024 samples, hop 4, 4 latents x 2 levels), pre-tokenized, batch 4.
    "flatgpt": dict(
        model_type="flatgpt_embeds_rvq",
        example_seconds=10.24,
        batch_size=4,
        model_config={
            "hidden_size": 128,
            "backbone_config": {
                "model_type": "qwen2_5_vl_text",
                "num_hidden_layers": 2,
                "num_attention_heads": 4,
                "num_key_value_heads": 2,
                "head_dim": 32,
                "intermediate_size": 256,
                "rms_norm_eps": 1e-6,
                "rope_theta": 10000.0,
                "max_position_embeddings": 4096,
                "rope_scaling": {"rope_type": "default", "mrope_section": 4},
            },
        },
    ),
}
FLATGPT_TOKENIZER = {
    "window_length": 1024,
    "n_filters": 8,
    "ratios": [2, 2],
    "n_dim": 64,
    "n_neuro": 4,
    "codebook_dim": 16,
    "codebook_size": 1024,
    "num_quantizers": 2,
    "lstm_layers": 0,
}


def pretokenized_for_flatgpt(folder: Path, dataset: str) -> tuple[str, str]:
    """A BrainTokMix (k-means codebooks on real windows) and the dataset pretokenized with it."""
    import torch
    from transformers import AutoModel

    from brain_gen_hf.data.pretokenize import pretokenize_dataset
    from brain_gen_hf.data.windows import load_window_datasets
    from brain_gen_hf.models.braintokmix.configuration_braintokmix import (
        BrainTokMixConfig,
    )

    windows = load_window_datasets(dataset, 10.24, 0.0)["train"]
    torch.manual_seed(0)
    tokenizer = AutoModel.from_config(
        BrainTokMixConfig(num_sensors=len(windows.layout), sampling_rate=windows.layout.sfreq, **FLATGPT_TOKENIZER)
    )
    tokenizer.init_codebooks(torch.from_numpy(windows.window_array(list(range(min(8, len(windows)))))), seed=0)
    tokenizer.save_pretrained(folder / "tokenizer")
    pretokenize_dataset(tokenizer, dataset, folder / "tokens", example_seconds=10.24, progress=False)
    return str(folder / "tokens"), str(folder / "tokenizer")


def simulated_dataset(folder: Path) -> Path:
    from brain_gen_hf.data.config import BuildConfig
    from brain_gen_hf.data.shards import build_dataset
    from brain_gen_hf.data.simulate import write_simulated_recordings

    write_simulated_recordings(folder / "raw", n_subjects=2, duration_seconds=120.0, sfreq=200.0)
    config = BuildConfig.from_dict(
        {
            "preprocessing": {"picks": "mag", "detect_bad_channels": False},
            "cleaning": {"min_segment_seconds": 10.0},
            "splits": {"val_ratio": 0.0, "test_ratio": 0.0},
        }
    )
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
    from brain_gen_hf.training.model_building import build_model
    from brain_gen_hf.training.tasks import get_task
    from brain_gen_hf.training.throughput import batch_units, throughput_unit
    from brain_gen_hf.training.trainer import train
    from brain_gen_hf.training.training_data import load_training_data

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--task", default="wavenet", choices=sorted(TASK_SETTINGS))
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--dataset", default=None)
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

    with tempfile.TemporaryDirectory() as tmp:
        dataset = args.dataset or str(simulated_dataset(Path(tmp)))
        settings = dict(TASK_SETTINGS[args.task])
        if args.task == "flatgpt":
            dataset, settings["tokenizer"] = pretokenized_for_flatgpt(Path(tmp), dataset)
        config = dict(
            task=args.task,
            dataset=dataset,
            eval_split=None,
            overlap_seconds=0.0,
            output_dir=str(Path(tmp) / "run"),
            max_steps=args.steps,
            log_with="none",
            progress_bar=False,
            checkpoint_every=0,
            seed=0,
            **settings,
        )
        model_args, data_args, run_args = parse_run_config(config)

        # Ours: the full trainer (accelerate, scheduler, accumulation bookkeeping, meters, tqdm disabled).
        ours = train(model_args, data_args, run_args).step_seconds[args.warmup :]

        # Bare: the same model and batches, by hand.
        task = get_task(args.task)
        splits, data = load_training_data(data_args)
        torch.manual_seed(0)
        model = build_model(task, model_args, data)
        collate = task.make_collator(data, model)
        loader = torch.utils.data.DataLoader(
            splits["train"],
            batch_size=data_args.batch_size,
            shuffle=True,
            drop_last=True,
            collate_fn=collate,
            generator=torch.Generator().manual_seed(0),
        )
        units, unit = batch_units(next(iter(loader))), throughput_unit(collate.model_inputs)
        bare = bare_loop(model, loader, args.steps, run_args)[args.warmup :]

    ours_ms, bare_ms = statistics.median(ours) * 1e3, statistics.median(bare) * 1e3
    print(f"task {args.task}: {args.steps - args.warmup} timed steps each")
    print(f"  bare PyTorch loop : {bare_ms:8.2f} ms/step  {units / bare_ms * 1e3:10.0f} {unit}/s")
    print(f"  brain_gen_hf train: {ours_ms:8.2f} ms/step  {units / ours_ms * 1e3:10.0f} {unit}/s")
    print(f"  harness overhead  : {100 * (ours_ms / bare_ms - 1):+.1f}% (target < 5%)")


if __name__ == "__main__":
    main()
