"""Vidtok / VidtokRVQ encode and decode throughput in signal-seconds per second (CPU, fp32, eval mode).

Everything runs side by side in one process on the same simulated signal: the Gaussian sensor-image
interpolation (`GaussianSensorImages`, signal -> images), Vidtok (FSQ) and VidtokRVQ with the same autoencoder, and
BrainTokMix (the paper's signal tokenizer) as the baseline; ratios are printed against the baseline. Seconds of
signal = frames / 100 Hz (the paper's sampling rate).

    python benchmarks/bench_vidtok.py                       # small autoencoder, 2.56 s windows, 32x32 images
    python benchmarks/bench_vidtok.py --paper --frames 128  # the paper's Vidtok widths (51.7 M parameters)

VidtokRVQ codebooks are filled by k-means on the first batch (not timed).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

SAMPLING_RATE = 100.0
SMALL = dict(ch=16, ch_mult=[1, 2, 4, 4, 4], num_res_blocks=1, tempo_ds=[0, 1, 2], tempo_us=[2, 3, 4])
PAPER = dict(ch=64, ch_mult=[1, 2, 4, 4, 4], num_res_blocks=2, tempo_ds=[0, 1, 2], tempo_us=[2, 3, 4])
COMMON = dict(time_downsample_factor=8, norm_type="groupnorm", interpolation_mode="nearest")
BRAINTOKMIX = dict(
    window_length=256,
    ratios=[2, 2],
    kernel_size=5,
    last_kernel_size=5,
    n_filters=32,
    n_dim=128,
    n_neuro=4,
    lstm_layers=0,
    n_residual_layers=1,
    codebook_size=1024,
    codebook_dim=64,
    num_quantizers=2,
)


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paper", action="store_true", help="the paper's Vidtok widths instead of the small ones")
    parser.add_argument("--frames", type=int, default=256, help="frames (samples) per window")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--channels", type=int, default=102, help="sensors of the simulated layout")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.frames % BRAINTOKMIX["window_length"]:
        parser.error(f"--frames must be a multiple of the baseline's window ({BRAINTOKMIX['window_length']})")
    if args.threads:
        torch.set_num_threads(args.threads)

    from brain_gen_hf.data.gaussian_sensor_images import GaussianSensorImages
    from brain_gen_hf.models.braintokmix.configuration_braintokmix import BrainTokMixConfig
    from brain_gen_hf.models.braintokmix.modeling_braintokmix import BrainTokMixModel
    from brain_gen_hf.models.vidtok.configuration_vidtok import VidtokConfig, VidtokRVQConfig
    from brain_gen_hf.models.vidtok.modeling_vidtok import VidtokModel, VidtokRVQModel

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    angles = rng.uniform(0, 2 * np.pi, args.channels)
    radii = np.sqrt(rng.uniform(0, 1, args.channels))
    positions = np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)
    images_map = GaussianSensorImages(positions, image_size=args.image_size)
    signal = torch.randn(args.batch, args.channels, args.frames)
    video = images_map.signal_to_images(signal).unsqueeze(1)
    seconds = args.batch * args.frames / SAMPLING_RATE

    autoencoder = {**(PAPER if args.paper else SMALL), **COMMON}
    fsq = VidtokModel(VidtokConfig(**autoencoder, z_channels=6, levels=[8] * 6)).eval()
    rvq = VidtokRVQModel(
        VidtokRVQConfig(**autoencoder, z_channels=64, codebook_size=1024, codebook_dim=64, num_quantizers=8)
    ).eval()
    rvq.init_codebooks(video, seed=0)
    tok = BrainTokMixModel(BrainTokMixConfig(**BRAINTOKMIX, num_sensors=args.channels)).eval()
    tok.init_codebooks(signal, seed=0)

    rows = []
    with torch.no_grad():
        rows.append(("gaussian images (signal -> video)", timed(lambda: images_map.signal_to_images(signal), 5)))
        for name, model in (("vidtok", fsq), ("vidtok_rvq", rvq)):
            codes = model.encode(video).codes
            rows.append((f"{name} encode", timed(lambda m=model: m.encode(video), args.repeats)))
            rows.append((f"{name} decode", timed(lambda m=model, c=codes: m.decode(c), args.repeats)))
        codes = tok.encode(signal).codes
        rows.append(("braintokmix encode (baseline)", timed(lambda: tok.encode(signal), args.repeats)))
        rows.append(("braintokmix decode (baseline)", timed(lambda: tok.decode(codes), args.repeats)))

    params = {name: sum(p.numel() for p in m.parameters()) / 1e6 for name, m in (("vidtok", fsq), ("vidtok_rvq", rvq))}
    print(
        f"{args.batch} x {args.frames} frames of {args.image_size}x{args.image_size} ({seconds:.2f} signal-s a call), "
        f"{torch.get_num_threads()} threads; parameters: vidtok {params['vidtok']:.2f} M, "
        f"vidtok_rvq {params['vidtok_rvq']:.2f} M"
    )
    baseline = {kind: dict(rows)[f"braintokmix {kind} (baseline)"] for kind in ("encode", "decode")}
    print(f"{'case':36s} {'seconds':>9s} {'signal-s/s':>11s} {'vs braintokmix':>15s}")
    for name, elapsed in rows:
        kind = "decode" if "decode" in name else "encode"
        print(f"{name:36s} {elapsed:9.4f} {seconds / elapsed:11.2f} {baseline[kind] / elapsed:14.3f}x")


if __name__ == "__main__":
    main()
