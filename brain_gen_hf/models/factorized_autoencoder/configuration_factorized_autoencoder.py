"""Config of the factorized autoencoder. Field names follow the reference constructor (`MEGFactorizedConfig`)."""

from __future__ import annotations

import math

from ...configuration_utils import BrainGenConfig, require, require_int_list, require_positive_int

RECONSTRUCTION_LOSSES = ("mse", "l1", "huber")


class FactorizedAutoencoderConfig(BrainGenConfig):
    r"""
    Continuous autoencoder for ROI (parcel) time series that factorises the compression: temporal down-sampling
    by depthwise causal convolutions within each channel, channel reduction by learned channel-mixing matrices.

    The encoder runs `len(encoder_stages)` stages; stage s divides time by its factor `t_s` (ceil) and maps its
    channels with a `(C_{s+1}, C_s)` matrix. The latents are `(B, C_red, T_red, d_latent)`. The decoder runs its
    own stages (expand channels, then up-sample time by repetition) from `C_red` back to `c_out` channels.

    Args:
        c_in (`int`): input channels C.
        c_out (`int`, *optional*): reconstructed channels (default `c_in`).
        c_down (`int`): total channel reduction `C / C_red` (used when `c_stages` is not given).
        t_down (`int`): total temporal down-sampling.
        t_down_factors (`list[int]`, *optional*): per-stage temporal factors, product `t_down` (default: 2s, then
            the odd remainder).
        c_down_factors (`list[int]`, *optional*): per-stage channel factors, product `c_down` (default as above).
            The shorter of the two factor lists is padded with 1s.
        c_stages (`list[int]`, *optional*): explicit channel count after every encoder stage, one per temporal
            factor, instead of `c_down` factors.
        t_up (`int`, *optional*): total temporal up-sampling of the decoder (default `t_down`).
        t_up_factors, c_up_factors (`list[int]`, *optional*): decoder factors (default: the encoder's reversed
            when given, else automatic).
        c_up_stages (`list[int]`, *optional*): explicit channel count after every decoder stage, ending with
            `c_out` (default: the encoder's `c_stages` reversed, when given).
        channel_mlp_ratio (`float`, *optional*): `None` mixes channels linearly; a ratio uses a two-layer channel
            MLP with hidden width `round(min(C_s, C_{s+1}) * ratio)`.
        f_hidden (`int`): features per channel F inside the encoder and decoder.
        d_latent (`int`): latent width D per reduced channel and time step.
        k_stem, k_down, k_up, k_refine (`int`): causal kernel sizes of the stem, down-sampling, up-sampling and
            refinement convolutions.
        dropout (`float`): dropout after every block (and inside channel MLPs).
        aa_kernel_size (`int`): binomial causal low-pass before every strided down-sampling (<= 1: none).
        aa_kernel_size_up (`int`, *optional*): low-pass after every up-sampling (default `aa_kernel_size`).
        tie_channel_mats (`bool`): the decoder expands channels with the transposes of the encoder's matrices
            (needs linear mixing and decoder stages that mirror the encoder's).
        recon_loss (`str`): `"mse"`, `"l1"` or `"huber"` (with `huber_delta`).
    """

    model_type = "factorized_autoencoder"
    # transformers' common name for the width of the hidden states (per-channel features).
    attribute_map = {"hidden_size": "f_hidden"}

    c_in: int = 68
    c_out: int | None = None
    c_down: int = 4
    t_down: int = 4
    t_down_factors: list[int] | None = None
    c_down_factors: list[int] | None = None
    c_stages: list[int] | None = None
    t_up: int | None = None
    t_up_factors: list[int] | None = None
    c_up_factors: list[int] | None = None
    c_up_stages: list[int] | None = None
    channel_mlp_ratio: float | None = None
    f_hidden: int = 32
    d_latent: int = 128
    k_stem: int = 7
    k_down: int = 5
    k_up: int = 4
    k_refine: int = 7
    dropout: float = 0.0
    aa_kernel_size: int = 3
    aa_kernel_size_up: int | None = None
    tie_channel_mats: bool = False
    recon_loss: str = "mse"
    huber_delta: float = 1.0

    def __post_init__(self, **kwargs):
        for name in ("c_in", "c_down", "t_down", "f_hidden", "d_latent", "k_stem", "k_down", "k_up", "k_refine"):
            require_positive_int(name, getattr(self, name))
        if self.c_out is None:
            self.c_out = self.c_in
        if self.t_up is None:
            self.t_up = self.t_down
        if self.aa_kernel_size_up is None:
            self.aa_kernel_size_up = self.aa_kernel_size
        for name in ("c_out", "t_up"):
            require_positive_int(name, getattr(self, name))
        for name in ("aa_kernel_size", "aa_kernel_size_up"):
            require_positive_int(name, getattr(self, name), allow_zero=True)
        for name in ("t_down_factors", "c_down_factors", "c_stages", "t_up_factors", "c_up_factors", "c_up_stages"):
            value = getattr(self, name)
            if value is not None:
                require_int_list(name, value, min_len=0)
                setattr(self, name, list(value))
        require(0.0 <= float(self.dropout) < 1.0, f"`dropout` must be in [0, 1), got {self.dropout}")
        require(
            self.channel_mlp_ratio is None or float(self.channel_mlp_ratio) > 0,
            f"`channel_mlp_ratio` must be positive (or None: linear mixing), got {self.channel_mlp_ratio}",
        )
        require(
            self.recon_loss in RECONSTRUCTION_LOSSES,
            f"`recon_loss` must be one of {list(RECONSTRUCTION_LOSSES)}, got {self.recon_loss!r}",
        )
        require(float(self.huber_delta) > 0, f"`huber_delta` must be positive, got {self.huber_delta}")
        # Resolve (and so validate) both stage plans now: a bad combination fails here, not in the first forward.
        encoder, decoder = self.encoder_stages, self.decoder_stages
        if self.tie_channel_mats:
            require(
                self.channel_mlp_ratio is None,
                "`tie_channel_mats=True` needs linear channel mixing: set `channel_mlp_ratio` to None",
            )
            mirrored = [(c_next, c) for _, c, c_next in reversed(encoder)]
            require(
                [(c, c_next) for _, c, c_next in decoder] == mirrored,
                f"`tie_channel_mats=True` needs decoder stages that mirror the encoder's: the decoder maps channels "
                f"{[(c, n) for _, c, n in decoder]}, the transposed encoder matrices {mirrored}",
            )
        super().__post_init__(**kwargs)
        n = self.contract_num_channels
        require(n is None or n == self.c_in, f"the signal contract lists {n} channels but `c_in` is {self.c_in}")

    @property
    def encoder_stages(self) -> list[tuple[int, int, int]]:
        """`(time factor, channels in, channels out)` of every encoder stage."""
        t_factors = _factors(self.t_down, self.t_down_factors, "t_down")
        if self.c_stages is not None:
            require(
                len(self.c_stages) == len(t_factors),
                f"`c_stages` has {len(self.c_stages)} entries but there are {len(t_factors)} temporal factors "
                f"{t_factors}; give one channel count per stage",
            )
            require(all(c > 0 for c in self.c_stages), f"`c_stages` must be positive, got {self.c_stages}")
            channels = [self.c_in, *self.c_stages]
        else:
            require(
                self.c_in % self.c_down == 0,
                f"`c_in` ({self.c_in}) must be divisible by `c_down` ({self.c_down}); or give `c_stages`",
            )
            t_factors, c_factors = _align(t_factors, _factors(self.c_down, self.c_down_factors, "c_down"))
            channels = [self.c_in]
            for c_factor in c_factors:
                channels.append(channels[-1] // c_factor)
                require(
                    channels[-2] % c_factor == 0,
                    f"channel factor {c_factor} does not divide {channels[-2]} channels (`c_down_factors`)",
                )
        return [(t, channels[i], channels[i + 1]) for i, t in enumerate(t_factors)]

    @property
    def decoder_stages(self) -> list[tuple[int, int, int]]:
        """`(time factor, channels in, channels out)` of every decoder stage, from the encoder's `C_red` to `c_out`."""
        t_up_factors = self.t_up_factors
        if t_up_factors is None and self.t_down_factors is not None:
            t_up_factors = list(reversed(self.t_down_factors))
        t_factors = _factors(self.t_up, t_up_factors, "t_up")
        c_up_stages = self.c_up_stages
        if c_up_stages is None and self.c_stages is not None:
            c_up_stages = [*reversed(self.c_stages[:-1]), self.c_out]
        start = self.latent_channels
        if c_up_stages is not None:
            require(
                len(c_up_stages) == len(t_factors),
                f"`c_up_stages` has {len(c_up_stages)} entries but the decoder has {len(t_factors)} temporal factors "
                f"{t_factors}; give one channel count per stage",
            )
            require(
                c_up_stages[-1] == self.c_out if c_up_stages else start == self.c_out,
                f"the decoder stages must end at `c_out` = {self.c_out} channels, got {c_up_stages}",
            )
            channels = [start, *c_up_stages]
        else:
            c_up_factors = self.c_up_factors
            if c_up_factors is None and self.c_down_factors is not None:
                c_up_factors = list(reversed(self.c_down_factors))
            require(
                self.c_out % start == 0,
                f"`c_out` ({self.c_out}) is not a multiple of the {start} latent channels; give `c_up_stages`",
            )
            t_factors, c_factors = _align(t_factors, _factors(self.c_out // start, c_up_factors, "c_up"))
            channels = [start]
            for c_factor in c_factors:
                channels.append(channels[-1] * c_factor)
        return [(t, channels[i], channels[i + 1]) for i, t in enumerate(t_factors)]

    @property
    def latent_channels(self) -> int:
        """`C_red`: channels of the latents."""
        stages = self.encoder_stages
        return stages[-1][2] if stages else self.c_in

    @property
    def num_hidden_layers(self) -> int:
        """Encoder stages (the hidden states add the stem's output and the latents)."""
        return len(self.encoder_stages)

    def latent_length(self, num_samples: int) -> int:
        """`T_red` of an input of `num_samples` steps: ceil of the successive divisions."""
        for t_factor, _, _ in self.encoder_stages:
            num_samples = -(-num_samples // t_factor)
        return num_samples


def _factors(total: int, factors: list[int] | None, name: str) -> list[int]:
    """Per-stage factors with product `total`: as given (checked), else 2s and then the odd remainder."""
    if factors is not None:
        require(all(f >= 1 for f in factors), f"`{name}_factors` must be >= 1, got {factors}")
        require(
            math.prod(factors) == total,
            f"`{name}_factors` {factors} multiply to {math.prod(factors)}, not `{name}` = {total}",
        )
        return list(factors)
    out, remaining = [], total
    while remaining % 2 == 0:
        out.append(2)
        remaining //= 2
    return out + ([remaining] if remaining > 1 else [])


def _align(t_factors: list[int], c_factors: list[int]) -> tuple[list[int], list[int]]:
    """Both lists padded with 1s to the longer one's length (one stage per pair)."""
    n = max(len(t_factors), len(c_factors))
    return t_factors + [1] * (n - len(t_factors)), c_factors + [1] * (n - len(c_factors))
