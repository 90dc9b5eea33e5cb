"""WaveNet over mu-law tokens: per-channel streams (`WavenetFullChannel`) and token images (`Wavenet3D`)."""
