"""`NTDScheduler`: NTD's noise schedule and its noise prior (an Ornstein-Uhlenbeck process or white noise).

It follows diffusers' scheduler interface (`set_timesteps`, `timesteps`, `step(...).prev_sample`, `add_noise`,
`scale_model_input`, `init_noise_sigma`, `save_pretrained` / `from_pretrained` of a `scheduler_config.json`) so a
diffusers-style loop drives it, but it is not diffusers' `DDPMScheduler`: every noise draw (the prior, the ancestral
step's noise) comes from the OU process, the step keeps the reference's epsilon formula, and `impute`'s known-part
update lives here too. It depends on torch only.
"""

from __future__ import annotations

import inspect
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers.utils import ModelOutput

SCHEDULER_CONFIG_NAME = "scheduler_config.json"


@dataclass
class NTDSchedulerOutput(ModelOutput):
    """prev_sample: `(B, C, L)` the sample at the next (less noisy) step of the chain."""

    prev_sample: torch.Tensor | None = None


class SchedulerConfig(dict):
    """The scheduler's arguments, read as attributes (`scheduler.config.num_train_timesteps`) as in diffusers."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError as err:
            raise AttributeError(name) from err


def ou_cholesky_band(length: int, sigma2: float, ell: float) -> torch.Tensor:
    """`(2, L)` float32 band of the upper bidiagonal factor U of the OU precision (P = U^T U, cov = P^-1).

    Row 1 is the diagonal; row 0 holds U[t-1, t] at index t (0 at index 0). Computed in float64.
    """
    rho2 = math.exp(-2.0 / ell)
    corner = 1.0 / (sigma2 * (1.0 - rho2))
    middle = (1.0 + rho2) / (sigma2 * (1.0 - rho2))
    off = math.exp(-1.0 / ell) / (sigma2 * (rho2 - 1.0))
    diagonal = [corner] + [middle] * (length - 2) + [corner] if length > 1 else [corner]
    band = torch.zeros(2, length, dtype=torch.float64, device="cpu")
    # Cholesky of a tridiagonal matrix, one row at a time: P = L L^T with L lower bidiagonal, U = L^T.
    previous = math.sqrt(diagonal[0])
    band[1, 0] = previous
    for t in range(1, length):
        below = off / previous
        previous = math.sqrt(diagonal[t] - below * below)
        band[0, t], band[1, t] = below, previous
    return band.float()


class NTDScheduler:
    """DDPM schedule + structured noise prior of NTD.

    Args:
        num_train_timesteps: diffusion steps T of training.
        beta_schedule: `"linear"` (betas linear in [beta_start, beta_end]) or `"quad"` (linear in sqrt(beta),
            diffusers' "scaled_linear").
        beta_start, beta_end: first and last beta.
        variance_type: noise of the ancestral step: `"fixed_small"` (the posterior variance) or `"fixed_large"`.
        noise_process: `"ou"` (Ornstein-Uhlenbeck, covariance `sigma2 * exp(-|i - j| / ell)`) or `"white"`.
        ou_sigma2, ou_ell: variance and length scale (samples) of the noise process.
        signal_length: samples L of a window (the OU factor is built for exactly L).
    """

    config_name = SCHEDULER_CONFIG_NAME
    order = 1
    init_noise_sigma = 1.0  # the prior is not rescaled: x_T is drawn from the noise process as it is

    def __init__(
        self,
        num_train_timesteps: int = 1000,
        beta_schedule: str = "linear",
        beta_start: float = 1e-4,
        beta_end: float = 2e-2,
        variance_type: str = "fixed_small",
        noise_process: str = "ou",
        ou_sigma2: float = 1.0,
        ou_ell: float = 10.0,
        signal_length: int = 6144,
    ):
        if beta_schedule not in ("linear", "quad"):
            raise ValueError(f"beta_schedule must be 'linear' or 'quad', got {beta_schedule!r}")
        if variance_type not in ("fixed_small", "fixed_large"):
            raise ValueError(f"variance_type must be 'fixed_small' or 'fixed_large', got {variance_type!r}")
        if noise_process not in ("ou", "white"):
            raise ValueError(f"noise_process must be 'ou' or 'white', got {noise_process!r}")
        if not (isinstance(num_train_timesteps, int) and num_train_timesteps > 0):
            raise ValueError(f"num_train_timesteps must be a positive int, got {num_train_timesteps!r}")
        if not (isinstance(signal_length, int) and signal_length > 0):
            raise ValueError(f"signal_length must be a positive int, got {signal_length!r}")
        self.config = SchedulerConfig(
            num_train_timesteps=num_train_timesteps,
            beta_schedule=beta_schedule,
            beta_start=float(beta_start),
            beta_end=float(beta_end),
            variance_type=variance_type,
            noise_process=noise_process,
            ou_sigma2=float(ou_sigma2),
            ou_ell=float(ou_ell),
            signal_length=signal_length,
        )
        if beta_schedule == "linear":
            self.betas = torch.linspace(beta_start, beta_end, num_train_timesteps, device="cpu")
        else:
            self.betas = torch.linspace(beta_start**0.5, beta_end**0.5, num_train_timesteps, device="cpu") ** 2.0
        self.alphas = 1.0 - self.betas
        self.alphas_cumprod = torch.cumprod(self.alphas, dim=0)
        self.ou_band = ou_cholesky_band(signal_length, ou_sigma2, ou_ell) if noise_process == "ou" else None
        self._dense_factor: dict[torch.device, torch.Tensor] = {}
        self.set_timesteps()

    @classmethod
    def from_model_config(cls, config) -> NTDScheduler:
        """The scheduler an `NTDConfig` describes."""
        return cls(
            num_train_timesteps=config.diffusion_time_steps,
            beta_schedule=config.schedule,
            beta_start=config.start_beta,
            beta_end=config.end_beta,
            variance_type=config.variance_type,
            noise_process=config.noise_process,
            ou_sigma2=config.ou_sigma2,
            ou_ell=config.ou_ell,
            signal_length=config.signal_length,
        )

    def __len__(self) -> int:
        return self.config.num_train_timesteps

    # ------------------------------------------------------------------------------------------ timesteps
    def set_timesteps(self, num_inference_steps: int | None = None, device: str | torch.device | None = None):
        """Use `num_inference_steps` evenly spaced steps of the T training steps (diffusers' "leading" spacing);
        `None` runs the full chain T-1, ..., 0 (what the reference samples with)."""
        total = self.config.num_train_timesteps
        steps = total if num_inference_steps is None else num_inference_steps
        if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= total:
            raise ValueError(f"num_inference_steps must be an int in [1, {total}] (the training steps), got {steps!r}")
        self.num_inference_steps = steps
        self._step_ratio = total // steps
        self.timesteps = (torch.arange(steps, device=device or "cpu") * self._step_ratio).flip(0)

    def previous_timestep(self, timestep: int) -> int:
        """The step after `timestep` in the current chain (-1 after the last one)."""
        return int(timestep) - self._step_ratio

    def scale_model_input(self, sample: torch.Tensor, timestep: int | None = None) -> torch.Tensor:
        """The denoiser reads the sample as it is (diffusers' interface)."""
        return sample

    def _check_timestep(self, timestep) -> int:
        t = int(timestep)
        if not 0 <= t < self.config.num_train_timesteps:
            raise ValueError(f"timestep {t} is outside [0, {self.config.num_train_timesteps - 1}]")
        return t

    def _step_coefficients(self, t: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(alpha_t, alpha_bar_t, alpha_bar_prev) of the transition t -> previous_timestep(t)."""
        prev = self.previous_timestep(t)
        alpha_bar = self.alphas_cumprod[t]
        alpha_bar_prev = self.alphas_cumprod[prev] if prev >= 0 else torch.ones((), device="cpu")
        # One training step: the stored alpha_t (bit-identical to the reference); a stride: alpha_bar ratio.
        alpha = self.alphas[t] if self._step_ratio == 1 else alpha_bar / alpha_bar_prev
        return alpha, alpha_bar, alpha_bar_prev

    def step(
        self,
        model_output: torch.Tensor,
        timestep: int | torch.Tensor,
        sample: torch.Tensor,
        generator: torch.Generator | None = None,
        variance_noise: torch.Tensor | None = None,
        return_dict: bool = True,
    ) -> NTDSchedulerOutput | tuple[torch.Tensor]:
        """One ancestral DDPM step with epsilon prediction:
        `x_prev = (x - (1 - alpha_t) / sqrt(1 - alpha_bar_t) * eps) / sqrt(alpha_t) + sigma_t * z`, with z drawn
        from the noise process (`variance_noise` if given; none is added after the last step)."""
        t = self._check_timestep(timestep)
        alpha, alpha_bar, alpha_bar_prev = (c.to(sample.device, sample.dtype) for c in self._step_coefficients(t))
        prev_sample = (1 / torch.sqrt(alpha)) * (sample - ((1.0 - alpha) / torch.sqrt(1.0 - alpha_bar)) * model_output)
        if self.previous_timestep(t) >= 0:
            beta = 1.0 - alpha
            if self.config.variance_type == "fixed_small":
                sigma = (((1.0 - alpha_bar_prev) / (1.0 - alpha_bar)) * beta) ** 0.5
            else:
                sigma = beta**0.5
            if variance_noise is None:
                variance_noise = self.sample_noise(sample.shape, generator=generator, device=sample.device)
            prev_sample = prev_sample + sigma * variance_noise.to(sample.dtype)
        return NTDSchedulerOutput(prev_sample=prev_sample) if return_dict else (prev_sample,)

    def add_noise(self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """Forward diffusion `sqrt(alpha_bar_t) x + sqrt(1 - alpha_bar_t) noise`, one step per batch item."""
        alpha_bar = self.alphas_cumprod.to(original_samples.device)[timesteps.long()].view(-1, 1, 1)
        alpha_bar = alpha_bar.to(original_samples.dtype)
        return torch.sqrt(alpha_bar) * original_samples + torch.sqrt(1.0 - alpha_bar) * noise

    def known_part(
        self,
        signal: torch.Tensor,
        timestep: int,
        noise: torch.Tensor,
        update: str = "repaint",
    ) -> torch.Tensor:
        """What in-painting writes into the observed samples at the step from `timestep`.

        `"repaint"`: the signal noised to the next step's level (the signal itself after the last step).
        `"reference"`: brain-gen's update, the signal noised to this step's level and then stepped with the signal
        itself in place of the noise estimate (so the final observed samples are not exactly the signal).
        """
        t = self._check_timestep(timestep)
        alpha, alpha_bar, alpha_bar_prev = (c.to(signal.device, signal.dtype) for c in self._step_coefficients(t))
        noise = noise.to(signal.dtype)
        if update == "repaint":
            if self.previous_timestep(t) < 0:
                return signal
            return torch.sqrt(alpha_bar_prev) * signal + torch.sqrt(1.0 - alpha_bar_prev) * noise
        if update != "reference":
            raise ValueError(f"update must be 'repaint' or 'reference', got {update!r}")
        noisy = torch.sqrt(alpha_bar) * signal + torch.sqrt(1.0 - alpha_bar) * noise
        return (1.0 / torch.sqrt(alpha)) * (noisy - ((1.0 - alpha) / torch.sqrt(1.0 - alpha_bar)) * signal)

    # -------------------------------------------------------------------------------------- noise process
    def _dense_upper(self, device: torch.device) -> torch.Tensor:
        if device not in self._dense_factor:
            band = self.ou_band.to(device)
            self._dense_factor[device] = torch.diag(band[0, 1:], diagonal=1) + torch.diag(band[1], diagonal=0)
        return self._dense_factor[device]

    def sample_noise(
        self,
        shape: tuple[int, int, int],
        generator: torch.Generator | None = None,
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """A `(B, C, L)` draw of the noise process (OU: solve `U z = eps` for white `eps`), from `generator` or
        torch's global RNG. White noise is drawn on the generator's device and moved, as diffusers does."""
        device = torch.device(device) if device is not None else torch.device("cpu")
        if shape[-1] != self.config.signal_length:
            raise ValueError(f"the noise process is built for {self.config.signal_length} samples, got {shape[-1]}")
        draw_on = generator.device if generator is not None else device
        white = torch.randn(*shape, generator=generator, device=draw_on, dtype=torch.float32).to(device)
        if self.ou_band is None:
            return (math.sqrt(self.config.ou_sigma2) * white).to(dtype)
        solved = torch.linalg.solve_triangular(self._dense_upper(device), white.transpose(1, 2), upper=True)
        return solved.transpose(1, 2).to(dtype)

    def sqrt_mahalanobis(self, residual: torch.Tensor) -> torch.Tensor:
        """Causal square-root Mahalanobis transform of a `(B, C, L)` residual under the noise process, in float32.

        OU: `y_t = d_t r_t + u_{t-1} r_{t-1}` with d the factor's diagonal and u_t = U[t-1, t]; the off-diagonal
        coefficient is taken one index early, as in the reference (only the first two steps see the difference
        for an OU factor, whose coefficients are constant away from the corner). White: `r / sigma2`.
        """
        residual = residual.float()
        if residual.shape[-1] != self.config.signal_length:
            raise ValueError(
                f"the noise process is built for {self.config.signal_length} samples, got {residual.shape}"
            )
        if self.ou_band is None:
            return (1.0 / self.config.ou_sigma2) * residual
        band = self.ou_band.to(residual.device)
        out = band[1] * residual
        out[..., 1:] += (band[0] * residual)[..., :-1]
        return out

    # ------------------------------------------------------------------------------------ serialisation
    def save_pretrained(self, save_directory: str | os.PathLike) -> None:
        """Write `scheduler_config.json` (diffusers' layout: `_class_name` plus the arguments)."""
        folder = Path(save_directory)
        folder.mkdir(parents=True, exist_ok=True)
        data = {"_class_name": type(self).__name__, **self.config}
        (folder / self.config_name).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: str | os.PathLike, subfolder: str | None = None, **hub_kwargs
    ) -> NTDScheduler:
        """Read `scheduler_config.json` from a folder or a Hub repo (`revision`, `token`, `cache_dir`, ... go to
        `huggingface_hub.hf_hub_download`)."""
        folder = Path(pretrained_model_name_or_path)
        if subfolder:
            folder = folder / subfolder
        if folder.is_dir():
            path = folder / cls.config_name
            if not path.is_file():
                raise OSError(f"{folder} has no {cls.config_name}; save one with NTDScheduler.save_pretrained")
        else:
            from huggingface_hub import hf_hub_download

            path = hf_hub_download(
                str(pretrained_model_name_or_path), cls.config_name, subfolder=subfolder, **hub_kwargs
            )
        try:
            data = json.loads(Path(path).read_text())
        except json.JSONDecodeError as err:
            raise OSError(f"{path} is not valid JSON: {err}") from err
        name = data.pop("_class_name", cls.__name__)
        if name != cls.__name__:
            raise ValueError(f"{path} describes a {name}, not an {cls.__name__}")
        data.pop("_diffusers_version", None)
        known = set(inspect.signature(cls.__init__).parameters) - {"self"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{path} has unknown scheduler arguments {unknown}; known: {sorted(known)}")
        return cls(**data)
