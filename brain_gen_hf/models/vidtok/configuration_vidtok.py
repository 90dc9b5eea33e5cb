"""Configs of Vidtok (FSQ) and VidtokRVQ (residual VQ).

Field names follow the reference's `encoder` / `regularizer` dicts (flattened into one config) so brain-gen YAMLs
convert one to one (`convert_vidtok.py`); the reconstruction objective's settings (the reference's `VidtokLoss`) live
here too, since its learnable log-variance is a parameter of the model.
"""

from __future__ import annotations

import math

from ...configuration_utils import BrainGenConfig, is_real_number, require, require_int_list, require_positive_int

NORM_TYPES = ("groupnorm", "layernorm")
INTERPOLATION_MODES = ("nearest", "trilinear")
PAD_MODES = ("replicate", "constant", "reflect")
CODEBOOK_INIT_MODES = ("kmeans_on_first_forward", "explicit")


class VidtokBaseConfig(BrainGenConfig):
    r"""
    What Vidtok and VidtokRVQ share: the causal 3-D autoencoder over `(B, in_channels, T, H, W)` videos and the
    reconstruction objective.

    Args:
        in_channels (`int`): channels of the input video (1 for sensor images).
        out_ch (`int`): channels of the reconstruction.
        ch (`int`): base width; level i has width `ch * ch_mult[i]`.
        ch_mult (`list[int]`): width multipliers, one resolution level each (default `[1, 2, 4, 8]`).
        num_res_blocks (`int`): residual blocks per encoder level (the decoder has one more).
        dropout (`float`): dropout inside the residual blocks (training only).
        z_channels (`int`): latent width (what the quantiser reads).
        double_z (`bool`): kept for YAML compatibility; must be `False` (the quantised latent feeds the decoder).
        norm_type (`str`): `"groupnorm"` (groups of 4 channels, eps 1e-6) or `"layernorm"` (over channels).
        spatial_ds, tempo_ds (`list[int]`, *optional*): encoder levels that halve H and W / also halve T (temporal
            downsampling happens only at spatially downsampled levels). Defaults: every level but the last /
            `[n - 2, n - 3]`.
        spatial_us, tempo_us (`list[int]`, *optional*): decoder levels that double H and W / also double T.
            Defaults: levels `1 .. n - 1` / `[1, 2]`.
        time_downsample_factor (`int`): the encoder pads the front of a video to a multiple of this many frames.
        init_pad_mode (`str`): how that padding fills frames (`"replicate"` repeats the first frame).
        interpolation_mode (`str`): temporal upsampling, `"nearest"` or `"trilinear"`.
        resamp_with_conv (`bool`): strided convolutions (else average pooling) for spatial downsampling.
        tanh_out (`bool`): squash the reconstruction with tanh.
        fix_encoder, fix_decoder (`bool`): freeze the encoder / decoder (no gradients).
        logvar_init (`float`): initial value of the objective's learnable log-variance (a model parameter).
        aux_loss_weight (`float`): weight of the quantiser's auxiliary loss (the reference's
            `regularization_weights["aux_loss"]`).
        temporal_pcc_weight, temporal_freq_amp_weight, temporal_freq_phase_weight, temporal_cov_weight (`float`):
            weights of the temporal terms computed on `loss_num_pixels` random pixels: `exp(-pcc)`, spectral
            amplitude and phase L1, and the mean absolute difference of the pixels' covariance matrices.
        loss_num_pixels (`int`): pixels drawn (with replacement) for the temporal terms.
        image_size, image_sigma_scale, image_r_max_factor, image_normalize: how training turns channel signals into
            the images the model reads (`brain_gen_hf.data.gaussian_sensor_images`): H = W, Gaussian kernel width
            and cut-off, per-window z-scoring. The model itself accepts frames of any size that fits its downsampling.
    """

    attribute_map = {"hidden_size": "ch", "num_hidden_layers": "num_res_blocks"}

    in_channels: int = 1
    out_ch: int = 1
    ch: int = 64
    ch_mult: list[int] | None = None
    num_res_blocks: int = 2
    dropout: float = 0.0
    z_channels: int = 6
    double_z: bool = False
    norm_type: str = "groupnorm"
    spatial_ds: list[int] | None = None
    tempo_ds: list[int] | None = None
    spatial_us: list[int] | None = None
    tempo_us: list[int] | None = None
    time_downsample_factor: int = 4
    init_pad_mode: str = "replicate"
    interpolation_mode: str = "nearest"
    resamp_with_conv: bool = True
    tanh_out: bool = False
    fix_encoder: bool = False
    fix_decoder: bool = False
    logvar_init: float = 0.0
    aux_loss_weight: float = 0.0
    temporal_pcc_weight: float = 0.0
    temporal_freq_amp_weight: float = 0.0
    temporal_freq_phase_weight: float = 0.0
    temporal_cov_weight: float = 0.0
    loss_num_pixels: int = 64
    image_size: int = 32
    image_sigma_scale: float = 0.75
    image_r_max_factor: float = 4.0
    image_normalize: bool = False

    def __post_init__(self, **kwargs):
        if self.ch_mult is None:
            self.ch_mult = [1, 2, 4, 8]
        require_int_list("ch_mult", self.ch_mult)
        self.ch_mult = list(self.ch_mult)
        n = len(self.ch_mult)
        defaults = {
            "spatial_ds": list(range(n - 1)),
            "tempo_ds": [i for i in (n - 2, n - 3) if i >= 0],
            "spatial_us": list(range(1, n)),
            "tempo_us": [i for i in (1, 2) if i < n],
        }
        for name, default in defaults.items():
            value = getattr(self, name)
            value = default if value is None else value
            require(
                isinstance(value, (list, tuple)) and all(isinstance(i, int) and not isinstance(i, bool) for i in value),
                f"`{name}` must be a list of level indices, got {value!r}",
            )
            setattr(self, name, list(value))
        for name in ("in_channels", "out_ch", "ch", "num_res_blocks", "z_channels", "time_downsample_factor"):
            require_positive_int(name, getattr(self, name))
        require_positive_int("loss_num_pixels", self.loss_num_pixels)
        require_positive_int("image_size", self.image_size)
        require(
            is_real_number(self.image_sigma_scale) and self.image_sigma_scale > 0,
            f"`image_sigma_scale` must be > 0, got {self.image_sigma_scale!r}",
        )
        require(
            is_real_number(self.image_r_max_factor) and self.image_r_max_factor >= 0,
            f"`image_r_max_factor` must be >= 0, got {self.image_r_max_factor!r}",
        )
        require(not self.double_z, "`double_z` must be False: the quantised latent (z_channels wide) feeds the decoder")
        require(self.norm_type in NORM_TYPES, f"`norm_type` must be one of {NORM_TYPES}, got {self.norm_type!r}")
        if self.norm_type == "groupnorm":
            widths = [self.ch] + [self.ch * m for m in self.ch_mult]
            require(
                all(w % 4 == 0 for w in widths),
                f"groupnorm uses groups of 4 channels: every width (ch * ch_mult = {widths}) must be a multiple of 4",
            )
        require(
            self.interpolation_mode in INTERPOLATION_MODES,
            f"`interpolation_mode` must be one of {INTERPOLATION_MODES}, got {self.interpolation_mode!r}",
        )
        require(
            self.init_pad_mode in PAD_MODES, f"`init_pad_mode` must be one of {PAD_MODES}, got {self.init_pad_mode!r}"
        )
        # Temporal resampling only happens at spatially resampled levels (the reference ignores the others).
        require(
            set(self.tempo_ds) <= set(self.spatial_ds),
            f"`tempo_ds` {self.tempo_ds} must be a subset of `spatial_ds` {self.spatial_ds}",
        )
        require(
            set(self.tempo_us) <= set(self.spatial_us),
            f"`tempo_us` {self.tempo_us} must be a subset of `spatial_us` {self.spatial_us}",
        )
        for name in ("spatial_ds", "tempo_ds", "spatial_us", "tempo_us"):
            bad = [i for i in getattr(self, name) if not 0 <= i < n]
            require(not bad, f"`{name}` has levels {bad} outside [0, {n}) (len(ch_mult) = {n})")
        require(
            len(set(self.spatial_ds)) == len(self.spatial_us),
            f"the encoder halves H and W {len(set(self.spatial_ds))} times (`spatial_ds`) but the decoder doubles "
            f"them {len(set(self.spatial_us))} times (`spatial_us`)",
        )
        require(
            is_real_number(self.dropout) and 0.0 <= self.dropout < 1.0,
            f"`dropout` must be in [0, 1), got {self.dropout!r}",
        )
        for name in (
            "logvar_init",
            "aux_loss_weight",
            "temporal_pcc_weight",
            "temporal_freq_amp_weight",
            "temporal_freq_phase_weight",
            "temporal_cov_weight",
        ):
            value = getattr(self, name)
            require(is_real_number(value) and math.isfinite(value), f"`{name}` must be a finite number, got {value!r}")
            require(name == "logvar_init" or value >= 0, f"`{name}` must be >= 0, got {value!r}")
            setattr(self, name, float(value))
        super().__post_init__(**kwargs)

    @property
    def spatial_factor(self) -> int:
        """H and W of the input must be multiples of this (the latent is `H / spatial_factor` high)."""
        return 2 ** len(set(self.spatial_ds))

    @property
    def temporal_factor(self) -> int:
        """Frames per latent frame."""
        return 2 ** len(set(self.tempo_ds))


class VidtokConfig(VidtokBaseConfig):
    r"""
    Vidtok: the causal 3-D autoencoder with finite scalar quantisation (FSQ, Mentzer et al. 2023, arXiv 2309.15505).
    See `VidtokBaseConfig` for the autoencoder and objective fields.

    Args:
        levels (`list[int]`): levels per FSQ dimension; the implicit codebook has `prod(levels)` codes.
        num_codebooks (`int`): FSQ codebooks; codes are `(B, T', H', W')` with one, `(B, T', H', W', c)` with more.
        entropy_loss_weight (`float`): weight of the factorised code-entropy term of the aux loss.
        entropy_loss_annealing_steps (`int`), entropy_loss_annealing_factor (`float`): the entropy weight starts at
            `factor * weight` and falls linearly to `weight` over this many annealing steps (one per two training
            steps, as in the reference: `global_step // 2`).
        commitment_loss_weight (`float`): weight of `mse(z, codes)` in the aux loss.
        diversity_gamma (`float`): weight of the codebook entropy (diversity) inside the entropy term.
        inv_temperature (`float`): inverse temperature of the entropy term's soft assignments.
    """

    model_type = "vidtok"

    levels: list[int] | None = None
    num_codebooks: int = 1
    entropy_loss_weight: float = 0.0
    entropy_loss_annealing_steps: int = 0
    entropy_loss_annealing_factor: float = 1.0
    commitment_loss_weight: float = 0.0
    diversity_gamma: float = 1.0
    inv_temperature: float = 100.0

    def __post_init__(self, **kwargs):
        if self.levels is None:
            self.levels = [8] * 6
        require_int_list("levels", self.levels)
        self.levels = list(self.levels)
        require(min(self.levels) >= 2, f"every FSQ dimension needs at least 2 levels, got {self.levels}")
        require_positive_int("num_codebooks", self.num_codebooks)
        require_positive_int("entropy_loss_annealing_steps", self.entropy_loss_annealing_steps, allow_zero=True)
        for name in (
            "entropy_loss_weight",
            "entropy_loss_annealing_factor",
            "commitment_loss_weight",
            "diversity_gamma",
            "inv_temperature",
        ):
            value = getattr(self, name)
            require(
                is_real_number(value) and math.isfinite(value) and value >= 0,
                f"`{name}` must be a finite number >= 0, got {value!r}",
            )
            setattr(self, name, float(value))
        super().__post_init__(**kwargs)

    @property
    def codebook_size(self) -> int:
        """Codes per FSQ codebook: `prod(levels)`."""
        return math.prod(self.levels)


class VidtokRVQConfig(VidtokBaseConfig):
    r"""
    VidtokRVQ: the causal 3-D autoencoder with a residual VQ of EMA codebooks in place of FSQ. See
    `VidtokBaseConfig` for the autoencoder and objective fields.

    Args:
        codebook_size (`int`): codewords per RVQ level K.
        codebook_dim (`int`): codeword width (a projection is added when it differs from `z_channels`).
        num_quantizers (`int`): RVQ levels Q; codes are `(B, T', H', W', Q)`.
        normalize (`bool`): L2-normalise the latents before the RVQ.
        rotation_trick (`bool`): rotation-trick gradients through the quantiser (else straight-through).
        kmeans_iters (`int`): Lloyd iterations of the codebook k-means init.
        codebook_init (`str`): `"kmeans_on_first_forward"` (the reference: the first forward of an uninitialised
            model runs k-means on its batch) or `"explicit"` (uninitialised codebooks raise; call
            `model.init_codebooks(...)`).
    """

    model_type = "vidtok_rvq"

    codebook_size: int = 16384
    codebook_dim: int = 2048
    num_quantizers: int = 8
    normalize: bool = False
    rotation_trick: bool = True
    kmeans_iters: int = 10
    codebook_init: str = "kmeans_on_first_forward"

    def __post_init__(self, **kwargs):
        for name in ("codebook_size", "codebook_dim", "num_quantizers", "kmeans_iters"):
            require_positive_int(name, getattr(self, name))
        require(self.codebook_size >= 2, f"`codebook_size` must be at least 2, got {self.codebook_size}")
        require(
            self.codebook_init in CODEBOOK_INIT_MODES,
            f"`codebook_init` must be one of {CODEBOOK_INIT_MODES}, got {self.codebook_init!r}",
        )
        super().__post_init__(**kwargs)
