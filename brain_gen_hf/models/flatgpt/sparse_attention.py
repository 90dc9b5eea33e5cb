"""Block-sparse causal attention over a flattened frame layout (brain-gen's `sparse: true`).

The sequence is a run of frames of `tokens_per_frame` tokens (one reduced grid step), cut into attention blocks
of `block_size` tokens (a whole number of frames). With `d = q // block_size - k // block_size`, a query token q
may attend to key token k iff `k <= q` and

* on a local head: `d < local_blocks` (a sliding window of whole blocks);
* on a global head (`global_heads`): `d < global_blocks`, or k's block is an anchor (`k_block % stride_blocks ==
  0`), or k's block is a sink (`k_block < sink_blocks`).

Windows are given in frames and rounded up to whole blocks, the anchor stride rounded down (at least one block),
as brain-gen does. Positions are absolute sequence positions, so a decode step at cache length P uses rows
`P .. P + L - 1` of the same pattern.

The pattern is materialised in the form the decoder's attention implementation reads: a flex-attention
`BlockMask` for `flex_attention` (off-window blocks are skipped, not computed), an additive float mask for
`eager`, a boolean mask otherwise (SDPA). All three give the same attention.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass

import torch

from ...configuration_utils import require

# brain-gen's defaults (`_sparse_causal_mask`): 32-token frames, 256-token blocks, global heads 3 and 7.
DEFAULT_SPARSE_ATTENTION = {
    "tokens_per_frame": 32,
    "block_size": 256,
    "local_window_frames": 8,
    "global_window_frames": 24,
    "anchor_stride_frames": 120,
    "sink_frames": 0,
    "global_heads": [3, 7],
}


@dataclass(frozen=True)
class SparseAttentionPattern:
    tokens_per_frame: int
    block_size: int
    local_window_frames: int
    global_window_frames: int
    anchor_stride_frames: int
    sink_frames: int
    global_heads: tuple[int, ...]

    @classmethod
    def from_dict(cls, values: dict) -> SparseAttentionPattern:
        values = {**values, "global_heads": tuple(values["global_heads"])}
        return cls(**values)

    def to_dict(self) -> dict:
        return {**asdict(self), "global_heads": list(self.global_heads)}

    @property
    def frames_per_block(self) -> int:
        return self.block_size // self.tokens_per_frame

    @property
    def local_blocks(self) -> int:
        return math.ceil(self.local_window_frames / self.frames_per_block)

    @property
    def global_blocks(self) -> int:
        return math.ceil(self.global_window_frames / self.frames_per_block)

    @property
    def stride_blocks(self) -> int:
        return max(1, self.anchor_stride_frames // self.frames_per_block)

    @property
    def sink_blocks(self) -> int:
        return math.ceil(self.sink_frames / self.frames_per_block)

    def allowed(self, head: torch.Tensor, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """Whether query position `q` may attend to key position `k` on `head` (broadcasting integer tensors; also a
        flex-attention `mask_mod` once the batch index is bound)."""
        q_block, k_block = q // self.block_size, k // self.block_size
        distance = q_block - k_block
        local_ok = distance < self.local_blocks
        global_ok = (distance < self.global_blocks) | (k_block % self.stride_blocks == 0) | (k_block < self.sink_blocks)
        is_global = torch.zeros_like(head, dtype=torch.bool)
        for global_head in self.global_heads:
            is_global = is_global | (head == global_head)
        return (k <= q) & torch.where(is_global, global_ok, local_ok)


def check_sparse_attention(values: dict | None, num_heads: int, block_size: int) -> dict | None:
    """Validate a config's `sparse_attention` dict (missing keys take brain-gen's defaults); `None` stays dense."""
    if values is None:
        return None
    require(isinstance(values, dict), f"`sparse_attention` must be a dict or None, got {type(values).__name__}")
    unknown = set(values) - set(DEFAULT_SPARSE_ATTENTION)
    require(
        not unknown, f"unknown `sparse_attention` keys {sorted(unknown)}; known: {sorted(DEFAULT_SPARSE_ATTENTION)}"
    )
    require(
        block_size == 1,
        f"`sparse_attention` and block prediction (`block_size` {block_size}) cannot be combined: each builds its "
        "own attention mask",
    )
    values = {**DEFAULT_SPARSE_ATTENTION, **values}
    for key in ("tokens_per_frame", "block_size", "local_window_frames", "global_window_frames"):
        value = values[key]
        require(
            isinstance(value, int) and not isinstance(value, bool) and value > 0,
            f"`sparse_attention.{key}` must be a positive integer, got {value!r}",
        )
    for key in ("anchor_stride_frames", "sink_frames"):
        value = values[key]
        require(
            isinstance(value, int) and not isinstance(value, bool) and value >= 0,
            f"`sparse_attention.{key}` must be a non-negative integer, got {value!r}",
        )
    require(
        values["block_size"] % values["tokens_per_frame"] == 0,
        f"`sparse_attention.block_size` ({values['block_size']}) must be a multiple of `tokens_per_frame` "
        f"({values['tokens_per_frame']}) so that blocks hold whole frames",
    )
    heads = values["global_heads"]
    require(
        isinstance(heads, (list, tuple))
        and all(isinstance(h, int) and not isinstance(h, bool) and 0 <= h < num_heads for h in heads),
        f"`sparse_attention.global_heads` must list query-head indices in [0, {num_heads}), got {heads!r}",
    )
    return SparseAttentionPattern.from_dict(values).to_dict()


@functools.lru_cache(maxsize=8)
def _dense_allowed(
    pattern: SparseAttentionPattern, num_heads: int, past: int, length: int, device: torch.device
) -> torch.Tensor:
    head = torch.arange(num_heads, device=device)[:, None, None]
    q = torch.arange(past, past + length, device=device)[None, :, None]
    k = torch.arange(past + length, device=device)[None, None, :]
    return pattern.allowed(head, q, k)[None]


@functools.lru_cache(maxsize=8)
def _flex_block_mask(pattern: SparseAttentionPattern, num_heads: int, past: int, length: int, device: torch.device):
    from torch.nn.attention.flex_attention import create_block_mask

    def mask_mod(batch, head, q_index, k_index):
        return pattern.allowed(head, q_index + past, k_index)

    # flex tiles of the pattern's block size where the kernels take it (multiples of 128), so that tiles outside
    # every window are skipped whole; flex's default tile otherwise.
    tile = pattern.block_size if pattern.block_size % 128 == 0 else 128
    return create_block_mask(mask_mod, None, num_heads, length, past + length, device=device, BLOCK_SIZE=tile)


def sparse_attention_mask(
    values: dict,
    num_heads: int,
    past: int,
    length: int,
    *,
    attn_implementation: str | None,
    dtype: torch.dtype,
    device: torch.device,
):
    """The pattern for queries `past .. past + length - 1` over keys `0 .. past + length - 1`, as the attention
    implementation reads it: a `BlockMask` (flex_attention), `(1, heads, length, past + length)` additive float
    (eager) or boolean (everything else). Recent masks are cached (decode steps repeat shapes)."""
    pattern = SparseAttentionPattern.from_dict(values)
    device = torch.device(device)
    if attn_implementation == "flex_attention":
        return _flex_block_mask(pattern, num_heads, past, length, device)
    allowed = _dense_allowed(pattern, num_heads, past, length, device)
    if attn_implementation == "eager":
        zero = torch.zeros((), dtype=dtype, device=device)
        return torch.where(allowed, zero, torch.finfo(dtype).min)
    return allowed
