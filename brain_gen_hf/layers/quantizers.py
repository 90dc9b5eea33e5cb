"""Residual vector quantisation with EMA codebooks (SoundStream/EnCodec style, as in brain-gen).

Behaviour reproduced from the reference because trained checkpoints depend on it:

* Codebooks are float **buffers** (`inited`, `cluster_size`, `embed`, `embed_avg`), never trained by
  gradient. `EuclideanCodebook.reset_brain_gen_parameters()` is their init entry point (what a model's
  `_init_weights` calls, e.g. after building on the meta device): it restores the state of a new codebook through
  `transformers.initialization`, which leaves tensors loaded by `from_pretrained` untouched.
* k-means initialisation from data (`kmeans(sample_rows(x, 4K), K, iters)`), with the reference's
  RNG call order so a seeded init reproduces its codebooks bit for bit. The reference runs it
  implicitly on the first forward; here that is a switch (`init_on_first_forward`), and
  `ResidualVectorQuantizer.init_codebooks` does it explicitly.
* The nearest-codeword search computes the reference's distance expression with the same operations, so
  near-duplicate codewords (k-means on few rows duplicates them) tie-break as in the reference.
* Training-mode forwards update the codebooks: dead-code replacement by random batch rows, EMA of
  counts and sums (decay 0.99), Laplace smoothing (eps 1e-6). The search, k-means and EMA arithmetic run in
  float32 whatever the model's dtype (a bfloat16 EMA would lose the 1 % updates to rounding).
* The rotation trick (Fifty et al. 2024, arXiv 2410.06424) or a straight-through estimator carries
  gradients through the quantiser in training mode; in eval mode the codeword itself is returned.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init

# Distance-matrix entries per k-means chunk (~64 MB in float32), as in the reference.
_KMEANS_MAX_DIST_ELEMENTS = 16_000_000
# Distance entries per block of the nearest-codeword search (1 MB: stays in cache).
_NEAREST_BLOCK_ELEMENTS = 262_144
_NEAREST_MIN_BLOCK_ROWS = 256  # large codebooks: enough rows per block to amortise reading the codebook


def sample_rows(samples: torch.Tensor, num: int) -> torch.Tensor:
    """`num` rows of `samples`: without replacement if there are enough, else with replacement."""
    n = samples.shape[0]
    if n >= num:
        index = torch.randperm(n, device=samples.device)[:num]
    else:
        index = torch.randint(0, n, (num,), device=samples.device)
    return samples[index]


@torch.no_grad()
def kmeans(samples: torch.Tensor, num_clusters: int, iters: int, chunk_size: int | None = None):
    """Lloyd's k-means on `(N, d)` rows. Returns `(centres (K, d), counts (K,))`, empty counts set to 1.

    Fewer than K rows are padded with standard-normal rows; empty clusters keep their previous centre.
    Distances are computed in row chunks to bound memory (results do not depend on the chunking).
    """
    samples = samples.reshape(-1, samples.shape[-1])
    dim = samples.shape[1]
    if samples.shape[0] < num_clusters:
        noise = torch.randn(num_clusters - samples.shape[0], dim, device=samples.device, dtype=samples.dtype)
        samples = torch.cat([samples, noise], dim=0)
    if chunk_size is None:
        chunk_size = max(1, _KMEANS_MAX_DIST_ELEMENTS // max(num_clusters, 1))
    chunk_size = max(1, min(chunk_size, samples.shape[0]))

    centres = sample_rows(samples, num_clusters)
    counts = torch.ones(num_clusters, device=samples.device, dtype=torch.long)
    for _ in range(iters):
        counts = torch.zeros(num_clusters, device=samples.device, dtype=torch.long)
        sums = torch.zeros(num_clusters, dim, device=samples.device, dtype=samples.dtype)
        centre_sq = (centres**2).sum(1)
        for rows in samples.split(chunk_size):
            dist = (rows**2).sum(1, keepdim=True) + centre_sq - 2 * (rows @ centres.t())
            nearest = dist.argmin(dim=1)
            counts.scatter_add_(0, nearest, torch.ones_like(nearest))
            sums.scatter_add_(0, nearest.unsqueeze(-1).expand(-1, dim), rows)
        empty = counts == 0
        counts = counts.masked_fill(empty, 1)
        centres = torch.where(empty[:, None], centres, sums / counts[:, None])
    return centres, counts


def rotate_to(src: torch.Tensor, tgt: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Rotation-trick estimator: forward value `tgt`, gradient into `src` through a fixed rotation and scale.

    Per row: `u = src/|src|`, `q = tgt/|tgt|`, `w = normalize(u + q)`; returns
    `(src - 2 (src.w) w + 2 (src.u) q) * |tgt|/|src|` with `w`, `u`, `q` and the scale detached.
    """
    shape = src.shape
    src = src.reshape(-1, shape[-1])
    tgt = tgt.reshape(-1, shape[-1])
    norm_src = src.norm(dim=-1, keepdim=True)
    norm_tgt = tgt.norm(dim=-1, keepdim=True)
    u = src / norm_src.clamp(min=eps)
    q = tgt / norm_tgt.clamp(min=eps)
    w = F.normalize(u + q, p=2, dim=1, eps=eps).detach()
    # Row-wise dot products as reductions (the reference's batched 1x1 matmuls are slow for many rows).
    rotated = src - 2 * (src * w).sum(-1, keepdim=True) * w + 2 * (src * u.detach()).sum(-1, keepdim=True) * q.detach()
    rotated = rotated * (norm_tgt / norm_src.clamp(min=eps)).detach()
    return rotated.reshape(shape)


class EuclideanCodebook(nn.Module):
    """K codewords of width `dim` held in float buffers, updated by EMA in training mode."""

    def __init__(
        self,
        dim: int,
        codebook_size: int,
        kmeans_init: bool = True,
        kmeans_iters: int = 10,
        decay: float = 0.99,
        epsilon: float = 1e-6,
        threshold_ema_dead_code: int = 2,
        init_on_first_forward: bool = True,
    ):
        super().__init__()
        self.codebook_size = codebook_size
        self.kmeans_iters = kmeans_iters
        self.decay = decay
        self.epsilon = epsilon
        self.threshold_ema_dead_code = threshold_ema_dead_code
        self.init_on_first_forward = init_on_first_forward
        self.kmeans_init = kmeans_init
        if kmeans_init:
            embed = torch.zeros(codebook_size, dim)
        else:
            embed = nn.init.kaiming_uniform_(torch.empty(codebook_size, dim))
        self.register_buffer("inited", torch.tensor([float(not kmeans_init)]))
        self.register_buffer("cluster_size", torch.zeros(codebook_size))
        self.register_buffer("embed", embed)
        self.register_buffer("embed_avg", embed.clone())

    def reset_brain_gen_parameters(self) -> None:
        """The state of a new codebook: zeros awaiting k-means (`kmeans_init`), else random codewords in use.

        The init entry point of every model holding a quantiser: `_init_weights` calls it (so a model built on the
        meta device and then `init_weights()`-ed holds real codebooks); buffers loaded by `from_pretrained` are left
        as loaded (`transformers.initialization` skips tensors it has marked initialised).
        """
        init.constant_(self.inited, float(not self.kmeans_init))
        init.zeros_(self.cluster_size)
        if self.kmeans_init:
            init.zeros_(self.embed)
        else:
            init.kaiming_uniform_(self.embed)
        init.copy_(self.embed_avg, self.embed)

    @property
    def is_initialized(self) -> bool:
        return bool(self.inited.item())

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor) -> None:
        """k-means on `4 K` rows sampled from `x` (any shape `(..., dim)`); marks the codebook initialised."""
        x = x.reshape(-1, x.shape[-1]).float()
        centres, counts = kmeans(sample_rows(x, self.codebook_size * 4), self.codebook_size, self.kmeans_iters)
        self.embed.copy_(centres)
        self.embed_avg.copy_(centres)
        self.cluster_size.copy_(counts)
        self.inited.fill_(1.0)

    @torch.no_grad()
    def nearest(self, x: torch.Tensor) -> torch.Tensor:
        """Index of the nearest codeword for each row of `x (N, dim)` (first index wins ties).

        The distances are the reference's expression, `|x|^2 - 2 x.e + |e|^2` in float32, with the same operations
        in the same order (in place, per block of rows: the same values, bit for bit). k-means on fewer rows than
        `4 K` duplicates rows, so codebooks often hold codewords that differ by a rounding error; which of them
        wins depends on that rounding, and the codes must match the reference's.
        """
        x = x.float()
        embed = self.embed.t().float()
        embed_sq = embed.pow(2).sum(0, keepdim=True)
        rows = max(_NEAREST_MIN_BLOCK_ROWS, _NEAREST_BLOCK_ELEMENTS // max(self.codebook_size, 1))
        ids = []
        for block in x.split(rows):
            dist = torch.mm(2 * block, embed)
            torch.sub(block.pow(2).sum(1, keepdim=True), dist, out=dist)
            ids.append(dist.add_(embed_sq).argmin(dim=-1))
        return torch.cat(ids)

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(ids, self.embed)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`x (..., dim)` -> `(codewords (..., dim), ids (...))`; in training mode also updates the codebook."""
        shape, dtype = x.shape, x.dtype
        flat = x.reshape(-1, shape[-1])
        if not self.is_initialized:
            if not self.init_on_first_forward:
                raise ValueError(
                    "the codebooks are not initialised: call `model.init_codebooks(...)` on a batch of "
                    "data, or load trained weights"
                )
            self.init_from_data(flat)
        ids = self.nearest(flat)
        codewords = self.lookup(ids).type(dtype).reshape(shape)
        if self.training:
            self._ema_update(flat, ids)
        return codewords, ids.reshape(shape[:-1])

    @torch.no_grad()
    def _ema_update(self, flat: torch.Tensor, ids: torch.Tensor) -> None:
        # 1. dead codes (rarely chosen lately) are replaced by random rows of this batch
        if self.threshold_ema_dead_code > 0:
            expired = self.cluster_size < self.threshold_ema_dead_code
            if torch.any(expired):
                replacement = sample_rows(flat, self.codebook_size)
                self.embed.copy_(torch.where(expired[:, None], replacement, self.embed))
        # 2. EMA of usage counts and of the sum of assigned vectors (scatter-adds: no (N, K) one-hot matrix), in
        # float32: `.float()` is the buffer itself when it is float32, a copy written back below otherwise
        cluster_size, embed_avg = self.cluster_size.float(), self.embed_avg.float()
        counts = torch.bincount(ids, minlength=self.codebook_size).float()
        sums = torch.zeros_like(embed_avg).index_add_(0, ids, flat.float())
        cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        embed_avg.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        # 3. Laplace-smoothed counts, 4. new codewords = EMA sums / counts
        total = cluster_size.sum()
        smoothed = (cluster_size + self.epsilon) / (total + self.epsilon * self.codebook_size) * total
        self.embed.copy_(embed_avg / smoothed.unsqueeze(1))
        self.cluster_size.copy_(cluster_size)
        self.embed_avg.copy_(embed_avg)


class VectorQuantizer(nn.Module):
    """One VQ level: optional projection to `codebook_dim`, nearest codeword, gradient estimator, commitment."""

    def __init__(
        self,
        dim: int,
        codebook_size: int,
        codebook_dim: int | None = None,
        rotation_trick: bool = True,
        commitment_weight: float = 0.25,
        **codebook_kwargs,
    ):
        super().__init__()
        codebook_dim = codebook_dim or dim
        self.rotation_trick = rotation_trick
        self.commitment_weight = commitment_weight
        self.project_in = nn.Linear(dim, codebook_dim) if codebook_dim != dim else nn.Identity()
        self.project_out = nn.Linear(codebook_dim, dim) if codebook_dim != dim else nn.Identity()
        self._codebook = EuclideanCodebook(codebook_dim, codebook_size, **codebook_kwargs)

    def decode(self, ids: torch.Tensor) -> torch.Tensor:
        return self.project_out(self._codebook.lookup(ids))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        input_dtype = x.dtype
        z = self.project_in(x)
        quantized, ids = self._codebook(z)
        if self.training:
            quantized = rotate_to(z, quantized).to(input_dtype) if self.rotation_trick else z + (quantized - z).detach()
        loss = F.mse_loss(z.float(), quantized.detach().float()) * self.commitment_weight
        if not self.training:
            loss = loss.detach()
        return self.project_out(quantized), ids, loss


class ResidualVectorQuantizer(nn.Module):
    """`num_quantizers` VQ levels, each quantising what the previous levels left over.

    `forward(x (..., dim))` -> `(sum of level outputs, ids (..., Q), mean commitment loss)`.
    """

    def __init__(
        self,
        dim: int,
        codebook_dim: int,
        codebook_size: int,
        num_quantizers: int,
        rotation_trick: bool = True,
        **codebook_kwargs,
    ):
        super().__init__()
        self.codebook_size = codebook_size
        self.layers = nn.ModuleList(
            [
                VectorQuantizer(dim, codebook_size, codebook_dim, rotation_trick=rotation_trick, **codebook_kwargs)
                for _ in range(num_quantizers)
            ]
        )

    @property
    def num_quantizers(self) -> int:
        return len(self.layers)

    @property
    def is_initialized(self) -> bool:
        return all(layer._codebook.is_initialized for layer in self.layers)

    def codebook_embeddings(self) -> torch.Tensor:
        """`(Q, K, dim)`: every level's codewords in model space (e.g. to seed a token LM's embedding tables)."""
        ids = torch.arange(self.codebook_size, device=self.layers[0]._codebook.embed.device)
        return torch.stack([layer.decode(ids) for layer in self.layers])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        quantized_out = torch.zeros_like(x)
        residual = x
        all_ids, losses = [], []
        for layer in self.layers:
            quantized, ids, loss = layer(residual)
            residual = residual - quantized.detach()
            quantized_out = quantized_out + quantized
            all_ids.append(ids)
            losses.append(loss)
        return quantized_out, torch.stack(all_ids, dim=-1), torch.stack(losses).mean()

    def decode(self, ids: torch.Tensor) -> torch.Tensor:
        """`ids (..., Q)` -> sum of the levels' codewords `(..., dim)`."""
        if ids.shape[-1] != self.num_quantizers:
            raise ValueError(f"codes must have {self.num_quantizers} levels in the last dimension, got {ids.shape[-1]}")
        out = self.layers[0].decode(ids[..., 0])
        for q in range(1, self.num_quantizers):
            out = out + self.layers[q].decode(ids[..., q])
        return out

    @torch.no_grad()
    def init_codebooks(self, x: torch.Tensor) -> None:
        """k-means-initialise every level in turn on the residual the previous levels leave (eval semantics)."""
        residual = x
        for layer in self.layers:
            z = layer.project_in(residual)
            layer._codebook.init_from_data(z)
            ids = layer._codebook.nearest(z.reshape(-1, z.shape[-1])).reshape(z.shape[:-1])
            residual = residual - layer.decode(ids).type(residual.dtype)


class BrainQuantizer(nn.Module):
    """The tokenizers' quantiser: optional L2 normalisation of the tokens, then residual VQ (`rvq`)."""

    def __init__(
        self,
        dim: int,
        codebook_dim: int,
        codebook_size: int,
        num_quantizers: int,
        rotation_trick: bool,
        normalize: bool = False,
        **codebook_kwargs,
    ):
        super().__init__()
        self.normalize = normalize
        self.rvq = ResidualVectorQuantizer(
            dim, codebook_dim, codebook_size, num_quantizers, rotation_trick, **codebook_kwargs
        )

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, p=2.0, dim=-1) if self.normalize else x

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.rvq(self._prepare(x))

    def init_codebooks(self, x: torch.Tensor) -> None:
        self.rvq.init_codebooks(self._prepare(x))
