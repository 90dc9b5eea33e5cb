"""Signal reconstruction terms of brain-gen's tokenizer objectives, on windows `(..., L)`.

Details kept from the reference because they define trained models' objectives: Pearson
correlation with the unbiased std and `cov / (std * std + 1e-6)`; spectra of periodic-Hamming-
windowed signals with `rfft(norm="ortho")`; the phase term is the raw (unwrapped) angle difference.
"""

from __future__ import annotations

import torch


def l1_loss(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (reconstruction - target).abs().mean()


def pearson_correlation(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over rows of the correlation along the last axis."""
    length = reconstruction.shape[-1]
    x = reconstruction.reshape(-1, 1, length)
    y = target.reshape(-1, 1, length)
    cov = (x - x.mean(-1, keepdim=True)) @ (y - y.mean(-1, keepdim=True)).transpose(1, 2) * (1.0 / (length - 1))
    sigma = torch.std(x, dim=-1) * torch.std(y, dim=-1) + 1e-6
    return (cov.reshape(-1) / sigma.reshape(-1)).mean()


def spectral_losses(reconstruction: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(amplitude L1, phase L1) between the windowed spectra."""
    window = torch.hamming_window(target.shape[-1], device=reconstruction.device)
    rec_fft = torch.fft.rfft(window * reconstruction, dim=-1, norm="ortho")
    tgt_fft = torch.fft.rfft(window * target, dim=-1, norm="ortho")
    amplitude = l1_loss(rec_fft.abs(), tgt_fft.abs())
    phase = l1_loss(torch.angle(rec_fft), torch.angle(tgt_fft))
    return amplitude, phase


def code_perplexity(codes: torch.Tensor, codebook_size: int) -> torch.Tensor:
    """`exp(entropy)` of the histogram of all codes (every level pooled), a codebook-usage metric."""
    counts = torch.bincount(codes.reshape(-1).long(), minlength=codebook_size).float()
    probs = counts / counts.sum()
    return torch.exp(-(probs * torch.log(probs + 1e-6)).sum()).detach()
