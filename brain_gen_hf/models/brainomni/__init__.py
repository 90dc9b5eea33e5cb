"""BrainOmni causal tokenizer: per-sensor SEANet, sensor<->latent cross-attention, residual VQ."""
