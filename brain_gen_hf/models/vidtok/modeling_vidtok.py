"""Vidtok and VidtokRVQ as transformers models: causal 3-D video tokenizers for Gaussian-interpolated sensor images.

API (both families):

* `encode(input_values (B, C, T, H, W))` -> `VidtokEncoding(codes, latents, aux_loss)`: FSQ codes `(B, T', H', W')`
  (Vidtok) or RVQ codes `(B, T', H', W', Q)` (VidtokRVQ), int64, and the quantised latent `(B, z, T', H', W')`.
* `decode(codes)` -> reconstructed images `(B, out_ch, T, H, W)`; with `sensor_images=` (a
  `brain_gen_hf.data.GaussianSensorImages`) the channel signals `(B, C, T)` read back from them.
  `decode_latents(latents)` decodes a latent directly; `codes_to_latents(codes)` is the lookup alone.
* `forward(input_values)` -> `VidtokOutput`: the objective (`loss` and its terms), `reconstruction` and `codes`.
  The input is its own target (an autoencoder).

The training step: the FSQ entropy weight is annealed over `global_step // 2` annealing steps. Pass `global_step`
to `forward`/`encode`, or let the trainer set it: `set_training_step(step)` (called by
`brain_gen_hf.training.trainer` before every training forward) stores the step the next calls use when they are
given none. The reference never passed it (its annealing stayed at step 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers.utils import ModelOutput
from transformers.utils.generic import can_return_tuple

from ...modeling_utils import COMMON_FORWARD_KWARGS, BrainGenPreTrainedModel, reject_unknown_kwargs
from .autoencoder import VidtokDecoder, VidtokEncoder
from .configuration_vidtok import VidtokBaseConfig, VidtokConfig, VidtokRVQConfig
from .fsq import FiniteScalarQuantizer
from .loss_vidtok import VidtokReconstructionLoss
from .residual_quantizer import VideoResidualQuantizer


@dataclass
class VidtokEncoding(ModelOutput):
    """
    codes: int64 FSQ codes `(B, T', H', W')` (`(B, T', H', W', c)` with several codebooks) or RVQ codes
        `(B, T', H', W', Q)`.
    latents: the quantised latent `(B, z_channels, T', H', W')` (what the decoder reads).
    aux_loss: the quantiser's auxiliary loss (FSQ entropy + commitment, RVQ mean commitment).
    """

    codes: torch.Tensor | None = None
    latents: torch.Tensor | None = None
    aux_loss: torch.Tensor | None = None


@dataclass
class VidtokOutput(ModelOutput):
    """
    loss: the objective (see `loss_vidtok.py`): L1 negative log-likelihood with the learned log-variance, weighted
        temporal terms and the weighted auxiliary loss.
    nll_loss, aux_loss, temporal_pcc_loss, temporal_amp_loss, temporal_phase_loss, temporal_cov_loss: its terms
        (unweighted; a term whose weight is 0 is reported as 0).
    reconstruction: `(B, out_ch, T, H, W)`; codes: the input's codes (see `VidtokEncoding`).
    hidden_states: with `output_hidden_states=True`, the encoder's stage outputs, time-major with the width last
        (transformers' convention) `(B, H_i, W_i, T_i, width_i)`: the first convolution, each resolution level, the
        middle block, then the latent before quantisation. They are the tensors the next stage reads.
    attentions: with `output_attentions=True`, the per-frame attention maps `(B * T', 1, H'W', H'W')` of the encoder's
        and the decoder's middle blocks.
    """

    loss: torch.Tensor | None = None
    nll_loss: torch.Tensor | None = None
    aux_loss: torch.Tensor | None = None
    temporal_pcc_loss: torch.Tensor | None = None
    temporal_amp_loss: torch.Tensor | None = None
    temporal_phase_loss: torch.Tensor | None = None
    temporal_cov_loss: torch.Tensor | None = None
    reconstruction: torch.Tensor | None = None
    codes: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


class VidtokPreTrainedModel(BrainGenPreTrainedModel):
    """What Vidtok and VidtokRVQ share (see the module docstring). Submodule names follow the reference
    (`encoder`, `decoder`, `regularization`); `reconstruction_loss.logvar` is the objective's learned log-variance."""

    config_class = VidtokBaseConfig
    main_input_name = "input_values"
    supports_gradient_checkpointing = True

    def __init__(self, config: VidtokBaseConfig):
        super().__init__(config)
        self.encoder = VidtokEncoder(config)
        self.decoder = VidtokDecoder(config)
        self.regularization = self._build_quantizer(config)
        self.reconstruction_loss = VidtokReconstructionLoss(config)
        self.training_step = 0
        self.post_init()
        for module, frozen in ((self.encoder, config.fix_encoder), (self.decoder, config.fix_decoder)):
            if frozen:
                module.requires_grad_(False)

    def _build_quantizer(self, config):
        raise NotImplementedError

    def get_input_embeddings(self) -> None:
        """`None`: the model reads continuous images, it has no input token table."""
        return None

    def set_input_embeddings(self, value) -> None:
        raise ValueError(f"{type(self).__name__} reads continuous images: it has no input token table to replace")

    # ------------------------------------------------------------------ steps
    def set_training_step(self, step: int) -> None:
        """The optimiser step the next calls without `global_step` use (the trainer calls this every step)."""
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"the training step must be an int >= 0, got {step!r}")
        self.training_step = step

    def _step(self, global_step: int | None) -> int:
        if global_step is None:
            return self.training_step
        if isinstance(global_step, bool) or not isinstance(global_step, int) or global_step < 0:
            raise ValueError(f"global_step must be an int >= 0 (the training step) or None, got {global_step!r}")
        return global_step

    # ------------------------------------------------------------------ checks
    def _check_video(self, x: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        x = self.check_signal(x, name="input_values", ndim=5, num_channels=cfg.in_channels)
        height, width = x.shape[-2:]
        if height % cfg.spatial_factor or width % cfg.spatial_factor:
            raise ValueError(
                f"input_values frames are {height}x{width}; H and W must be multiples of {cfg.spatial_factor} "
                f"(2 ** the number of spatial downsampling levels); resize the sensor images"
            )
        return x

    def _check_labels(self, labels: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
        labels = self.check_signal(labels, name="labels", ndim=5)
        if labels.shape != reconstruction.shape:
            raise ValueError(
                f"labels must have the reconstruction's shape {tuple(reconstruction.shape)}, got {tuple(labels.shape)}"
            )
        return labels

    def _check_codes(self, codes: torch.Tensor) -> torch.Tensor:
        ndim = self._codes_ndim()
        self.check_tokens(codes, vocab_size=self._vocab_size(), name="codes", ndim=ndim)
        if ndim == 5 and codes.shape[-1] != self._codes_per_position():
            raise ValueError(
                f"codes must have {self._codes_per_position()} entries in the last dimension, got {codes.shape[-1]}"
            )
        return codes

    # ------------------------------------------------------------------ api
    def _encode(
        self, x: torch.Tensor, step: int, hidden_states: list | None = None, attentions: list | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        latent = self.encoder(x, hidden_states, attentions)
        if hidden_states is not None:  # the latent the quantiser reads, (B, H', W', T', z) like the stages
            view = latent.permute(0, 3, 4, 2, 1)
            hidden_states.append(view)
            latent = view.permute(0, 4, 3, 1, 2)
        quantized, codes, aux = self.regularization(latent, n_steps=step // 2)
        return quantized, codes.long(), aux

    def encode(self, input_values: torch.Tensor, global_step: int | None = None) -> VidtokEncoding:
        """Video `(B, C, T, H, W)` -> codes and quantised latents (see the module docstring).

        VidtokRVQ in training mode updates its codebooks (the reference's behaviour); use eval mode to only read.
        """
        x = self._check_video(input_values)
        latents, codes, aux = self._encode(x, self._step(global_step))
        return VidtokEncoding(codes=codes, latents=latents, aux_loss=aux)

    def codes_to_latents(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes -> the quantised latent `(B, z_channels, T', H', W')`."""
        return self.regularization.indices_to_latent(self._check_codes(codes))

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Latent `(B, z_channels, T', H', W')` -> images `(B, out_ch, T, H, W)` (every decoded frame, uncropped)."""
        latents = self.check_signal(latents, name="latents", ndim=5, num_channels=self.config.z_channels)
        return self.decoder(latents)

    def decode(self, codes: torch.Tensor, sensor_images=None) -> torch.Tensor:
        """Codes -> images `(B, out_ch, T, H, W)`; with `sensor_images` (the `GaussianSensorImages` that made the
        input images) the channel signals `(B, C, T)` read back from single-channel images."""
        images = self.decoder(self.codes_to_latents(codes))
        if sensor_images is None:
            return images
        if images.shape[1] != 1:
            raise ValueError(f"signals are read back from single-channel images; this model decodes {images.shape[1]}")
        return sensor_images.images_to_signal(images[:, 0])

    @can_return_tuple
    def forward(
        self,
        input_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        global_step: int | None = None,
        *,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> VidtokOutput:
        """Reconstruct a video through its codes and compute the objective.

        Args:
            input_values: `(B, in_channels, T, H, W)` float video (H and W multiples of `config.spatial_factor`); it is
                the target unless `labels` is given.
            labels: the target video, shaped like the reconstruction `(B, out_ch, T, H, W)` (default: the input).
            global_step: the training step (FSQ entropy annealing); default: the last `set_training_step` value.
            output_hidden_states, output_attentions: see `VidtokOutput`; default: the config's values.
            return_dict: `False` returns a tuple of the non-`None` fields.

        The temporal loss terms (when weighted) draw their pixels from the global torch RNG. If the decoder returns
        more frames than the input has, the last T are kept.
        """
        reject_unknown_kwargs(kwargs, COMMON_FORWARD_KWARGS, f"{type(self).__name__}.forward")
        cfg = self.config
        output_hidden_states = cfg.output_hidden_states if output_hidden_states is None else output_hidden_states
        output_attentions = cfg.output_attentions if output_attentions is None else output_attentions
        hidden_states = [] if output_hidden_states else None
        attentions = [] if output_attentions else None
        x = self._check_video(input_values)
        step = self._step(global_step)
        if cfg.fix_encoder:
            with torch.no_grad():
                latents, codes, aux = self._encode(x, step, hidden_states, attentions)
        else:
            latents, codes, aux = self._encode(x, step, hidden_states, attentions)
        reconstruction = self.decoder(latents, attentions)
        if reconstruction.shape[2] != x.shape[2]:
            reconstruction = reconstruction[:, :, -x.shape[2] :]
        target = x if labels is None else self._check_labels(labels, reconstruction)
        terms = self.reconstruction_loss(reconstruction, target, aux)
        return VidtokOutput(
            loss=terms["loss"],
            nll_loss=terms["nll_loss"].detach(),
            aux_loss=aux.detach(),
            temporal_pcc_loss=terms["temporal_pcc_loss"].detach(),
            temporal_amp_loss=terms["temporal_amp_loss"].detach(),
            temporal_phase_loss=terms["temporal_phase_loss"].detach(),
            temporal_cov_loss=terms["temporal_cov_loss"].detach(),
            reconstruction=reconstruction,
            codes=codes,
            hidden_states=tuple(hidden_states) if hidden_states is not None else None,
            attentions=tuple(attentions) if attentions is not None else None,
        )


class VidtokModel(VidtokPreTrainedModel):
    """Vidtok: causal 3-D autoencoder with finite scalar quantisation (see the module docstring)."""

    config_class = VidtokConfig

    def _build_quantizer(self, config: VidtokConfig) -> FiniteScalarQuantizer:
        return FiniteScalarQuantizer(
            config.levels,
            config.z_channels,
            num_codebooks=config.num_codebooks,
            entropy_loss_weight=config.entropy_loss_weight,
            entropy_loss_annealing_steps=config.entropy_loss_annealing_steps,
            entropy_loss_annealing_factor=config.entropy_loss_annealing_factor,
            commitment_loss_weight=config.commitment_loss_weight,
            diversity_gamma=config.diversity_gamma,
            inv_temperature=config.inv_temperature,
        )

    def _codes_ndim(self) -> int:
        return 4 if self.config.num_codebooks == 1 else 5

    def _codes_per_position(self) -> int:
        return self.config.num_codebooks

    def _vocab_size(self) -> int:
        return self.config.codebook_size


class VidtokRVQModel(VidtokPreTrainedModel):
    """VidtokRVQ: causal 3-D autoencoder with a residual VQ of EMA codebooks (see the module docstring)."""

    config_class = VidtokRVQConfig

    def _build_quantizer(self, config: VidtokRVQConfig) -> VideoResidualQuantizer:
        return VideoResidualQuantizer(config)

    def _codes_ndim(self) -> int:
        return 5

    def _codes_per_position(self) -> int:
        return self.config.num_quantizers

    def _vocab_size(self) -> int:
        return self.config.codebook_size

    @torch.no_grad()
    def init_codebooks(self, input_values: torch.Tensor, seed: int | None = None) -> None:
        """k-means-initialise every RVQ level from a batch of videos (the reference does this on its first forward).

        With `seed`, the global RNG is seeded inside a forked RNG scope, so the result equals the reference's
        `torch.manual_seed(seed); model(batch)` while the caller's RNG stream is left untouched.
        """
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"seed must be an int or None, got {seed!r}")
        x = self._check_video(input_values)
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            self.regularization.init_codebooks(self.encoder(x))
