"""Each backbone's own cache type, able to say how many tokens it holds.

FlatGPT reads the sequence offset of every step (positions, per-slot embeddings and heads) from
`cache.get_seq_length()`. The decoders' own caches answer it for attention layers only, so three of them get a
subclass that answers it for the whole model:

* MiniMax's `MiniMaxCache` counts layer 0, which is a linear-attention layer in MiniMax's usual layout (its
  state has no length, so the count stayed 0): ours counts the first softmax-attention layer;
* decoders without attention layers (Falcon-Mamba, Mamba) keep only recurrent states: the backbone counts the
  tokens it feeds (`advance`);
* xLSTM's `xLSTMCache` counts tokens itself but is built for one batch size and dtype: ours is sized by the
  backbone on its first step, so that a cache can be created before the first batch is seen (generation).

Every other decoder uses transformers' `DynamicCache` built from its config (full, sliding-window and hybrid
Mamba/attention layers, as the config's layer types say).
"""

from __future__ import annotations

import torch
from transformers import PreTrainedConfig
from transformers.cache_utils import DynamicCache
from transformers.models.minimax.modeling_minimax import MiniMaxCache
from transformers.models.xlstm.modeling_xlstm import xLSTMCache

from .decoder_kinds import DecoderKind


class MiniMaxAttentionCountCache(MiniMaxCache):
    """`MiniMaxCache` whose length is the first full-attention layer's."""

    def __init__(self, attention_layer: int):
        super().__init__()
        self.attention_layer = attention_layer

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return super().get_seq_length(self.attention_layer if layer_idx == 0 else layer_idx)


class SizedOnFirstStepxLSTMCache(xLSTMCache):
    """`xLSTMCache` allocated by `allocate(batch, dtype, device)` on the backbone's first step."""

    # What `generate()` asks of a cache before compiling a step: this one is not compiled.
    is_compileable = False

    def __init__(self, config: PreTrainedConfig):
        self.config = config
        self.rnn_state = None
        self.seqlen_offset = 0

    @property
    def is_linear(self) -> list[bool]:
        # What `generate()` asks of a cache's layers: every xLSTM block keeps a recurrent state.
        return [True] * self.config.num_blocks

    @property
    def is_allocated(self) -> bool:
        return self.rnn_state is not None

    def allocate(self, batch_size: int, dtype: torch.dtype, device: torch.device) -> None:
        xLSTMCache.__init__(self, self.config, batch_size, dtype=dtype, device=device)

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return int(self.seqlen_offset)


class RecurrentStateCache(DynamicCache):
    """A `DynamicCache` of recurrent layers only (no attention layer keeps a length): the backbone counts the
    tokens it has fed through it."""

    def __init__(self, config: PreTrainedConfig):
        super().__init__(config=config)
        self.tokens_seen = 0

    @property
    def is_compileable(self) -> bool:
        # transformers treats a cache of recurrent layers as a static one and would hand a compiled step 4-D masks;
        # FlatGPT's recurrent backbones run eagerly, on the unpadded sequence.
        return False

    def advance(self, length: int) -> None:
        self.tokens_seen += length

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.tokens_seen


def cache_class(kind: DecoderKind) -> type:
    """The cache type a backbone of this kind generates with."""
    if kind.model_type == "minimax":
        return MiniMaxAttentionCountCache
    if kind.model_type == "xlstm":
        return SizedOnFirstStepxLSTMCache
    if kind.attention_layer_index is None:
        return RecurrentStateCache
    return DynamicCache


def new_cache(kind: DecoderKind, config: PreTrainedConfig):
    """An empty cache of the decoder's own type."""
    cls = cache_class(kind)
    if cls is MiniMaxAttentionCountCache:
        return cls(kind.attention_layer_index)
    if cls is DynamicCache:
        return DynamicCache(config=config)
    return cls(config)
