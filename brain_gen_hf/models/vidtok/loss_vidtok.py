"""The Vidtok objective (the reference's `VidtokLoss`), a submodule of the model so its learnable log-variance is
saved, loaded and optimised with the weights.

`loss = mean(|x - x_hat| / exp(logvar) + logvar)` (an L1 negative log-likelihood with one learned scale)
`+ w_pcc * exp(-pcc) + w_amp * amp + w_phase * phase + w_cov * cov + w_aux * aux_loss`, where the temporal terms
are computed on `num_pixels` pixels drawn at random (with replacement, from the global torch RNG) and treat each
pixel's time series as a signal: Pearson correlation, spectral amplitude and phase L1 (as the brain tokenizers'
objective), and the mean absolute difference of the pixels' covariance matrices.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn
from transformers import initialization as init

from ...layers.reconstruction_losses import pearson_correlation, spectral_losses
from .configuration_vidtok import VidtokBaseConfig


class VidtokReconstructionLoss(nn.Module):
    def __init__(self, config: VidtokBaseConfig):
        super().__init__()
        self.config = config
        self.logvar = nn.Parameter(torch.tensor(config.logvar_init))

    def reset_brain_gen_parameters(self) -> None:
        init.constant_(self.logvar, self.config.logvar_init)

    def forward(self, reconstruction: torch.Tensor, target: torch.Tensor, aux_loss: torch.Tensor) -> dict:
        """`(B, C, T, H, W)` reconstruction and target -> `{"loss", "nll_loss", "temporal_pcc_loss", ...}`."""
        cfg = self.config
        zero = target.new_zeros(())
        terms = {"temporal_pcc_loss": zero, "temporal_amp_loss": zero, "temporal_phase_loss": zero}
        terms["temporal_cov_loss"] = zero
        temporal = cfg.temporal_pcc_weight > 0 or cfg.temporal_freq_amp_weight > 0 or cfg.temporal_freq_phase_weight > 0
        if temporal or cfg.temporal_cov_weight > 0:
            pixels = torch.randint(0, target.shape[3] * target.shape[4], (cfg.loss_num_pixels,), device=target.device)
            tgt = rearrange(target, "b c t h w -> b (h w) c t")[:, pixels]
            rec = rearrange(reconstruction, "b c t h w -> b (h w) c t")[:, pixels]
            if cfg.temporal_pcc_weight > 0:
                terms["temporal_pcc_loss"] = torch.exp(-pearson_correlation(rec, tgt))
            if cfg.temporal_freq_amp_weight > 0 or cfg.temporal_freq_phase_weight > 0:
                terms["temporal_amp_loss"], terms["temporal_phase_loss"] = spectral_losses(rec, tgt)
            if cfg.temporal_cov_weight > 0:
                terms["temporal_cov_loss"] = _covariance_distance(rec.flatten(2), tgt.flatten(2))
        nll = torch.mean((target - reconstruction).abs() / torch.exp(self.logvar) + self.logvar)
        loss = nll
        for name, weight in (
            ("temporal_pcc_loss", cfg.temporal_pcc_weight),
            ("temporal_amp_loss", cfg.temporal_freq_amp_weight),
            ("temporal_phase_loss", cfg.temporal_freq_phase_weight),
            ("temporal_cov_loss", cfg.temporal_cov_weight),
        ):
            if weight > 0:
                loss = loss + weight * terms[name]
        if cfg.aux_loss_weight > 0:
            loss = loss + cfg.aux_loss_weight * aux_loss
        return {"loss": loss, "nll_loss": nll, **terms}


def _covariance_distance(rec: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
    """Mean |cov(rec) - cov(tgt)| between the `(S, S)` covariances of `(B, S, L)` series (centred, / (L - 1))."""
    rec, tgt = rec.float(), tgt.float()
    rec = rec - rec.mean(dim=-1, keepdim=True)
    tgt = tgt - tgt.mean(dim=-1, keepdim=True)
    denom = rec.shape[-1] - 1
    return torch.mean(torch.abs(rec @ rec.transpose(-1, -2) / denom - tgt @ tgt.transpose(-1, -2) / denom))
