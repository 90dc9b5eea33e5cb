"""Mu-law tokens of a signal in a model's training units, and back (WaveNet, Wavenet3D, TASA3D).

The token models learn `mulaw_encode(signal / max_value, mu=quant_levels - 1)`: the collators divide the
normalised signal by `max_value` (the reference data's 5.0) so that its usual range fills the mu-law bins.
"""

from __future__ import annotations

import torch

from ..tokenizers.mulaw import mulaw_decode, mulaw_encode


def signal_to_mulaw(signal: torch.Tensor, quant_levels: int, max_value: float) -> torch.Tensor:
    """Float signal in training units -> int64 bins in `[0, quant_levels)`."""
    return mulaw_encode(signal.float() / max_value, mu=quant_levels - 1)


def mulaw_to_signal(bins: torch.Tensor, quant_levels: int, max_value: float) -> torch.Tensor:
    """Bins -> float32 signal in training units (the bin's centre value times `max_value`)."""
    return mulaw_decode(bins, mu=quant_levels - 1) * max_value
