"""Factorized autoencoder: continuous latents of ROI time series, with temporal and channel compression factorised."""
