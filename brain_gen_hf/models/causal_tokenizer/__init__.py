"""The causal RVQ brain tokenizer that BrainOmni and BrainTokMix build on: base config, base model and the
layers only they use (SEANet codec, streaming convolutions, residual quantizers, reconstruction losses)."""
