"""Import cost: `import brain_gen_hf` against `import transformers` in fresh interpreters.

`import brain_gen_hf` registers every config, model and tokenizer with the Auto classes lazily,
so it should cost a fraction of importing transformers itself.

    python benchmarks/bench_import.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def import_seconds(module: str, runs: int) -> float:
    """Median wall time of `python -c "import <module>"` over `runs` fresh processes."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import {module}"], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    baseline = import_seconds("sys", args.runs)  # interpreter start-up, for scale
    ours = import_seconds("brain_gen_hf", args.runs)
    theirs = import_seconds("transformers", args.runs)
    print(f"median of {args.runs} fresh interpreters")
    print(f"python -c 'import sys'           {baseline:8.3f} s  (interpreter start-up)")
    print(f"python -c 'import brain_gen_hf'  {ours:8.3f} s")
    print(f"python -c 'import transformers'  {theirs:8.3f} s")
    print(f"brain_gen_hf / transformers:     {ours / theirs:8.2f}")


if __name__ == "__main__":
    main()
