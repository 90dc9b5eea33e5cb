"""Bulk tokenisation speed: the array fast path against the HF `tokenizers` string paths.

Three ways to turn mu-law symbols into token ids with `AmplitudeTokenizer` (identical ids):

1. fast path      `tokenizer.encode_signal(signal)`: float signal -> mu-law -> flattened ids,
                  array operations only (mu-law included in the timing).
2. backend batch  `tokenizer.backend_tokenizer.encode_batch(texts)`: the `tokenizers` Rust
                  tokenizer on the string form (one private-use character per symbol).
3. __call__       `tokenizer(texts)["input_ids"]`: the transformers `PreTrainedTokenizerFast` path.

The string paths start from ready-made strings (building them is timed separately). All paths
work on the same chunks of rows so memory stays bounded.

    python benchmarks/bench_tokenizers.py                 # 10M symbols (about a minute)
    python benchmarks/bench_tokenizers.py --symbols 1e6   # quick run
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")


def _timed(function, chunks):
    start = time.perf_counter()
    results = [function(chunk) for chunk in chunks]
    return time.perf_counter() - start, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--symbols", type=float, default=10e6, help="total mu-law symbols to tokenize")
    parser.add_argument("--channels", type=int, default=68)
    parser.add_argument("--steps", type=int, default=1000, help="time steps per example (one row of ids)")
    parser.add_argument("--rows-per-chunk", type=int, default=16)
    args = parser.parse_args()

    import torch

    from brain_gen_hf.tokenizers import AmplitudeTokenizer

    torch.manual_seed(0)
    rows = max(1, round(args.symbols / (args.channels * args.steps)))
    symbols = rows * args.channels * args.steps
    signal = (torch.randn(rows, args.channels, args.steps) * 0.3).float()
    signal_chunks = list(torch.split(signal, args.rows_per_chunk))
    tokenizer = AmplitudeTokenizer(num_channels=args.channels)
    print(
        f"{symbols:,} symbols: {rows} examples x {args.channels} channels x {args.steps} steps, "
        f"chunks of {args.rows_per_chunk} examples; torch threads {torch.get_num_threads()}, "
        f"TOKENIZERS_PARALLELISM={os.environ['TOKENIZERS_PARALLELISM']}"
    )

    tokenizer.encode_signal(signal_chunks[0])  # warm-up
    fast_s, fast_ids = _timed(tokenizer.encode_signal, signal_chunks)
    text_s, text_chunks = _timed(tokenizer.signal_to_text, signal_chunks)
    backend = tokenizer.backend_tokenizer
    batch_s, batch_ids = _timed(lambda texts: [e.ids for e in backend.encode_batch(texts)], text_chunks)
    call_s, call_ids = _timed(lambda texts: tokenizer(texts)["input_ids"], text_chunks)

    # the paths must agree before their speeds mean anything
    for fast, batch, call in zip(fast_ids, batch_ids, call_ids):
        assert fast.tolist() == batch == call, "paths disagree"

    rate = {
        name: symbols / seconds
        for name, seconds in [("fast", fast_s), ("text", text_s), ("batch", batch_s), ("call", call_s)]
    }
    print(f"{'path':<44}{'seconds':>10}{'symbols/s':>16}")
    for label, name, seconds in [
        ("fast path: encode_signal (incl. mu-law)", "fast", fast_s),
        ("building the strings: signal_to_text", "text", text_s),
        ("tokenizers Tokenizer.encode_batch", "batch", batch_s),
        ("PreTrainedTokenizerFast.__call__", "call", call_s),
    ]:
        print(f"{label:<44}{seconds:>10.3f}{rate[name]:>16,.0f}")
    print(f"fast path / encode_batch: {rate['fast'] / rate['batch']:.1f}x")
    print(f"fast path / __call__:     {rate['fast'] / rate['call']:.1f}x")
    print(f"encode_batch / __call__:  {rate['batch'] / rate['call']:.2f}x")


if __name__ == "__main__":
    main()
