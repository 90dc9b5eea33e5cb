"""BrainOmniCausalForecast: per-token rollout latency with and without the KV cache, side by side.

    python benchmarks/bench_brainomni_forecast.py [--new-steps 8]

Context lengths of 1k and 4k codes (codes = latent channels x token steps x RVQ levels); each generated
token step emits n_neuro x Q codes. Latency is the marginal cost of the generated steps (a one-step rollout,
i.e. the context's encoding and prefill, is subtracted). Both paths produce identical codes (checked).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "2")


def build():
    import torch
    from transformers import AutoModel

    import brain_gen_hf  # noqa: F401
    from brain_gen_hf.models.brainomni.configuration_brainomni import BrainOmniCausalTokenizerConfig
    from brain_gen_hf.models.brainomni_forecast.configuration_brainomni_forecast import BrainOmniCausalForecastConfig

    channels = 8
    tokenizer = BrainOmniCausalTokenizerConfig(
        window_length=32,
        n_filters=8,
        ratios=[2, 2],
        n_dim=32,
        n_neuro=2,
        n_head=2,
        codebook_dim=16,
        codebook_size=256,
        num_quantizers=2,
        num_sensors=channels,
        lstm_layers=0,
        channel_names=[f"parcel{i}" for i in range(channels)],
    )
    torch.manual_seed(0)
    model = AutoModel.from_config(
        BrainOmniCausalForecastConfig(tokenizer_config=tokenizer, lm_dim=64, lm_head=4, lm_depth=4)
    ).eval()
    model.tokenizer.init_codebooks(torch.randn(4, 8, 256), seed=0)
    return model


def main() -> None:
    import torch
    from transformers import GenerationConfig

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--new-steps", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    model = build()
    hop, cfg = model.tokenizer.hop_length, model.config.tokenizer_config
    codes_per_step = cfg.n_neuro * cfg.num_quantizers
    print(
        f"forecaster: lm_dim {model.config.lm_dim}, depth {model.config.lm_depth}; {codes_per_step} codes per "
        f"token step; {args.new_steps} new steps; threads {torch.get_num_threads()}"
    )
    print(f"{'context codes':>14} {'cached ms/code':>15} {'uncached ms/code':>17} {'speed-up':>9}  identical")
    for context_codes in (1024, 4096):
        steps = context_codes // codes_per_step
        window = cfg.window_length
        samples = -(-steps * hop // window) * window
        signal = torch.randn(1, cfg.num_sensors, samples, generator=torch.Generator().manual_seed(1))
        timings, outputs = {}, {}
        for use_cache in (True, False):
            config = GenerationConfig(use_cache=use_cache)
            model.forecast(signal, hop, config)  # warm-up
            # Marginal cost of the extra steps: the context's encode + prefill (one step) is subtracted.
            started = time.perf_counter()
            model.forecast(signal, hop, config)
            one = time.perf_counter() - started
            started = time.perf_counter()
            outputs[use_cache] = model.forecast(signal, (1 + args.new_steps) * hop, config).codes
            many = time.perf_counter() - started
            timings[use_cache] = (many - one) / (args.new_steps * codes_per_step) * 1e3
        same = torch.equal(outputs[True], outputs[False])
        print(
            f"{context_codes:>14} {timings[True]:>15.3f} {timings[False]:>17.3f} "
            f"{timings[False] / timings[True]:>8.1f}x  {same}"
        )


if __name__ == "__main__":
    main()
