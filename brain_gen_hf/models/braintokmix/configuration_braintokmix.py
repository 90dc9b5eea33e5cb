"""Config of BrainTokMix, the paper's channel-mixing causal tokenizer."""

from __future__ import annotations

from ...configuration_utils import require
from ..causal_tokenizer.configuration_causal_tokenizer import CausalRVQTokenizerConfig


class BrainTokMixConfig(CausalRVQTokenizerConfig):
    r"""
    BrainTokMix (brain-gen's `BrainOmniCausalTokenizerSEANetChannelMix`): one causal SEANet takes all
    `num_sensors` channels as convolution input channels; its `n_dim` output features per token step are split
    into `n_neuro` latent tokens of width `n_dim // n_neuro`, which are RVQ-quantised; the decoder mirrors it.
    See `CausalRVQTokenizerConfig` for the shared fields.

    Args:
        n_dim (`int`): total SEANet latent width; must be divisible by `n_neuro`. The token width (what the RVQ
            and `codebook_embeddings()` see) is `token_dim = n_dim // n_neuro`.
        num_sensors (`int`): number of input channels; inputs must have exactly this many.
        n_head (`int`): unused (kept so reference configs convert unchanged).
    """

    model_type = "braintokmix"

    def __post_init__(self, **kwargs):
        require(
            self.n_dim % self.n_neuro == 0,
            f"`n_dim` ({self.n_dim}) must be divisible by `n_neuro` ({self.n_neuro}): each of the n_neuro latent "
            "tokens gets n_dim / n_neuro features",
        )
        super().__post_init__(**kwargs)
        n = self.contract_num_channels
        require(
            n is None or n == self.num_sensors,
            f"the signal contract lists {n} channels but `num_sensors` is {self.num_sensors}",
        )

    @property
    def token_dim(self) -> int:
        return self.n_dim // self.n_neuro
