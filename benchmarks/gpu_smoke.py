"""GPU smoke check (run where CUDA is available; CI has no GPU).

    python benchmarks/gpu_smoke.py [--out DIR]

Checks on CUDA: FlatGPTEmbedsRVQ forward / cached-vs-uncached generate / forecast in fp32 (the reference's
SDPA backend restriction made fp32 fail on GPU) and under bf16 autocast; BrainTokMix codes on CUDA vs CPU;
a few accelerate training steps with bf16 mixed precision through the real trainer; and throughput: the fp32 and
bf16 `torch.mm` peaks measured in the same run, tokenizer encode rate, and a tiny LM's training-step MFU against
the measured bf16 peak (no datasheet figure: a lent device may be a MIG slice or power-capped). Prints one JSON
summary.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def tiny_lm(device):
    import torch
    from transformers import AutoModelForCausalLM

    import brain_gen_hf  # noqa: F401
    from brain_gen_hf.models.flatgpt.configuration_flatgpt_rvq import FlatGPTEmbedsRVQConfig

    tokenizer = {
        "model_type": "braintokmix",
        "window_length": 32,
        "n_filters": 4,
        "ratios": [2, 2],
        "n_dim": 16,
        "n_neuro": 2,
        "codebook_dim": 8,
        "codebook_size": 64,
        "num_quantizers": 2,
        "num_sensors": 8,
        "lstm_layers": 0,
        "n_residual_layers": 1,
    }
    backbone = {
        "model_type": "qwen2_5_vl_text",
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "intermediate_size": 64,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1e4,
        "max_position_embeddings": 1024,
        "rope_scaling": {"rope_type": "default", "mrope_section": 2},
    }
    torch.manual_seed(0)
    config = FlatGPTEmbedsRVQConfig(
        tokenizer_config=tokenizer, backbone_config=backbone, hidden_size=32, input_shape=[128, 8, 2]
    )
    model = AutoModelForCausalLM.from_config(config).eval()
    g = torch.Generator().manual_seed(1)
    model.tokenizer.init_codebooks(torch.randn(4, 8, 128, generator=g), seed=2)
    return model.to(device)


def check_lm(device) -> dict:
    import torch
    from transformers import GenerationConfig

    model = tiny_lm(device)
    signal = torch.randn(2, 8, 128, generator=torch.Generator().manual_seed(3)).to(device)
    with torch.no_grad():
        out = model(input_values=signal)
        codes = out.input_ids[:, :64]
        cached = model.generate(codes, max_new_tokens=32, do_sample=False, use_cache=True)
        uncached = model.generate(codes, max_new_tokens=32, do_sample=False, use_cache=False)
        forecast = model.forecast(signal[..., :64], 64).values
        forecast_uncached = model.forecast(signal[..., :64], 64, GenerationConfig(use_cache=False)).values
        with torch.autocast(device.type, dtype=torch.bfloat16):
            bf16 = model(input_values=signal)
    cpu = model.to("cpu")
    with torch.no_grad():
        cpu_logits = cpu(input_values=signal.cpu()).logits
    return {
        "lm_fp32_loss_finite": bool(torch.isfinite(out.loss)),
        "lm_generate_cached_equals_uncached": bool(torch.equal(cached, uncached)),
        "lm_forecast_finite": bool(torch.isfinite(forecast).all()),
        "lm_forecast_shape": list(forecast.shape),
        "lm_forecast_cached_equals_uncached": bool(torch.equal(forecast, forecast_uncached)),
        "lm_bf16_autocast_finite": bool(torch.isfinite(bf16.logits.float()).all()),
        "lm_cuda_vs_cpu_max_abs_logit_diff": float((out.logits.cpu() - cpu_logits).abs().max()),
    }


def check_tokenizer(device) -> dict:
    import torch

    model = tiny_lm("cpu").tokenizer
    signal = torch.randn(4, 8, 256, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        cpu_codes = model.encode(signal).codes
        gpu_codes = model.to(device).encode(signal.to(device)).codes.cpu()
    return {"tokenizer_codes_equal_fraction_cuda_vs_cpu": float((cpu_codes == gpu_codes).float().mean())}


def check_training(device, workdir: Path) -> dict:
    from brain_gen_hf.data.config import BuildConfig
    from brain_gen_hf.data.shards import build_dataset
    from brain_gen_hf.data.simulate import write_simulated_recordings
    from brain_gen_hf.training.arguments import parse_run_config
    from brain_gen_hf.training.trainer import train

    write_simulated_recordings(workdir / "raw", n_subjects=2, duration_seconds=30.0, sfreq=200.0)
    build_dataset(
        [str(workdir / "raw")],
        workdir / "ds",
        BuildConfig.from_dict(
            {
                "preprocessing": {"picks": "mag", "detect_bad_channels": False},
                "cleaning": {"min_segment_seconds": 5.0},
                "splits": {"val_ratio": 0.0, "test_ratio": 0.0},
            }
        ),
        progress=False,
    )
    config = {
        "task": "brain_tokenizer",
        "model_type": "braintokmix",
        "dataset": str(workdir / "ds"),
        "model_config": {
            "window_length": 64,
            "n_filters": 8,
            "ratios": [2, 2],
            "n_dim": 32,
            "n_neuro": 2,
            "codebook_dim": 8,
            "codebook_size": 64,
            "num_quantizers": 2,
            "lstm_layers": 0,
        },
        "example_seconds": 1.28,
        "overlap_seconds": 0.0,
        "batch_size": 8,
        "eval_split": None,
        "output_dir": str(workdir / "run"),
        "max_steps": 6,
        "mixed_precision": "bf16",
        "log_with": "none",
        "progress_bar": False,
    }
    result = train(*parse_run_config(config))
    return {"train_bf16_steps": result.step, "train_bf16_losses": [round(v, 4) for v in result.losses.values()]}


def matmul_peak_flops(device, dtype, size: int = 4096, repeats: int = 10) -> float:
    import torch

    a, b = torch.randn(size, size, device=device, dtype=dtype), torch.randn(size, size, device=device, dtype=dtype)
    torch.mm(a, b)
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    torch.cuda.synchronize()
    return repeats * 2 * size**3 / (time.perf_counter() - started)


def lm_training_mfu(device, bf16_peak: float, steps: int = 5) -> dict:
    """Training-step FLOP/s of the tiny LM under bf16 autocast, as a fraction of the bf16 peak measured here
    (nanoGPT estimate: 6 N + 12 L H Q T FLOPs per token). A tiny model is launch-bound: this checks the
    accounting end to end, it is not a target."""
    import torch

    model = tiny_lm(device).train()
    cfg, backbone = model.config, model.config.backbone_config
    length = cfg.max_context_tokens
    codes = torch.randint(0, cfg.vocab_size, (8, length), device=device)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    n = sum(p.numel() for p in model.transformer.parameters()) + cfg.vocab_size * cfg.hidden_size
    head_dim = getattr(backbone, "head_dim", None) or cfg.hidden_size // backbone.num_attention_heads
    flops_per_token = 6 * n + 12 * backbone.num_hidden_layers * backbone.num_attention_heads * head_dim * length

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = model(codes, labels=codes).loss
        loss.backward()
        optimizer.step()

    step()
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    tokens_per_s = steps * codes.numel() / (time.perf_counter() - started)
    return {
        "tiny_lm_train_tokens_per_s": round(tokens_per_s),
        "tiny_lm_train_mfu_of_measured_bf16_peak": round(tokens_per_s * flops_per_token / bf16_peak, 5),
    }


def throughput(device) -> dict:
    import torch

    fp32, bf16 = matmul_peak_flops(device, torch.float32), matmul_peak_flops(device, torch.bfloat16)
    model = tiny_lm(device)
    signal = torch.randn(16, 8, 1024, device=device)
    with torch.no_grad():
        model.tokenizer.encode(signal)
        torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(5):
            model.tokenizer.encode(signal)
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - started) / 5
    return {
        "fp32_matmul_tflops": round(fp32 / 1e12, 1),
        "bf16_matmul_tflops": round(bf16 / 1e12, 1),
        "tiny_tokenizer_encode_signal_samples_per_s": round(16 * 1024 / seconds),
        **lm_training_mfu(device, bf16),
    }


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this check needs a GPU")
    device = torch.device("cuda")
    summary = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    for name, check in (
        ("lm", lambda: check_lm(device)),
        ("tokenizer", lambda: check_tokenizer(device)),
        ("throughput", lambda: throughput(device)),
    ):
        try:
            summary.update(check())
        except Exception as err:  # report every check, do not stop at the first failure
            summary[f"{name}_error"] = repr(err)[:800]
    with tempfile.TemporaryDirectory() as tmp:
        try:
            summary.update(check_training(device, Path(tmp)))
        except Exception as err:
            summary["training_error"] = repr(err)[:800]
    text = json.dumps(summary, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
