"""Hyper-parameters shared by the causal RVQ brain tokenizers (BrainOmni and BrainTokMix).

Field names follow the reference constructors so brain-gen YAMLs convert one to one.
"""

from __future__ import annotations

import math

from ...configuration_utils import (
    BrainGenConfig,
    is_real_number,
    require,
    require_int_list,
    require_positive_int,
)

CODEBOOK_INIT_MODES = ("kmeans_on_first_forward", "explicit")


class CausalRVQTokenizerConfig(BrainGenConfig):
    r"""
    Windows -> causal SEANet encoder -> residual VQ -> causal SEANet decoder.

    Args:
        window_length (`int`): samples per window L; windows are tokenized independently. Must be a multiple
            of the hop `prod(ratios)`.
        n_filters (`int`): SEANet base width.
        ratios (`list[int]`): SEANet up/down-sampling ratios (the encoder applies them in reverse).
        kernel_size, last_kernel_size (`int`): kernels of the first and last SEANet convolutions.
        n_dim (`int`): latent width (see the family config for its exact meaning).
        n_neuro (`int`): number of latent channels C' per token step.
        n_head (`int`): attention heads (BrainOmni's cross-attention; unused by BrainTokMix).
        codebook_dim (`int`): codeword width (a projection is added when it differs from the token width).
        codebook_size (`int`): codewords per RVQ level K.
        num_quantizers (`int`): RVQ levels Q.
        n_residual_layers (`int`): SEANet residual blocks per scale.
        lstm_layers (`int`): LSTM layers at the bottleneck (0 = none).
        dropout (`float`): attention dropout (training only).
        rotation_trick (`bool`): rotation-trick gradients through the quantiser (else straight-through).
        noise_std (`float`): Gaussian noise added to the input in training mode.
        num_sensors (`int`): channel slots (BrainOmni "source" space) or input channels (BrainTokMix).
        normalize (`bool`): L2-normalise tokens before the RVQ and z-score each target window in the loss.
        shuffle_channels (`bool`): randomly permute channels in training mode (augmentation).
        kmeans_iters (`int`): Lloyd iterations of the codebook k-means init.
        codebook_init (`str`): `"kmeans_on_first_forward"` (the reference: the first forward of an uninitialised
            model runs k-means on its batch) or `"explicit"` (uninitialised codebooks raise; call
            `model.init_codebooks(...)`).
        decode_window_chunk (`int`, *optional*): windows decoded at once by `decode` (caps memory); default
            `max(1, decode_max_tokens // tokens_per_window)`.
        decode_max_tokens (`int`): token steps decoded at once when `decode_window_chunk` is unset.
    """

    window_length: int = 8
    n_filters: int = 2
    ratios: list[int] | None = None
    kernel_size: int = 3
    last_kernel_size: int = 3
    n_dim: int = 8
    n_neuro: int = 2
    n_head: int = 2
    codebook_dim: int = 8
    codebook_size: int = 16
    num_quantizers: int = 2
    n_residual_layers: int = 1
    lstm_layers: int = 0
    dropout: float = 0.0
    rotation_trick: bool = True
    noise_std: float = 0.0
    num_sensors: int = 68
    normalize: bool = False
    shuffle_channels: bool = False
    kmeans_iters: int = 10
    codebook_init: str = "kmeans_on_first_forward"
    decode_window_chunk: int | None = None
    decode_max_tokens: int = 4096

    def __post_init__(self, **kwargs):
        if self.ratios is None:
            self.ratios = [2, 2]
        self.ratios = list(self.ratios)
        require_int_list("ratios", self.ratios)
        for name in (
            "window_length",
            "n_filters",
            "kernel_size",
            "last_kernel_size",
            "n_dim",
            "n_neuro",
            "n_head",
            "codebook_dim",
            "codebook_size",
            "num_quantizers",
            "n_residual_layers",
            "num_sensors",
            "kmeans_iters",
            "decode_max_tokens",
        ):
            require_positive_int(name, getattr(self, name))
        require(
            self.codebook_size >= 2,
            f"`codebook_size` must be at least 2 (a single codeword encodes nothing), got {self.codebook_size}",
        )
        require_positive_int("lstm_layers", self.lstm_layers, allow_zero=True)
        if self.decode_window_chunk is not None:
            require_positive_int("decode_window_chunk", self.decode_window_chunk)
        require(
            self.window_length % self.hop_length == 0,
            f"`window_length` ({self.window_length}) must be a multiple of the downsampling factor "
            f"prod(ratios) = {self.hop_length}",
        )
        require(
            is_real_number(self.dropout) and 0.0 <= self.dropout < 1.0,
            f"`dropout` must be in [0, 1), got {self.dropout!r}",
        )
        require(
            is_real_number(self.noise_std) and self.noise_std >= 0.0,
            f"`noise_std` must be >= 0, got {self.noise_std!r}",
        )
        require(
            self.codebook_init in CODEBOOK_INIT_MODES,
            f"`codebook_init` must be one of {CODEBOOK_INIT_MODES}, got {self.codebook_init!r}",
        )
        super().__post_init__(**kwargs)

    @property
    def hop_length(self) -> int:
        """Input samples per token step."""
        return math.prod(self.ratios)

    @property
    def tokens_per_window(self) -> int:
        return self.window_length // self.hop_length

    @property
    def token_dim(self) -> int:
        """Width of one latent token (what the RVQ quantises)."""
        return self.n_dim
