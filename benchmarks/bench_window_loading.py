"""Window loading throughput: Parquet shards (datasets + WindowDataset + collator) vs numpy memmap.

Both paths serve the same windows (same segments, same (row, start) index, same batch order) as
`(B, C, L)` float32 batches, for a 68-channel (parcel) and a 306-channel (Neuromag) layout.
Prints windows/s, MB/s and the shard/memmap ratio (target >= 0.5).

    python benchmarks/bench_window_loading.py [--segments 6] [--seconds 120] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def _write_shards(folder: Path, n_channels: int, n_segments: int, n_samples: int, sfreq: float):
    import pyarrow.parquet as pq

    from brain_gen_hf.data.channels import ChannelMetadata
    from brain_gen_hf.data.cleaning import CleaningSummary
    from brain_gen_hf.data.normalization import NormalizationStats
    from brain_gen_hf.data.pipeline import ProcessedRecording
    from brain_gen_hf.data.readers import RecordingSource
    from brain_gen_hf.data.shards import recording_table, segment_features

    rng = np.random.default_rng(0)
    types = ["parcel"] * n_channels if n_channels == 68 else (["grad", "grad", "mag"] * (n_channels // 3))
    pos = rng.standard_normal((n_channels, 3)).astype(np.float32) * 0.1
    channels = ChannelMetadata(
        [f"ch{i}" for i in range(n_channels)], types, [""] * n_channels, pos, np.zeros_like(pos), pos[:, :2]
    )
    segments = [rng.standard_normal((n_channels, n_samples)).astype(np.float32) for _ in range(n_segments)]
    processed = ProcessedRecording(
        RecordingSource(Path("bench"), "bench", "sub-01", "sub-01", "rest"),
        sfreq,
        channels,
        segments,
        NormalizationStats(np.zeros(n_channels), np.ones(n_channels), 0),
        CleaningSummary(),
    )
    (folder / "data").mkdir(parents=True)
    pq.write_table(
        recording_table(processed, segment_features()),
        folder / "data" / "train-00000-of-00001.parquet",
        row_group_size=1,
    )
    memmap = np.lib.format.open_memmap(
        folder / "segments.npy", mode="w+", dtype=np.float32, shape=(n_segments, n_channels, n_samples)
    )
    for i, segment in enumerate(segments):
        memmap[i] = segment
    memmap.flush()
    return folder / "segments.npy"


def _run(n_channels: int, args, tmp: Path) -> dict:
    from brain_gen_hf.data.collators import ContinuousCollator
    from brain_gen_hf.data.windows import WindowDataset, load_segments

    folder = tmp / f"c{n_channels}"
    n_samples = int(args.seconds * args.sfreq)
    memmap_path = _write_shards(folder, n_channels, args.segments, n_samples, args.sfreq)
    segments = load_segments(str(folder), split="train", cache_dir=str(tmp / "cache"))
    windows = WindowDataset(segments, args.example_seconds, args.overlap_seconds)
    collate = ContinuousCollator(windows.layout)
    order = np.random.default_rng(1).permutation(len(windows))  # shuffled, like training
    batches = [order[i : i + args.batch_size] for i in range(0, len(order), args.batch_size)]
    memmap = np.load(memmap_path, mmap_mode="r")
    index, length = windows.index, windows.length

    def shard_epoch():
        for batch in batches:
            collate(windows.__getitems__(batch))

    def memmap_epoch():
        import torch

        for batch in batches:
            out = np.empty((len(batch), n_channels, length), dtype=np.float32)
            for b, i in enumerate(batch):
                row, start = index[i]
                out[b] = memmap[row, :, start : start + length]
            torch.from_numpy(out)

    # identical windows on both paths
    first = collate(windows.__getitems__(batches[0]))["inputs"].numpy()
    row, start = index[batches[0][0]]
    np.testing.assert_array_equal(first[0], memmap[row, :, start : start + length])

    results = {}
    for name, epoch in (("shards", shard_epoch), ("memmap", memmap_epoch)):
        epoch()  # warm the page cache
        best = float("inf")
        for _ in range(args.repeats):
            begin = time.perf_counter()
            epoch()
            best = min(best, time.perf_counter() - begin)
        results[name] = best
    n_windows = len(order)
    megabytes = n_windows * n_channels * length * 4 / 1e6
    return {
        "channels": n_channels,
        "windows": n_windows,
        **{f"{k}_windows_per_s": n_windows / v for k, v in results.items()},
        **{f"{k}_mb_per_s": megabytes / v for k, v in results.items()},
        "ratio": results["memmap"] / results["shards"],
    }


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=120.0, help="length of each segment")
    parser.add_argument("--sfreq", type=float, default=100.0)
    parser.add_argument("--example-seconds", type=float, default=10.24)
    parser.add_argument("--overlap-seconds", type=float, default=5.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--channels", type=int, nargs="+", default=[68, 306])
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n_channels in args.channels:
            rows.append(_run(n_channels, args, Path(tmp)))
    print(
        f"{'channels':>8} {'windows':>8} {'shards win/s':>13} {'memmap win/s':>13} {'shards MB/s':>12} "
        f"{'memmap MB/s':>12} {'ratio':>6}"
    )
    for r in rows:
        print(
            f"{r['channels']:>8} {r['windows']:>8} {r['shards_windows_per_s']:>13.0f} "
            f"{r['memmap_windows_per_s']:>13.0f} "
            f"{r['shards_mb_per_s']:>12.0f} {r['memmap_mb_per_s']:>12.0f} {r['ratio']:>6.2f}"
        )
    print("target: shards/memmap ratio >= 0.5 ->", "OK" if all(r["ratio"] >= 0.5 for r in rows) else "BELOW TARGET")
    return rows


if __name__ == "__main__":
    main()
