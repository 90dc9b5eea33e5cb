"""Start-up cost: time to the first loaded model and `brain-gen-hf --help`, each in fresh processes.

* first model: `import brain_gen_hf` + `AutoModel.from_pretrained(folder)` of a small saved FlatGPT, against
  `import transformers` + `AutoModel.from_pretrained` of a Qwen2 with the same parameter count (saved locally);
  the target is a ratio within 1.10.
* `brain-gen-hf --help`: the target is under 1 s (the CLI imports neither torch nor transformers for it).

Every number is the median wall time of `--repeat` fresh interpreters (start-up included). `--tree DIR` measures
another checkout (e.g. an older commit) by putting it first on PYTHONPATH; its folders are saved by that tree.

    python benchmarks/bench_startup.py [--repeat 7] [--tree /path/to/checkout] [--model-type flatgpt]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# A small FlatGPT (Qwen2.5-VL text backbone) and the same-sized Qwen2; the Qwen2 vocabulary absorbs the
# difference in parameter count.
SAVE_MODELS = r"""
import json, sys
import torch
import transformers
import brain_gen_hf  # noqa: F401
from transformers import AutoConfig, AutoModel

flat_dir, qwen_dir, model_type = sys.argv[1:4]
backbone = {"model_type": "qwen2_5_vl_text", "num_hidden_layers": 4, "num_attention_heads": 8,
            "num_key_value_heads": 4, "intermediate_size": 1024, "max_position_embeddings": 2048,
            "rope_scaling": {"rope_type": "default", "mrope_section": [8, 4, 4]}}
config = AutoConfig.for_model(model_type, vocab_size=257, hidden_size=256, input_shape=[64, 4, 1],
                              backbone_config=backbone)
torch.manual_seed(0)
model = AutoModel.from_config(config)
model.save_pretrained(flat_dir)
n_flat = sum(p.numel() for p in model.parameters())

qwen = transformers.Qwen2Config(hidden_size=256, num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=4,
                                intermediate_size=1024, vocab_size=257, tie_word_embeddings=True)
n_qwen_base = sum(p.numel() for p in transformers.Qwen2Model(qwen).parameters())
qwen.vocab_size = max(1, 257 + round((n_flat - n_qwen_base) / 256))
qwen_model = transformers.Qwen2Model(qwen)
qwen_model.save_pretrained(qwen_dir)
print(json.dumps({"flatgpt_params": n_flat, "qwen2_params": sum(p.numel() for p in qwen_model.parameters())}))
"""

LOAD_FLATGPT = "import brain_gen_hf, sys; from transformers import AutoModel; AutoModel.from_pretrained(sys.argv[1])"
LOAD_QWEN2 = "import transformers, sys; transformers.AutoModel.from_pretrained(sys.argv[1])"
HELP = "import sys; sys.argv = ['brain-gen-hf', '--help']; from brain_gen_hf.cli import main; main()"


def environment(tree: Path | None) -> dict:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_VERBOSITY": "error",
    }
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(tree)] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


def wall_time(code: str, args: list[str], env: dict) -> float:
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, cwd=tempfile.gettempdir()
    )
    elapsed = time.perf_counter() - start
    if result.returncode not in (0,) and "usage:" not in result.stdout:
        raise RuntimeError(f"{code!r} failed:\n{result.stderr[-3000:]}")
    return elapsed


def median_time(code: str, args: list[str], env: dict, repeat: int) -> float:
    return statistics.median(wall_time(code, args, env) for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--tree", type=Path, help="checkout to measure instead of this one (put on PYTHONPATH)")
    parser.add_argument("--model-type", default="flatgpt", help="FlatGPT variant to load (default: flatgpt)")
    args = parser.parse_args()
    env = environment(args.tree)
    with tempfile.TemporaryDirectory() as tmp:
        flat_dir, qwen_dir = str(Path(tmp, "flatgpt")), str(Path(tmp, "qwen2"))
        saved = subprocess.run(
            [sys.executable, "-c", SAVE_MODELS, flat_dir, qwen_dir, args.model_type],
            env=env,
            capture_output=True,
            text=True,
            cwd=tmp,
        )
        if saved.returncode != 0:
            raise SystemExit(f"could not save the benchmark models:\n{saved.stderr[-3000:]}")
        sizes = json.loads(saved.stdout.strip().splitlines()[-1])
        # Interleaved, so drifting machine load hits both sides alike.
        flat, qwen = [], []
        for _ in range(args.repeat):
            flat.append(wall_time(LOAD_FLATGPT, [flat_dir], env))
            qwen.append(wall_time(LOAD_QWEN2, [qwen_dir], env))
        help_time = median_time(HELP, [], env, args.repeat)
    flat_s, qwen_s = statistics.median(flat), statistics.median(qwen)
    tree = args.tree or REPO
    print(f"tree: {tree}  ({args.repeat} fresh processes each, median wall time)")
    print(f"parameters: {args.model_type} {sizes['flatgpt_params']:,}, qwen2 {sizes['qwen2_params']:,}")
    print(f"first model, brain_gen_hf {args.model_type}: {flat_s:.2f} s")
    print(f"first model, transformers qwen2:        {qwen_s:.2f} s")
    print(f"ratio brain_gen_hf / transformers: {flat_s / qwen_s:.3f} (target <= 1.10)")
    print(f"brain-gen-hf --help: {help_time:.2f} s (target < 1 s)")


if __name__ == "__main__":
    main()
