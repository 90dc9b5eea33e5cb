"""Tiny configs of the token-LM pipeline shared by the training and evaluation tests (SIMULATED MEG: 102
magnetometers at 100 Hz)."""

CHANNELS = 102  # magnetometers of the simulated helmet
TINY_QWEN = {
    "model_type": "qwen2_5_vl_text",
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "intermediate_size": 32,
    "rms_norm_eps": 1e-6,
    "rope_theta": 1e4,
    "max_position_embeddings": 256,
    "rope_scaling": {"rope_type": "default", "mrope_section": 1},
}
TINY_BRAINTOKMIX = {
    "window_length": 32,
    "n_filters": 4,
    "ratios": [2, 2],
    "n_dim": 16,
    "n_neuro": 2,
    "codebook_dim": 8,
    "codebook_size": 32,
    "num_quantizers": 2,
    "lstm_layers": 0,
    "n_residual_layers": 1,
}
