"""The attention layers of STGPT2MEG: standard, conditioned and gpt-oss style, each able to extend a KV cache.

The temporal attention of a block reads and extends slot `slot` of a transformers `Cache` (keys of every past time
step, per channel); the spatial attention runs inside one time step and never caches. Queries of a call sit at
positions `offset .. offset + L - 1`, where `offset` is what the slot already holds.

Submodule and parameter names (`packed_proj`, `out_proj`, `inv_freq_t`, `cond_bias.emb/U/V`, `sinks`, `norm`,
`qkv`, `out`) follow the reference so converted state dicts load unchanged.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init
from transformers.cache_utils import Cache

from ...layers.rotary import apply_adjacent_pair_rope, rope_inverse_frequencies
from .configuration_stgpt2meg import STGPT2MEGConfig, yarn_ramp_bounds

AttentionResult = tuple[torch.Tensor, torch.Tensor | None]


def attention_mask(
    queries: int, keys: int, offset: int, is_causal: bool, sliding_window: int, device: torch.device
) -> torch.Tensor | None:
    """Boolean `(queries, keys)` mask (True: attend) for queries at `offset + i` over keys at `j`, or None when
    every query sees every key."""
    if not is_causal and not sliding_window:
        return None
    query_pos = torch.arange(offset, offset + queries, device=device).unsqueeze(1)
    key_pos = torch.arange(keys, device=device).unsqueeze(0)
    allowed = torch.ones(queries, keys, dtype=torch.bool, device=device)
    if is_causal:
        allowed &= key_pos <= query_pos
    if sliding_window:
        allowed &= key_pos > query_pos - sliding_window
    return allowed


def scaled_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    *,
    offset: int,
    is_causal: bool,
    dropout: float,
    bias: torch.Tensor | None = None,
    eager: bool = False,
) -> AttentionResult:
    """Softmax attention of `(N, heads, L, d)` queries over `(N, heads, S, d)` keys; `bias` is added to the logits.
    Returns the attended values and, when `eager`, the weights (SDPA computes none)."""
    length, keys = query.shape[-2], key.shape[-2]
    # One query after the whole past, or a plain causal square: no explicit mask needed.
    if is_causal and (length == 1 and offset == keys - 1):
        is_causal = False
    plain = bias is None and not eager and (not is_causal or (offset == 0 and length == keys))
    if plain:
        return F.scaled_dot_product_attention(query, key, value, is_causal=is_causal, dropout_p=dropout), None
    allowed = attention_mask(length, keys, offset, is_causal, 0, query.device)
    if not eager:
        mask = bias
        if allowed is not None:
            blocked = torch.zeros(allowed.shape, dtype=query.dtype, device=query.device).masked_fill(
                ~allowed, -math.inf
            )
            mask = blocked if mask is None else mask + blocked
        return F.scaled_dot_product_attention(query, key, value, attn_mask=mask, dropout_p=dropout), None
    scores = query @ key.transpose(-2, -1) * query.shape[-1] ** -0.5
    if bias is not None:
        scores = scores + bias
    if allowed is not None:
        scores = scores.masked_fill(~allowed, -math.inf)
    weights = F.dropout(scores.softmax(dim=-1), p=dropout, training=dropout > 0)
    return weights @ value, weights


def cached_offset(cache: Cache | None, slot: int | None) -> int:
    return 0 if cache is None else cache.get_seq_length(slot)


class STSelfAttention(nn.Module):
    """Multi-head self-attention over `(N, L, d_model)` with a packed q/k/v projection and adjacent-pair RoPE."""

    def __init__(self, config: STGPT2MEGConfig):
        super().__init__()
        width = config.d_model
        self.num_heads = config.num_heads
        self.head_dim = width // config.num_heads
        self.dropout = config.attention_dropout
        self.rope = config.rope
        self.rope_base = config.rope_base
        self.packed_proj = nn.Linear(width, 3 * width, bias=config.attention_bias)
        self.out_proj = nn.Linear(width, width, bias=config.attention_bias)
        self.drop = nn.Dropout(config.attention_dropout)
        # Derived from the config, so not saved (as in the reference); recomputed on init.
        self.register_buffer("inv_freq_t", self._inverse_frequencies(), persistent=False)

    def _inverse_frequencies(self) -> torch.Tensor:
        return rope_inverse_frequencies(2 * (self.head_dim // 2), self.rope_base)

    def reset_brain_gen_parameters(self) -> None:
        init.copy_(self.inv_freq_t, self._inverse_frequencies())

    def logit_bias(self, condition_ids, cache, slot, offset) -> torch.Tensor | None:
        return None

    def forward(
        self,
        hidden_states: torch.Tensor,
        *,
        is_causal: bool,
        cache: Cache | None = None,
        slot: int | None = None,
        condition_ids: torch.Tensor | None = None,
        output_attentions: bool = False,
    ) -> AttentionResult:
        query, key, value = (
            t.unflatten(-1, (self.num_heads, self.head_dim)).transpose(1, 2)
            for t in self.packed_proj(hidden_states).chunk(3, dim=-1)
        )
        offset = cached_offset(cache, slot)
        if self.rope:
            query, key = apply_adjacent_pair_rope(query, key, self.inv_freq_t, position_offset=offset)
        bias = self.logit_bias(condition_ids, cache, slot, offset)
        if cache is not None:
            key, value = cache.update(key, value, slot)
        attended, weights = scaled_attention(
            query,
            key,
            value,
            offset=offset,
            is_causal=is_causal,
            dropout=self.dropout if self.training else 0.0,
            bias=bias,
            eager=output_attentions,
        )
        return self.drop(self.out_proj(attended.transpose(1, 2).flatten(-2))), weights


class STConditionLogitBias(nn.Module):
    """Low-rank logit bias `U(e(c_query)) . V(e(c_key))` from per-token condition ids."""

    def __init__(self, num_ids: int, width: int, rank: int):
        super().__init__()
        self.emb = nn.Embedding(num_ids, width)
        self.U = nn.Linear(width, rank, bias=False)
        self.V = nn.Linear(width, rank, bias=False)

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedded = self.emb(ids)
        return self.U(embedded), self.V(embedded)


class STConditionedAttention(STSelfAttention):
    """`STSelfAttention` plus the condition logit bias (`n_cond_tok > 0`), shared by every head.

    With a cache, the key side of the bias (`V(e(c_key))`, `(N, 1, S, rank)`) is kept in slot `slot + cond_slot_shift`
    next to the keys, so a cached step scores its queries against the conditions of every past step.
    """

    def __init__(self, config: STGPT2MEGConfig, cond_slot_shift: int = 0):
        super().__init__(config)
        self.cond_slot_shift = cond_slot_shift
        self.cond_bias = (
            STConditionLogitBias(config.n_cond_tok, config.d_tok_emb, config.bias_rank) if config.n_cond_tok else None
        )

    def logit_bias(self, condition_ids, cache, slot, offset) -> torch.Tensor | None:
        if self.cond_bias is None:
            return None
        if condition_ids is None:
            raise ValueError(
                "conditioned attention with n_cond_tok > 0 needs the condition ids: pass `condition` (B, 1, T)"
            )
        query_side, key_side = self.cond_bias(condition_ids)  # (N, L, rank) each
        if cache is not None:
            key_side = cache.update(key_side.unsqueeze(1), key_side[..., :0].unsqueeze(1), slot + self.cond_slot_shift)[
                0
            ]
            key_side = key_side.squeeze(1)
        return (query_side @ key_side.transpose(1, 2)).unsqueeze(1)


def yarn_tables(config: STGPT2MEGConfig, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """gpt-oss rotary `cos, sin` `(L, head_dim / 2)` in float32, YaRN-scaled (NTK by parts) and multiplied by the
    YaRN concentration when `rope_scaling_factor > 1`."""
    dim, base, factor = config.head_dim, config.rope_theta, config.rope_scaling_factor
    freq = base ** (torch.arange(0, dim, 2, dtype=torch.float32, device=positions.device) / dim)
    if factor > 1.0:
        concentration = 0.1 * math.log(factor) + 1.0
        low, high = yarn_ramp_bounds(config)
        ramp = (torch.arange(dim // 2, dtype=torch.float32, device=positions.device) - low) / (high - low)
        extrapolate = 1 - ramp.clamp(0, 1)
        inv_freq = (1.0 / (factor * freq)) * (1 - extrapolate) + (1.0 / freq) * extrapolate
    else:
        concentration, inv_freq = 1.0, 1.0 / freq
    angles = torch.outer(positions.float(), inv_freq)
    return angles.cos() * concentration, angles.sin() * concentration


def rotate_halves(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate `(N, heads, L, d)` by pairs (i, i + d/2) (the gpt-oss layout)."""
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    first, second = x.chunk(2, dim=-1)
    return torch.cat((first * cos - second * sin, second * cos + first * sin), dim=-1)


class STGptOssAttention(nn.Module):
    """gpt-oss attention: grouped queries, a learned sink logit per head (it only enlarges the softmax
    denominator), YaRN RoPE and an optional sliding window.

    `norm` is built but never applied (as in the reference, whose checkpoints hold its weight).
    """

    def __init__(self, config: STGPT2MEGConfig):
        super().__init__()
        self.config = config
        self.num_heads, self.num_kv_heads, self.head_dim = config.num_heads, config.num_key_value_heads, config.head_dim
        self.sliding_window = config.effective_sliding_window
        self.sinks = nn.Parameter(torch.empty(config.num_heads))
        self.norm = nn.RMSNorm(config.d_model)
        self.qkv = nn.Linear(config.d_model, config.head_dim * (config.num_heads + 2 * config.num_key_value_heads))
        self.out = nn.Linear(config.head_dim * config.num_heads, config.d_model)
        self.dropout = nn.Dropout(config.attention_dropout)
        self.reset_brain_gen_parameters()

    def reset_brain_gen_parameters(self) -> None:
        init.normal_(self.sinks, std=1.0 / math.sqrt(self.head_dim))

    def forward(
        self,
        hidden_states: torch.Tensor,
        *,
        is_causal: bool,
        cache: Cache | None = None,
        slot: int | None = None,
        condition_ids: torch.Tensor | None = None,
        output_attentions: bool = False,
    ) -> AttentionResult:
        rows, length, _ = hidden_states.shape
        heads, kv_heads, dim = self.num_heads, self.num_kv_heads, self.head_dim
        query, key, value = self.qkv(hidden_states).split([heads * dim, kv_heads * dim, kv_heads * dim], dim=-1)
        query = query.view(rows, length, heads, dim).transpose(1, 2)
        key = key.view(rows, length, kv_heads, dim).transpose(1, 2)
        value = value.view(rows, length, kv_heads, dim).transpose(1, 2)
        offset = cached_offset(cache, slot)
        cos, sin = yarn_tables(self.config, torch.arange(offset, offset + length, device=hidden_states.device))
        query, key = rotate_halves(query, cos, sin), rotate_halves(key, cos, sin)
        if cache is not None:
            key, value = cache.update(key, value, slot)
        # Query head h reads key/value head h // (heads / kv_heads).
        key = key.repeat_interleave(heads // kv_heads, dim=1)
        value = value.repeat_interleave(heads // kv_heads, dim=1)
        scores = query @ key.transpose(-2, -1) / math.sqrt(dim)
        allowed = attention_mask(length, key.shape[-2], offset, is_causal, self.sliding_window, query.device)
        if allowed is not None:
            scores = scores.masked_fill(~allowed, -math.inf)
        sinks = self.sinks.to(scores.dtype).view(1, heads, 1, 1).expand(rows, heads, length, 1)
        weights = torch.cat([scores, sinks], dim=-1).softmax(dim=-1)[..., :-1]
        attended = (weights @ value).transpose(1, 2).flatten(-2)
        return self.dropout(self.out(attended)), (weights if output_attentions else None)


def build_attention(config: STGPT2MEGConfig, cond_slot_shift: int = 0) -> nn.Module:
    if config.attn_type == "gpt_oss":
        return STGptOssAttention(config)
    if config.attn_type == "conditioned":
        return STConditionedAttention(config, cond_slot_shift)
    return STSelfAttention(config)


class STAttentionBlock(nn.Module):
    """`x + attention(RMSNorm(x))` over `(N, L, d_model)` (the reference's AttentionBlock)."""

    def __init__(self, config: STGPT2MEGConfig, cond_slot_shift: int = 0):
        super().__init__()
        self.attn = build_attention(config, cond_slot_shift)
        self.norm = nn.RMSNorm(config.d_model)

    def forward(self, x: torch.Tensor, **kwargs) -> AttentionResult:
        attended, weights = self.attn(self.norm(x), **kwargs)
        return x + attended, weights
