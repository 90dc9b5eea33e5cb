"""TASA3D: temporal-only attention with a spatial autoencoder, over mu-law token images `(B, H, W, T)`."""
