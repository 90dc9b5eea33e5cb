"""FlatGPT: decoder-only language models over flattened brain-token grids (brain-gen's paper LM family)."""
