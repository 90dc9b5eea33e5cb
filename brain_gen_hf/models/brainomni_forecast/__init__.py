"""BrainOmni causal forecaster: an autoregressive spatial/temporal transformer over tokenizer codes."""
