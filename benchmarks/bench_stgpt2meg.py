"""STGPT2MEG throughput on CPU (fp32): training tokens/s, and generation tokens/s with and without the KV cache.

A token is one channel at one time step (a `(B, C, T)` grid holds `B * C * T`). Training runs forward, backward
and an AdamW step on `(batch, C, train_steps)` grids; generation continues a `prompt_steps` context by
`new_steps` time steps greedily, once through the `DynamicCache` (the context runs once, then one step per call)
and once rerunning the whole sequence every step. Both generations run in this process, one after the other, and
must produce the same tokens; their ratio is the cache's speed-up.

    python benchmarks/bench_stgpt2meg.py                      # 68 channels, d_model 128, 4 layers
    python benchmarks/bench_stgpt2meg.py --threads 2 --layers 2 --new-steps 16
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def _timed(fn, repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=68)
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--block-type", default="STGPTBlock")
    parser.add_argument("--mlp-type", default="standard")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--train-steps", type=int, default=64, help="time steps per training grid")
    parser.add_argument("--train-repeats", type=int, default=3)
    parser.add_argument("--prompt-steps", type=int, default=32)
    parser.add_argument("--new-steps", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from transformers import AutoModelForCausalLM

    from brain_gen_hf.models.stgpt2meg.configuration_stgpt2meg import STGPT2MEGConfig

    config = STGPT2MEGConfig(
        num_channels=args.channels,
        vocab_size=256,
        d_model=args.d_model,
        layers=args.layers,
        num_heads=args.heads,
        block_type=args.block_type,
        mlp_type=args.mlp_type,
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    parameters = sum(p.numel() for p in model.parameters())
    g = torch.Generator().manual_seed(1)

    grid = torch.randint(0, 256, (args.batch, args.channels, args.train_steps + 1), generator=g)
    inputs, labels = grid[..., :-1], grid[..., 1:]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()

    def train_step():
        optimizer.zero_grad(set_to_none=True)
        model(inputs, labels=labels).loss.backward()
        optimizer.step()

    train_seconds = _timed(train_step, args.train_repeats)
    train_tokens = inputs.numel()

    model.eval()
    prompt = torch.randint(0, 256, (args.batch, args.channels, args.prompt_steps), generator=g)
    new_tokens = args.new_steps * args.channels
    results = {}
    with torch.no_grad():
        for use_cache in (True, False):
            start = time.perf_counter()
            out = model.generate(prompt, max_new_tokens=new_tokens, do_sample=False, use_cache=use_cache)
            results[use_cache] = (time.perf_counter() - start, out)
    same = torch.equal(results[True][1], results[False][1])
    generated = args.batch * new_tokens
    report = {
        "config": {k: v for k, v in vars(args).items()},
        "parameters": parameters,
        "threads": torch.get_num_threads(),
        "train_tokens_per_s": round(train_tokens / train_seconds, 1),
        "generate_tokens_per_s_cache": round(generated / results[True][0], 1),
        "generate_tokens_per_s_no_cache": round(generated / results[False][0], 1),
        "cache_speedup": round(results[False][0] / results[True][0], 2),
        "cached_equals_uncached": same,
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
