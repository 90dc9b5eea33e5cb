"""Config of the BrainOmni causal forecaster; it nests its tokenizer's config."""

from __future__ import annotations

from ...configuration_utils import BrainGenConfig, require, require_positive_int
from ..brainomni.configuration_brainomni import BrainOmniCausalTokenizerConfig


class BrainOmniCausalForecastConfig(BrainGenConfig):
    r"""
    Autoregressive forecaster over BrainOmni tokenizer codes: the quantised latent embeddings `(B, C', W, D)`
    go through `lm_depth` causal spatial/temporal attention blocks, and a head predicts every latent's next-step
    code for each of the first `num_quantizers_used` RVQ levels.

    Args:
        tokenizer_config (`BrainOmniCausalTokenizerConfig` or `dict`): the tokenizer, saved in the same folder.
        lm_dim (`int`): transformer width (a projection from the tokenizer's `n_dim` is added when they differ).
        lm_head (`int`): attention heads; half attend over time, half over latents (even, divides `lm_dim`).
        lm_depth (`int`): number of blocks.
        lm_dropout (`float`): dropout in training mode.
        num_quantizers_used (`int`, *optional*): RVQ levels predicted (default: all).
        freeze_tokenizer (`bool`): train only the forecaster (the tokenizer runs in eval mode without gradients);
            otherwise the tokenizer is trained jointly and its commitment loss is added.
        overlap_ratio (`float`): must be 0: tokens come from non-overlapping windows.
    """

    model_type = "brainomni_causal_forecast"
    # `tokenizer_config` is a plain field converted in `__post_init__` (transformers < 5.20 has no
    # `sub_configs_defaults`; 5.20-5.23 take only `SubConfigSpec` entries there). It is declared a sub-config, as
    # transformers' composite configs declare theirs, so that `attn_implementation` and `dtype` reach it.
    sub_configs = {"tokenizer_config": BrainOmniCausalTokenizerConfig}

    tokenizer_config: dict | BrainOmniCausalTokenizerConfig | None = None
    lm_dim: int = 16
    lm_head: int = 2
    lm_depth: int = 2
    lm_dropout: float = 0.0
    num_quantizers_used: int | None = None
    freeze_tokenizer: bool = False
    overlap_ratio: float = 0.0

    def __post_init__(self, **kwargs):
        if self.tokenizer_config is None:
            self.tokenizer_config = BrainOmniCausalTokenizerConfig()
        elif isinstance(self.tokenizer_config, dict):
            self.tokenizer_config = BrainOmniCausalTokenizerConfig(**self.tokenizer_config)
        require(
            isinstance(self.tokenizer_config, BrainOmniCausalTokenizerConfig),
            f"`tokenizer_config` must be a BrainOmniCausalTokenizerConfig, got {type(self.tokenizer_config)}",
        )
        for name in ("lm_dim", "lm_head", "lm_depth"):
            require_positive_int(name, getattr(self, name))
        require(
            self.lm_head % 2 == 0
            and self.lm_dim % 2 == 0
            and (self.lm_dim // 2) % (self.lm_head // 2) == 0
            and (self.lm_dim // self.lm_head) % 2 == 0,
            f"`lm_head` ({self.lm_head}) must be even and `lm_dim` ({self.lm_dim}) split into lm_head heads of "
            "even width (half the heads attend over time, half over latents)",
        )
        levels = self.tokenizer_config.num_quantizers
        if self.num_quantizers_used is None:
            self.num_quantizers_used = levels
        require_positive_int("num_quantizers_used", self.num_quantizers_used)
        require(
            self.num_quantizers_used <= levels,
            f"`num_quantizers_used` ({self.num_quantizers_used}) exceeds the tokenizer's {levels} RVQ levels",
        )
        require(0.0 <= float(self.lm_dropout) < 1.0, f"`lm_dropout` must be in [0, 1), got {self.lm_dropout}")
        require(
            float(self.overlap_ratio) == 0.0,
            f"`overlap_ratio` must be 0 (tokens come from non-overlapping windows), got {self.overlap_ratio}",
        )
        super().__post_init__(**kwargs)
