"""Configs of the RVQ FlatGPT variants: language models over the codes of a brain tokenizer.

`tokenizer_config` is the config of the brain tokenizer (BrainTokMix or BrainOmni, resolved through
`AutoConfig` by its `model_type`); the tokenizer is a frozen sub-module of the LM (`tokenizer.*` weights), so one
`save_pretrained` folder holds tokenizer + LM.

The tokenizer turns a signal `(B, C, T)` into codes `(B, n_neuro, W, Q)`: W = T / hop token steps, n_neuro latent
channels, Q RVQ levels. All three variants read the same `input_ids`: the flat codes `(B, W * n_neuro * Q)` in the
tokenizer's order (time, latent, level; level fastest). They differ in what one backbone position holds:

* FlatGPTEmbedsRVQ (the paper LM): one code per position, one embedding table per level;
* FlatGPTRVQ: one (t, latent) stack of Q codes per position, all Q levels predicted jointly;
* FlatGPTMixRVQ: one time step (n_neuro * Q codes) per position.

The grid fields of FlatGPT keep their meaning: `input_shape (T, H, W)` raw samples / channels / levels,
`temporal_reduction` = the tokenizer hop, and `H // spatial_reduction[0]` = n_neuro latents.
"""

from __future__ import annotations

from transformers import AutoConfig, PreTrainedConfig

from ...configuration_utils import require, require_positive_int, sub_config_from
from .configuration_flatgpt import FlatGPTBaseConfig

BRAIN_TOKENIZERS = ("braintokmix", "brainomni_causal_tokenizer")
QUANTIZER_HEADS = ("joint", "tied")
# brain-gen's EmbeddingCorruptor default: per-level corruption probability for a 4-level RVQ.
DEFAULT_CORRUPTION_P_LEVELS = (0.01, 0.02, 0.05, 0.1)


def _tokenizer_config_from(value) -> PreTrainedConfig:
    value = sub_config_from(value if value is not None else {}, default_model_type=BRAIN_TOKENIZERS[0])
    require(
        value.model_type in BRAIN_TOKENIZERS,
        f"`tokenizer_config.model_type` must be one of {list(BRAIN_TOKENIZERS)}, got {value.model_type!r}",
    )
    return value


class _FlatGPTBrainTokenizerConfig(FlatGPTBaseConfig):
    r"""
    Shared fields of the RVQ FlatGPT variants (see the module docstring for the token layout).

    Args:
        tokenizer_config (`dict` or `PreTrainedConfig`): the brain tokenizer (`model_type` "braintokmix" or
            "brainomni_causal_tokenizer"). Defaults: BrainTokMix's config.
        train_tokenizer (`bool`): train the tokenizer jointly with the LM (otherwise it is frozen and always runs
            in eval mode).
        vocab_size (`int`, *optional*): codes per RVQ level; defaults to, and must equal, the tokenizer's
            `codebook_size`.
        input_shape (`list[int]`, *optional*): `(T, H, W)` of one training example; defaults to two tokenizer
            windows of `num_sensors` channels and `num_quantizers` levels.
        spatial_reduction (`list[int]`, *optional*): defaults to `(H // n_neuro, 1)`; `H // spatial_reduction[0]`
            must equal the tokenizer's `n_neuro`.
        temporal_reduction (`int`, *optional*): defaults to, and must equal, the tokenizer's hop.
    """

    # The brain tokenizer's config is a sub-config too (next to the backbone's): `attn_implementation` and `dtype`
    # set on the LM reach the tokenizer model it holds.
    sub_configs = {"backbone_config": AutoConfig, "tokenizer_config": AutoConfig}

    tokenizer_config: dict | PreTrainedConfig | None = None
    train_tokenizer: bool = False
    vocab_size: int | None = None
    spatial_reduction: list[int] | int | None = None
    temporal_reduction: int | None = None

    def __post_init__(self, **kwargs):
        tok = self.tokenizer_config = _tokenizer_config_from(self.tokenizer_config)
        if self.vocab_size is None:
            self.vocab_size = tok.codebook_size
        if self.temporal_reduction is None:
            self.temporal_reduction = tok.hop_length
        if self.input_shape is None:
            self.input_shape = [2 * tok.window_length, tok.num_sensors, tok.num_quantizers]
        if self.spatial_reduction is None:
            channels = (
                self.input_shape[1]
                if isinstance(self.input_shape, (list, tuple)) and len(self.input_shape) == 3
                else tok.n_neuro
            )
            self.spatial_reduction = [max(1, channels // tok.n_neuro), 1]
        super().__post_init__(**kwargs)

    # ------------------------------------------------------------------ token layout
    @property
    def num_latents(self) -> int:
        return self.tokenizer_config.n_neuro

    @property
    def num_levels(self) -> int:
        return self.tokenizer_config.num_quantizers

    @property
    def tokens_per_time_step(self) -> int:
        """Flat codes per token step (n_neuro * Q)."""
        return self.num_latents * self.num_levels

    @property
    def tokens_per_position(self) -> int:
        """Flat codes one backbone position holds (and predicts jointly for the next position)."""
        raise NotImplementedError

    @property
    def tokens_per_grid_step(self) -> int:
        # Token corruption counts flat codes: a step is one token step of the tokenizer.
        return self.tokens_per_time_step

    # ------------------------------------------------------------------ validation
    def _init_tokenizer_config(self) -> None:
        tok = self.tokenizer_config
        require(
            isinstance(self.train_tokenizer, bool), f"`train_tokenizer` must be a bool, got {self.train_tokenizer!r}"
        )
        require(
            self.vocab_size == tok.codebook_size,
            f"`vocab_size` ({self.vocab_size}) must equal the tokenizer's codebook_size ({tok.codebook_size}): "
            "the LM's vocabulary is the RVQ codebook",
        )
        require(
            self.temporal_reduction == tok.hop_length,
            f"`temporal_reduction` ({self.temporal_reduction}) must equal the tokenizer's hop "
            f"({tok.hop_length} samples per token step)",
        )
        reduced = self.reduced_shape
        require(
            reduced[1] == tok.n_neuro,
            f"`input_shape[1] // spatial_reduction[0]` = {reduced[1]} must equal the tokenizer's n_neuro "
            f"({tok.n_neuro} latent channels per token step)",
        )
        require(
            self.input_shape[0] % tok.window_length == 0,
            f"`input_shape[0]` ({self.input_shape[0]}) must be a multiple of the tokenizer's window_length "
            f"({tok.window_length})",
        )
        require(
            self.block_size == 1,
            f"{type(self).__name__} predicts whole positions jointly; `block_size` must be 1, got {self.block_size}",
        )


class FlatGPTEmbedsRVQConfig(_FlatGPTBrainTokenizerConfig):
    r"""
    FlatGPTEmbedsRVQ (the paper LM): one code per position, one embedding table per RVQ level, and the head at
    level q tied to the table of level (q + 1) % Q (the level of the code it predicts). The reduced grid is
    `(T', n_neuro, Q)`: `input_shape[2]` must be the tokenizer's `num_quantizers`.

    Args:
        corrupt (`bool`): replace the embedding by brain-gen's EmbeddingCorruptor in training (per-level random /
            learned-null replacement plus temporal bursts).
        corruption_p_levels (`list[float]`, *optional*): per-level corruption probability of the
            EmbeddingCorruptor (1 or Q entries); defaults to brain-gen's `[0.01, 0.02, 0.05, 0.1]` for Q = 4.
    """

    model_type = "flatgpt_embeds_rvq"

    corrupt: bool = False
    corruption_p_levels: list[float] | None = None

    @property
    def num_slots(self) -> int:
        return self.num_levels

    @property
    def tokens_per_position(self) -> int:
        return 1

    def _validate_variant(self) -> None:
        require(
            self.reduced_shape[2] == self.num_levels,
            f"`input_shape[2] // spatial_reduction[1]` = {self.reduced_shape[2]} must equal the tokenizer's "
            f"num_quantizers ({self.num_levels}): FlatGPTEmbedsRVQ has one position per RVQ level",
        )
        if not self.corrupt:
            return
        if self.corruption_p_levels is None:
            require(
                self.num_levels == len(DEFAULT_CORRUPTION_P_LEVELS),
                f"the default `corruption_p_levels` has {len(DEFAULT_CORRUPTION_P_LEVELS)} entries; with "
                f"{self.num_levels} RVQ levels pass `corruption_p_levels` (1 or {self.num_levels} probabilities)",
            )
            self.corruption_p_levels = list(DEFAULT_CORRUPTION_P_LEVELS)
        p = [float(v) for v in self.corruption_p_levels]
        require(
            len(p) in (1, self.num_levels) and all(0.0 <= v <= 1.0 for v in p),
            f"`corruption_p_levels` must hold 1 or {self.num_levels} probabilities in [0, 1], got {p}",
        )
        self.corruption_p_levels = p


class _StackedRVQConfig(_FlatGPTBrainTokenizerConfig):
    r"""
    Args:
        quantizer_head (`str`): `"joint"` (one Linear hidden -> Q * K) or `"tied"` (level q's slice of the hidden
            state scored with level q's embedding table).
        quantizer_levels (`int`, *optional*): RVQ levels; defaults to, and must equal, the tokenizer's.
        quantizer_embed_dim (`int`, *optional*): width of one level's embedding; defaults to what fills
            `hidden_size` (the concatenated embeddings are the backbone input, so no other value fits).
    """

    quantizer_head: str = "joint"
    quantizer_levels: int | None = None
    quantizer_embed_dim: int | None = None

    def _embedding_parts(self) -> int:
        """How many level embeddings are concatenated into one hidden vector."""
        raise NotImplementedError

    @property
    def level_dim(self) -> int:
        return self.hidden_size // self._embedding_parts()

    def _validate_variant(self) -> None:
        require(
            self.quantizer_head in QUANTIZER_HEADS,
            f"`quantizer_head` must be one of {list(QUANTIZER_HEADS)}, got {self.quantizer_head!r}",
        )
        if self.quantizer_levels is None:
            self.quantizer_levels = self.num_levels
        require(
            self.quantizer_levels == self.num_levels,
            f"`quantizer_levels` ({self.quantizer_levels}) must equal the tokenizer's num_quantizers "
            f"({self.num_levels})",
        )
        parts = self._embedding_parts()
        require(
            self.hidden_size % parts == 0,
            f"`hidden_size` ({self.hidden_size}) must be divisible by the {parts} concatenated level embeddings",
        )
        if self.quantizer_embed_dim is not None:
            require_positive_int("quantizer_embed_dim", self.quantizer_embed_dim)
            require(
                self.quantizer_embed_dim * parts == self.hidden_size,
                f"`quantizer_embed_dim` ({self.quantizer_embed_dim}) x {parts} concatenated embeddings must equal "
                f"`hidden_size` ({self.hidden_size}); leave it unset to derive it",
            )


class FlatGPTRVQConfig(_StackedRVQConfig):
    r"""
    FlatGPTRVQ: one backbone position per (t, latent) stack of Q codes; the stack is embedded by concatenating
    per-level embeddings and the next stack's Q codes are predicted jointly. RoPE grid `(T', n_neuro, 1)`.
    """

    model_type = "flatgpt_rvq"

    @property
    def rope_grid(self) -> tuple[int, int, int]:
        return (self.reduced_shape[0], self.reduced_shape[1], 1)

    @property
    def tokens_per_position(self) -> int:
        return self.num_levels

    def _embedding_parts(self) -> int:
        return self.num_levels


class FlatGPTMixRVQConfig(_StackedRVQConfig):
    r"""
    FlatGPTMixRVQ: one backbone position per token step. `mix_method="mix"` concatenates the n_neuro latents'
    level embeddings (plus a per-latent channel embedding) into one hidden vector; `"none"` runs every latent as
    its own sequence through the shared backbone. RoPE grid `(T', 1, 1)`.

    Args:
        mix_method (`str`): `"mix"` or `"none"`.
    """

    model_type = "flatgpt_mix_rvq"

    mix_method: str = "mix"

    @property
    def rope_grid(self) -> tuple[int, int, int]:
        return (self.reduced_shape[0], 1, 1)

    @property
    def tokens_per_position(self) -> int:
        # One position is one token step (a row per latent with mix_method="none"): the whole next step is
        # predicted from it.
        return self.tokens_per_time_step

    def _embedding_parts(self) -> int:
        return self.num_levels * (self.num_latents if self.mix_method == "mix" else 1)

    def _validate_variant(self) -> None:
        require(self.mix_method in ("mix", "none"), f"`mix_method` must be 'mix' or 'none', got {self.mix_method!r}")
        super()._validate_variant()
