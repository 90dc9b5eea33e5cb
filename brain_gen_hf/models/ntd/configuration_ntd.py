"""Config of NTD. Field names follow the reference constructor (so converted kwargs map one to one); the noise
schedule and the OU prior are also what `NTDScheduler` is built from."""

from __future__ import annotations

import math

from ...configuration_utils import BrainGenConfig, is_real_number, require, require_positive_int

SCHEDULES = ("linear", "quad")
NOISE_PROCESSES = ("ou", "white")
VARIANCE_TYPES = ("fixed_small", "fixed_large")
KNOWN_PART_UPDATES = ("repaint", "reference")


class NTDConfig(BrainGenConfig):
    r"""
    NTD: a DDPM whose noise is an Ornstein-Uhlenbeck (OU) process, with a causal "AdaConv" denoiser
    (structured long convolutions modulated by the diffusion step).

    Args:
        signal_length (`int`): samples L of a window; the denoiser reads exactly L samples.
        signal_channel (`int`): signal channels C.
        cond_dim (`int`): channels of an optional conditioning signal `(B, cond_dim, L)` (0: none).
        diffusion_time_steps (`int`): diffusion steps T of training (and of a full sampling chain).
        schedule (`str`): `"linear"` betas in [start_beta, end_beta], or `"quad"` (linear in sqrt(beta)).
        start_beta, end_beta (`float`): first and last beta.
        ou_sigma2 (`float`): variance of the noise process.
        ou_ell (`float`): length scale (in samples) of the OU covariance `sigma2 * exp(-|i - j| / ell)`.
        noise_process (`str`): `"ou"` or `"white"` (i.i.d. Gaussian of variance `ou_sigma2`).
        net_hidden_channel (`int`): hidden units per input channel of the denoiser.
        net_in_kernel_size, net_out_kernel_size (`int`): kernels of the (causal) input/output convolutions.
        net_slconv_kernel_size (`int`): kernel of each scale of the structured long convolution.
        net_num_scales (`int`): scales of that convolution (its length is `kernel * 2**(scales - 1)`, < L).
        net_num_blocks (`int`): AdaConv blocks.
        net_num_off_diag (`int`): hidden units per channel that mix with every other channel in the block MLPs
            (`net_hidden_channel`: the MLPs are dense).
        net_use_pos_emb (`bool`): add a sinusoidal embedding of the sample position to the step embedding.
        mask_channel (`int`): 1 feeds an "observed" mask as an extra input channel (needed by `impute` and
            `forecast`); 0 does not.
        p_forecast (`float`): probability that a training window gets a random observed prefix (the loss then
            covers only the rest); needs `mask_channel=1` when > 0.
        variance_type (`str`): the ancestral step's noise: `"fixed_small"` (posterior variance, the reference's
            default "alpha_beta") or `"fixed_large"` (beta_t).
        known_part_update (`str`): how `impute` sets the observed samples at each step: `"repaint"` (noised to the
            next step's level, so the last step returns them exactly) or `"reference"` (brain-gen's update, kept
            for reproducing its forecasts; see docs/reference-differences.md).
    """

    model_type = "ntd"
    attribute_map = {"num_hidden_layers": "net_num_blocks"}

    signal_length: int = 6144
    signal_channel: int = 68
    cond_dim: int = 0
    diffusion_time_steps: int = 1000
    schedule: str = "linear"
    start_beta: float = 1e-4
    end_beta: float = 2e-2
    ou_sigma2: float = 1.0
    ou_ell: float = 10.0
    noise_process: str = "ou"
    net_hidden_channel: int = 8
    net_in_kernel_size: int = 1
    net_out_kernel_size: int = 1
    net_slconv_kernel_size: int = 17
    net_num_scales: int = 5
    net_num_blocks: int = 3
    net_num_off_diag: int = 8
    net_use_pos_emb: bool = False
    mask_channel: int = 0
    p_forecast: float = 0.0
    variance_type: str = "fixed_small"
    known_part_update: str = "repaint"

    def __post_init__(self, **kwargs):
        for name in (
            "signal_length",
            "signal_channel",
            "diffusion_time_steps",
            "net_hidden_channel",
            "net_in_kernel_size",
            "net_out_kernel_size",
            "net_slconv_kernel_size",
            "net_num_scales",
            "net_num_blocks",
        ):
            require_positive_int(name, getattr(self, name))
        require_positive_int("cond_dim", self.cond_dim, allow_zero=True)
        require_positive_int("net_num_off_diag", self.net_num_off_diag, allow_zero=True)
        require(
            self.net_num_off_diag <= self.net_hidden_channel,
            f"`net_num_off_diag` ({self.net_num_off_diag}) cannot exceed `net_hidden_channel` "
            f"({self.net_hidden_channel})",
        )
        require(self.mask_channel in (0, 1), f"`mask_channel` must be 0 or 1, got {self.mask_channel!r}")
        require(
            self.slconv_length < self.signal_length,
            f"the long convolution spans net_slconv_kernel_size * 2**(net_num_scales - 1) = {self.slconv_length} "
            f"samples; it must be shorter than `signal_length` ({self.signal_length})",
        )
        for name, allowed in (
            ("schedule", SCHEDULES),
            ("noise_process", NOISE_PROCESSES),
            ("variance_type", VARIANCE_TYPES),
            ("known_part_update", KNOWN_PART_UPDATES),
        ):
            require(getattr(self, name) in allowed, f"`{name}` must be one of {allowed}, got {getattr(self, name)!r}")
        for name in ("start_beta", "end_beta"):
            value = getattr(self, name)
            require(is_real_number(value) and 0.0 < value < 1.0, f"`{name}` must be in (0, 1), got {value!r}")
        for name in ("ou_sigma2", "ou_ell"):
            value = getattr(self, name)
            require(
                is_real_number(value) and math.isfinite(value) and value > 0,
                f"`{name}` must be a positive number, got {value!r}",
            )
        require(
            is_real_number(self.p_forecast) and 0.0 <= self.p_forecast <= 1.0,
            f"`p_forecast` must be a probability in [0, 1], got {self.p_forecast!r}",
        )
        require(
            self.p_forecast == 0.0 or self.mask_channel == 1,
            "`p_forecast` > 0 draws observed prefixes the denoiser must be told about: set `mask_channel=1`",
        )
        super().__post_init__(**kwargs)
        n = self.contract_num_channels
        require(
            n is None or n == self.signal_channel,
            f"the signal contract lists {n} channels but `signal_channel` is {self.signal_channel}",
        )

    @property
    def slconv_length(self) -> int:
        """Length of the structured long convolution kernel."""
        return self.net_slconv_kernel_size * 2 ** (self.net_num_scales - 1)

    @property
    def hidden_width(self) -> int:
        """Full hidden width F of the denoiser: one group of `net_hidden_channel` units per input channel."""
        return (self.signal_channel + self.mask_channel) * self.net_hidden_channel

    @property
    def embedding_width(self) -> int:
        """Width of the step / position / conditioning embeddings (a third of F, rounded down)."""
        return self.hidden_width // 3
