"""Vidtok / VidtokRVQ: causal 3-D video tokenizers (FSQ or residual VQ) over Gaussian-interpolated sensor images."""
