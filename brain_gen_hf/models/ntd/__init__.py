"""NTD: denoising diffusion over multichannel time series with Ornstein-Uhlenbeck noise and a causal
convolutional denoiser (Vetter et al., "Generating realistic neurophysiological time series with denoising
diffusion probabilistic models")."""
