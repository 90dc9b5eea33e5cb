"""Embedding and head layers of the FlatGPT variants, and the training-time token corruption.

Positions are absolute: a layer that depends on a token's slot in the grid (per-slot tables, shifted heads)
receives the sequence offset of its first token, so cached single-token steps and full passes agree.
State-dict names follow brain-gen (`pre_embedding.emb.{i}.weight`, `pre_embedding.emb.quant_emb.weight`, ...).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


def slot_ids(offset: int, length: int, num_slots: int, device=None) -> torch.Tensor:
    """Slot of each position `offset .. offset + length - 1` in a sequence that cycles through `num_slots`."""
    return torch.arange(offset, offset + length, device=device) % num_slots


class ListEmbedding(nn.Module):
    """One `(V, hidden)` table per slot; the token at position p is embedded with table `p % N`."""

    def __init__(self, vocab_size: int, hidden_size: int, num_slots: int):
        super().__init__()
        self.emb = nn.ModuleList(nn.Embedding(vocab_size, hidden_size) for _ in range(num_slots))

    @property
    def num_slots(self) -> int:
        return len(self.emb)

    def resized(self, num_tokens: int, init: Callable[[nn.Module], None] | None = None) -> ListEmbedding:
        """A copy whose tables hold `num_tokens` ids: kept ids keep their rows; new rows are the mean of their
        table's old rows, or, with `init`, what `init(table)` sets (the table is initialised whole, then the kept
        rows are copied back)."""
        old = self.emb[0]
        resized = ListEmbedding(num_tokens, old.embedding_dim, self.num_slots).to(old.weight.device, old.weight.dtype)
        kept = min(num_tokens, old.num_embeddings)
        with torch.no_grad():
            for new_table, old_table in zip(resized.emb, self.emb):
                if init is not None:
                    init(new_table)
                else:
                    new_table.weight[kept:] = old_table.weight.mean(dim=0)
                new_table.weight[:kept] = old_table.weight[:kept]
        return resized

    def forward(self, input_ids: torch.Tensor, offset: int = 0) -> torch.Tensor:
        if input_ids.shape[1] == 1:
            # A cached decode step: one slot, known from the offset; skips the per-slot masks and syncs.
            return self.emb[offset % self.num_slots](input_ids)
        slots = slot_ids(offset, input_ids.shape[1], self.num_slots, input_ids.device)
        out = None
        for slot, table in enumerate(self.emb):
            columns = slots == slot
            if not columns.any():
                continue
            embedded = table(input_ids[:, columns])
            if out is None:
                out = embedded.new_empty(*input_ids.shape, embedded.shape[-1])
            out[:, columns] = embedded
        return out


class ChannelHead(nn.Module):
    """Shifted tied head of FlatGPTEmbeds: the hidden state at slot i scores the next token, which lives in slot
    i + 1, against that slot's embedding table. No own weights (brain-gen's `head.layers.*` were tied copies)."""

    def __init__(self, embedding: ListEmbedding):
        super().__init__()
        self._embedding = [embedding]  # a plain list: do not register the tables twice

    def forward(self, hidden: torch.Tensor, offset: int = 0) -> torch.Tensor:
        embedding = self._embedding[0]
        n = embedding.num_slots
        if hidden.shape[1] == 1:
            # A cached decode step: the masked path's product for its single (contiguous, copied) column, without
            # the masks and syncs.
            return F.linear(hidden.contiguous(), embedding.emb[(offset + 1) % n].weight)
        next_slots = (slot_ids(offset, hidden.shape[1], n, hidden.device) + 1) % n
        logits = None
        for slot, table in enumerate(embedding.emb):
            columns = next_slots == slot
            if not columns.any():
                continue
            scored = F.linear(hidden[:, columns], table.weight)
            if logits is None:
                logits = scored.new_empty(*hidden.shape[:2], scored.shape[-1])
            logits[:, columns] = scored
        return logits


class ChannelTokenEmbedding(nn.Module):
    """A shared token table plus a per-channel embedding, for `(B*C, T)` rows (brain-gen's `Embeddings`)."""

    def __init__(self, vocab_size: int, width: int, num_channels: int):
        super().__init__()
        self.quant_emb = nn.Embedding(vocab_size, width)
        self.channel_emb = nn.Embedding(num_channels, width)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        num_channels = self.channel_emb.num_embeddings
        channels = torch.arange(input_ids.shape[0], device=input_ids.device) % num_channels
        return self.quant_emb(input_ids) + self.channel_emb(channels)[:, None, :]


class MixEmbedding(nn.Module):
    """`(B*C, T)` channel rows -> `(B, T, C*E)` mixed steps (`mix`) or `(B*C, T, E)` (`none`)."""

    def __init__(self, vocab_size: int, width: int, num_channels: int, mix_method: str):
        super().__init__()
        self.num_channels = num_channels
        self.mix_method = mix_method
        self.emb = ChannelTokenEmbedding(vocab_size, width, num_channels)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        embeds = self.emb(input_ids)
        if self.mix_method == "mix":
            embeds = rearrange(embeds, "(b c) t e -> b t (c e)", c=self.num_channels)
        return embeds


class MixHead(nn.Module):
    """Un-mixes `(B, T, C*E)` into `(B*C, T, E)` and scores every channel with the shared (tied) token table."""

    def __init__(self, embedding: MixEmbedding):
        super().__init__()
        self._embedding = [embedding]

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        embedding = self._embedding[0]
        if embedding.mix_method == "mix":
            hidden = rearrange(hidden, "b t (c e) -> (b c) t e", c=embedding.num_channels)
        return F.linear(hidden, embedding.emb.quant_emb.weight)


# ---------------------------------------------------------------------------------------------------- corruption
def corruption_schedule(n_steps: int, p_start: float, p_end: float, device=None) -> torch.Tensor:
    """Per-step corruption coverage, log-linear from `p_start` to `p_end` (an endpoint set to 0 stays 0)."""
    if n_steps <= 0 or (p_start == 0.0 and p_end == 0.0):
        return torch.zeros(max(n_steps, 0), device=device)
    if n_steps == 1:
        return torch.tensor([min(max(p_start, p_end), 1.0)], device=device)
    lo = math.log(max(p_start, 1e-12))
    hi = math.log(max(p_end, 1e-12))
    steps = torch.linspace(0.0, 1.0, n_steps, device=device)
    probs = torch.exp(torch.tensor(lo, device=device) + (hi - lo) * steps)
    if p_start == 0.0:
        probs[0] = 0.0
    if p_end == 0.0:
        probs[-1] = 0.0
    return probs.clamp_(0.0, 1.0)


def corrupt_tokens(
    codes: torch.Tensor, vocab_size: int, *, p_start: float, p_end: float, tokens_per_step: int, block_len_steps: int
) -> torch.Tensor:
    """Replace whole time steps of `codes (B, L)` by random *different* ids, in causal bursts.

    Block starts are drawn per (batch, step) with probability `1 - (1 - p)^(1 / block_len)` so that a causal
    box filter of `block_len` steps covers each step with probability ~p. RNG order (as in brain-gen):
    `rand(B, n_steps)` then `randint(0, V - 1, (B, L))`.
    """
    B, L = codes.shape
    if L % tokens_per_step != 0:
        raise ValueError(
            f"token corruption needs a length ({L}) that is a multiple of tokens_per_step ({tokens_per_step})"
        )
    n_steps = L // tokens_per_step
    coverage = corruption_schedule(n_steps, p_start, p_end, codes.device)
    if not (coverage > 0).any():
        return codes
    start_p = 1.0 - torch.pow(1.0 - coverage, 1.0 / block_len_steps) if block_len_steps > 1 else coverage
    starts = torch.rand(B, n_steps, device=codes.device) < start_p.view(1, -1)
    if not starts.any():
        return codes
    window = torch.ones(1, 1, block_len_steps, device=codes.device)
    covered = F.conv1d(F.pad(starts.float().unsqueeze(1), (block_len_steps - 1, 0)), window)[:, 0] > 0
    mask = covered.repeat_interleave(tokens_per_step, dim=1)
    replacement = torch.randint(0, vocab_size - 1, (B, L), device=codes.device, dtype=codes.dtype)
    replacement = replacement + (replacement >= codes).to(codes.dtype)  # never the original id
    return torch.where(mask, replacement, codes)
