"""Embedding and head layers of the RVQ FlatGPT variants, and the EmbeddingCorruptor.

State-dict names follow brain-gen (`pre_embedding.embeddings.{q}`, `head.proj`, `pre_embedding.quantizer.*`,
`pre_embedding.channel_emb`, `head.head.proj`, `pre_embedding.null_embed`). Tied heads own no weights: they
score with the embedding tables directly (brain-gen stored tied copies, dropped at conversion).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .flatgpt_layers import ListEmbedding


class QuantizerEmbedding(nn.Module):
    """Per-level tables; codes `(..., Q)` -> the concatenation of the Q level embeddings `(..., Q * d)`."""

    def __init__(self, vocab_size: int, embed_dim: int, num_levels: int):
        super().__init__()
        self.embeddings = nn.ModuleList(nn.Embedding(vocab_size, embed_dim) for _ in range(num_levels))

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return torch.cat([table(codes[..., q]) for q, table in enumerate(self.embeddings)], dim=-1)


class JointRVQHead(nn.Module):
    """One bias-free Linear(hidden -> Q * K): `(..., hidden)` -> `(..., Q, K)` (all levels from one state)."""

    def __init__(self, hidden_size: int, num_levels: int, vocab_size: int):
        super().__init__()
        self.num_levels = num_levels
        self.proj = nn.Linear(hidden_size, num_levels * vocab_size, bias=False)

    def reset_brain_gen_parameters(self) -> None:
        self.proj.reset_parameters()  # brain-gen kept PyTorch's default init for this projection

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return rearrange(self.proj(hidden), "... (q k) -> ... q k", q=self.num_levels)


class TiedRVQHead(nn.Module):
    """Splits the hidden state into Q chunks of the level width; chunk q is scored with level q's table."""

    def __init__(self, embedding: QuantizerEmbedding):
        super().__init__()
        self._embedding = [embedding]  # a plain list: the tables are registered once, under the embedding

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        tables = self._embedding[0].embeddings
        chunks = hidden.chunk(len(tables), dim=-1)
        return torch.stack([F.linear(chunk, table.weight) for chunk, table in zip(chunks, tables)], dim=-2)


class MixQuantizerEmbedding(nn.Module):
    """`(B*C, T, Q)` codes -> level embeddings + a per-latent channel embedding `(C, Q*d)`; `mix` concatenates
    the C latents of a step into `(B, T, C*Q*d)`, `none` keeps `(B*C, T, Q*d)` rows."""

    def __init__(self, vocab_size: int, embed_dim: int, num_levels: int, num_channels: int, mix_method: str):
        super().__init__()
        self.num_channels = num_channels
        self.mix_method = mix_method
        self.quantizer = QuantizerEmbedding(vocab_size, embed_dim, num_levels)
        self.channel_emb = nn.Embedding(num_channels, num_levels * embed_dim)

    @property
    def embeddings(self) -> nn.ModuleList:
        return self.quantizer.embeddings

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        embeds = self.quantizer(codes)
        channels = torch.arange(codes.shape[0], device=codes.device) % self.num_channels
        embeds = embeds + self.channel_emb(channels)[:, None, :]
        if self.mix_method == "mix":
            embeds = rearrange(embeds, "(b c) t e -> b t (c e)", c=self.num_channels)
        return embeds


class MixRVQHead(nn.Module):
    """Un-mixes `(B, T, C*Q*d)` into `(B*C, T, Q*d)` (mix only) and applies the level head -> `(B*C, T, Q, K)`."""

    def __init__(self, head: nn.Module, num_channels: int, mix_method: str):
        super().__init__()
        self.head = head
        self.num_channels = num_channels
        self.mix_method = mix_method

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        if self.mix_method == "mix":
            hidden = rearrange(hidden, "b t (c e) -> (b c) t e", c=self.num_channels)
        return self.head(hidden)


class EmbeddingCorruptor(ListEmbedding):
    """brain-gen's EmbeddingCorruptor: a per-level ListEmbedding that, in training, corrupts its input.

    On whole token steps `(B, T*S*Q)` (S latents, Q levels; level = position % Q) in training mode:

    1. every code is corrupted with probability `p_levels[q]`;
    2. `max(1, T // 64)` bursts each mark a random subset of levels (each with probability 1/2) at every batch
       item and latent over a span of 2..8 steps;
    3. a corrupted code is embedded as the learned `null_embed[q]` with probability 0.7, else as a uniformly
       random code of its level.

    RNG order (as in brain-gen): `rand(B,T,S,Q)`; per burst `randint` start, `randint` length, `rand(Q)`;
    `rand(B,T,S,Q)`; per level `randint` replacements. In eval mode it is a plain ListEmbedding.
    """

    def __init__(self, vocab_size: int, hidden_size: int, num_levels: int, num_latents: int, p_levels: list[float]):
        super().__init__(vocab_size, hidden_size, num_levels)
        self.num_latents = num_latents
        self.null_embed = nn.Parameter(torch.empty(num_levels, hidden_size))
        # A plain list, not a buffer: from_pretrained re-creates non-persistent buffers empty.
        self.p_levels = [float(p) for p in p_levels]

    def reset_brain_gen_parameters(self) -> None:
        nn.init.normal_(self.null_embed, mean=0.0, std=0.02)

    def forward(self, input_ids: torch.Tensor, offset: int = 0) -> torch.Tensor:
        per_step = self.num_latents * self.num_slots
        if not self.training or offset % per_step or input_ids.shape[1] % per_step:
            return super().forward(input_ids, offset)
        B, L = input_ids.shape
        S, Q = self.num_latents, self.num_slots
        T = L // per_step
        device = input_ids.device
        codes = input_ids.reshape(B, T, S, Q)
        p_levels = torch.tensor(self.p_levels, dtype=torch.float32, device=device)
        corrupt = torch.rand(B, T, S, Q, device=device) < p_levels.view(1, 1, 1, -1)
        steps = torch.arange(T, device=device)
        for _ in range(max(1, T // 64)):
            start = torch.randint(0, T, (1,), device=device)
            length = torch.randint(2, 9, (1,), device=device)
            levels = torch.rand(Q, device=device) < 0.5
            span = (steps >= start) & (steps < (start + length).clamp(max=T))
            corrupt[:, span] |= levels
        u = torch.rand(B, T, S, Q, device=device)
        use_null, use_random = corrupt & (u < 0.7), corrupt & (u >= 0.7)
        codes = codes.clone()
        for q, table in enumerate(self.emb):
            picked = use_random[..., q]
            count = int(picked.sum())
            if count:
                codes[..., q][picked] = torch.randint(0, table.num_embeddings, (count,), device=device)
        embedded = super().forward(codes.reshape(B, L), offset).reshape(B, T, S, Q, -1)
        null = self.null_embed.to(embedded.dtype).view(1, 1, 1, Q, -1).expand_as(embedded)
        return torch.where(use_null[..., None], null, embedded).reshape(B, L, -1)
