"""FlatGPT training throughput per backbone decoder, at (roughly) equal parameter count.

Every backbone gets the same width; its layer count is chosen so that the decoder's parameters (token table
excluded) come closest to the Qwen2.5-VL baseline's. One training step is forward + backward + AdamW step on a
`(batch, length)` batch of random tokens. Printed per backbone: decoder parameters, training tokens/s and its
ratio to the Qwen2.5-VL baseline measured in the same process, and the achieved matmul rate (6 x decoder
parameters x tokens/s, the dense-matmul work of a training step) with its ratio: which decoder turns this
CPU's matmul throughput into training tokens best.

    OMP_NUM_THREADS=2 python benchmarks/bench_flatgpt_backbones.py --hidden 128 --length 256 --steps 5
"""

from __future__ import annotations

import argparse
import time

import torch
from transformers import AutoModelForCausalLM

from brain_gen_hf.models.flatgpt.configuration_flatgpt import FlatGPTConfig


def backbones(hidden: int) -> dict[str, dict]:
    heads = max(2, hidden // 32)
    attention = {"num_attention_heads": heads, "num_key_value_heads": max(1, heads // 2), "head_dim": hidden // heads}
    mlp = {"intermediate_size": 3 * hidden}
    return {
        "qwen2_5_vl_text": {
            **attention,
            **mlp,
            "rope_scaling": {"rope_type": "default", "mrope_section": 2},
        },
        "llama": {**attention, **mlp},
        "qwen3": {**attention, **mlp},
        "smollm3": {**attention, **mlp},
        "gemma3_text": {**attention, **mlp, "sliding_window": 128},
        "minimax": {**attention, **mlp, "num_local_experts": 2, "num_experts_per_tok": 1},
        "falcon_h1": {
            **attention,
            **mlp,
            "mamba_d_ssm": hidden,
            "mamba_n_heads": heads,
            "mamba_d_head": hidden // heads,
            "mamba_d_state": 16,
            "mamba_n_groups": 1,
            "mamba_chunk_size": 64,
        },
        "falcon_mamba": {"intermediate_size": 2 * hidden, "state_size": 16},
        "xlstm": {"num_heads": 2, "qk_dim_factor": 0.5, "chunk_size": 64},
    }


def build(model_type: str, fields: dict, hidden: int, layers: int, length: int) -> torch.nn.Module:
    layer_key = {"xlstm": "num_blocks"}.get(model_type, "num_hidden_layers")
    backbone = {"model_type": model_type, **fields, layer_key: layers, "num_hidden_layers": layers}
    if "layer_types" not in fields and model_type in ("gemma3_text", "minimax"):
        pattern = {
            "gemma3_text": ("sliding_attention", "full_attention"),
            "minimax": ("linear_attention", "full_attention"),
        }
        backbone["layer_types"] = [pattern[model_type][i % 2] for i in range(layers)]
    if "max_position_embeddings" not in fields and model_type not in ("falcon_mamba", "xlstm"):
        backbone["max_position_embeddings"] = max(2 * length, 512)
    config = FlatGPTConfig(vocab_size=256, hidden_size=hidden, input_shape=[length, 1, 1], backbone_config=backbone)
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config)


def decoder_parameters(model: torch.nn.Module) -> int:
    table = model.get_input_embeddings().weight
    return sum(p.numel() for p in model.transformer.parameters() if p is not table)


def tokens_per_second(model: torch.nn.Module, batch: int, length: int, steps: int) -> float:
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ids = torch.randint(0, 256, (batch, length), generator=torch.Generator().manual_seed(0))

    def step():
        optimizer.zero_grad(set_to_none=True)
        model(ids, labels=ids).loss.backward()
        optimizer.step()

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch * length / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--baseline-layers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--only", nargs="*", default=None, help="backbone model types to run (baseline always runs)")
    args = parser.parse_args()

    table = backbones(args.hidden)
    names = ["qwen2_5_vl_text"] + [n for n in table if n != "qwen2_5_vl_text" and (not args.only or n in args.only)]
    # The first training steps of a process are several times slower (allocator, thread pool, lazy kernels): warm
    # the process up on the baseline before timing anything, and time the baseline again at the end as a drift check.
    tokens_per_second(build(names[0], table[names[0]], args.hidden, args.baseline_layers, args.length), 2, 64, 2)
    target = None
    rows = []
    for name in names + [names[0]]:
        if target is None or name == names[0]:
            layers = args.baseline_layers
        else:
            # layer count whose decoder parameters come closest to the baseline's
            per_layer = decoder_parameters(build(name, table[name], args.hidden, 2, args.length)) - decoder_parameters(
                build(name, table[name], args.hidden, 1, args.length)
            )
            layers = max(1, round(target / per_layer))
        model = build(name, table[name], args.hidden, layers, args.length)
        params = decoder_parameters(model)
        target = target or params
        speed = tokens_per_second(model, args.batch, args.length, args.steps)
        rows.append((name, layers, params, speed, 6 * params * speed / 1e9))
        del model

    base_speed, base_rate = rows[0][3], rows[0][4]
    print(
        f"hidden {args.hidden}, batch {args.batch} x {args.length} tokens, {args.steps} steps, "
        f"{torch.get_num_threads()} threads"
    )
    print("| backbone | layers | decoder params | train tokens/s | vs Qwen2.5-VL | matmul GFLOP/s | vs Qwen2.5-VL |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for index, (name, layers, params, speed, rate) in enumerate(rows):
        name = f"{name} (again)" if index == len(rows) - 1 else name
        print(
            f"| {name} | {layers} | {params / 1e6:.2f} M | {speed:,.0f} | {speed / base_speed:.2f} | {rate:.2f} | "
            f"{rate / base_rate:.2f} |"
        )


if __name__ == "__main__":
    main()
