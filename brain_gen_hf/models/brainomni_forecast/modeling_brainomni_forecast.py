"""BrainOmni causal forecaster: next-step RVQ codes of every latent channel, rolled out with a KV cache.

The model holds its tokenizer (`self.tokenizer`, a `BrainOmniCausalTokenizerModel` built from
`config.tokenizer_config`), so one `save_pretrained` folder carries both.

* `forward(x, pos, sensor_type)` -> `BrainOmniForecastOutput`: codes of the input, logits `(B, C', W-1, Qu, K)`
  for steps 1..W-1 from steps 0..W-2, cross-entropy (+ the tokenizer's commitment loss when trained jointly).
* `logits_from_embeddings(embeddings (B, C', W, D), cache=None)` -> `(B, C', W, Qu, K)`: the transformer alone.
* `forecast(x, pos, sensor_type, steps)` -> decoded context + `steps` new token steps (`steps * hop` samples),
  greedy or sampled, with a `DynamicCache` over the temporal attention (`use_cache=False` recomputes).

Differences from brain-gen's `BrainOmniCausalForecast` are listed in docs/reference-differences.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from transformers import DynamicCache
from transformers.utils import ModelOutput

from ...layers.sampling import make_sampler, rollout_progress
from .spatiotemporal_attention import SpatialTemporalAttentionBlock
from ...modeling_utils import (
    COMMON_FORWARD_KWARGS,
    BrainGenPreTrainedModel,
    reject_unknown_kwargs,
    sub_model_from_config,
)
from .configuration_brainomni_forecast import BrainOmniCausalForecastConfig


@dataclass
class BrainOmniForecastOutput(ModelOutput):
    """loss: `cross_entropy` (+ `commitment_loss` when the tokenizer is trained jointly).

    logits: `(B, C', W-1, Qu, K)`; position t predicts the codes of step t+1. targets: `(B, C', W-1, Qu)`.
    accuracy: argmax accuracy (a metric); codes: `(B, C', W, Q)` codes of the input.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    targets: torch.Tensor | None = None
    cross_entropy: torch.Tensor | None = None
    commitment_loss: torch.Tensor | None = None
    accuracy: torch.Tensor | None = None
    codes: torch.Tensor | None = None


@dataclass
class BrainOmniForecastGeneration(ModelOutput):
    """signal: decoded context and rollout `(B, C, (W + steps) * hop)`; rollout: its last `steps * hop` samples;
    codes: `(B, C', W + steps, Q)` (levels not predicted are carried over from the last context step)."""

    signal: torch.Tensor | None = None
    rollout: torch.Tensor | None = None
    codes: torch.Tensor | None = None


class BrainOmniCausalForecastModel(BrainGenPreTrainedModel):
    """Autoregressive spatial/temporal transformer over BrainOmni tokenizer codes (see the module docstring)."""

    config_class = BrainOmniCausalForecastConfig
    main_input_name = "input_values"

    def __init__(self, config: BrainOmniCausalForecastConfig):
        super().__init__(config)
        tok = config.tokenizer_config
        self.tokenizer = sub_model_from_config(tok)
        self.projection = nn.Linear(tok.n_dim, config.lm_dim) if tok.n_dim != config.lm_dim else nn.Identity()
        self.blocks = nn.ModuleList([SpatialTemporalAttentionBlock(config.lm_dim, config.lm_head, config.lm_dropout,
                                                                   causal=True) for _ in range(config.lm_depth)])
        self.predict_head = nn.Linear(config.lm_dim, config.num_quantizers_used * tok.codebook_size)
        self.post_init()

    # -------------------------------------------------------------- pieces
    def embed_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """`(B, C', W, Qu)` -> `(B, C', W, D)`: sum of the codewords of the levels the model predicts."""
        layers = self.tokenizer.quantizer.rvq.layers
        out = layers[0].decode(codes[..., 0])
        for q in range(1, codes.shape[-1]):
            out = out + layers[q].decode(codes[..., q])
        return out

    def logits_from_embeddings(self, embeddings: torch.Tensor, cache: DynamicCache | None = None) -> torch.Tensor:
        """Latent embeddings `(B, C', W, D)` -> next-step logits `(B, C', W, Qu, K)` (causal in W).

        With `cache`, the W steps continue the cached sequence (positions and keys of earlier steps).
        """
        latent_bias = self.tokenizer.encoder.neuros.detach().type_as(embeddings)[None, :, None, :]
        x = self.projection(embeddings + latent_bias)
        for i, block in enumerate(self.blocks):
            x = block(x, cache, i)
        return rearrange(self.predict_head(x), "B C W (Q K) -> B C W Q K", Q=self.config.num_quantizers_used)

    def _tokenize(self, x, pos, sensor_type, **kwargs):
        if self.config.freeze_tokenizer:
            was_training = self.tokenizer.training
            self.tokenizer.eval()
            try:
                with torch.no_grad():
                    return self.tokenizer.encode(x, pos, sensor_type, **kwargs)
            finally:
                self.tokenizer.train(was_training)
        return self.tokenizer.encode(x, pos, sensor_type, **kwargs)

    # ------------------------------------------------------------- forward
    def forward(self, input_values: torch.Tensor, pos: torch.Tensor | None = None,
                sensor_type: torch.Tensor | None = None, *, sampling_rate: float | None = None,
                channel_names: list[str] | None = None, allow_shorter_windows: bool = False,
                **kwargs) -> BrainOmniForecastOutput:
        """Inputs are checked as in the tokenizer's `encode`; unknown keywords raise `TypeError`."""
        reject_unknown_kwargs(kwargs, COMMON_FORWARD_KWARGS, f"{type(self).__name__}.forward")
        cfg = self.config
        encoding = self._tokenize(input_values, pos, sensor_type, sampling_rate=sampling_rate,
                                  channel_names=channel_names, allow_shorter_windows=allow_shorter_windows)
        codes = encoding.codes
        if codes.shape[2] < 2:
            raise ValueError(f"the input gives {codes.shape[2]} token step(s); next-step prediction needs at least 2 "
                             f"(at least {2 * self.tokenizer.hop_length} samples in whole windows)")
        used = cfg.num_quantizers_used
        if used == cfg.tokenizer_config.num_quantizers and not cfg.freeze_tokenizer:
            embeddings = encoding.embeddings  # joint training: gradients reach the tokenizer
        else:
            embeddings = self.embed_codes(codes[..., :used])
        logits = self.logits_from_embeddings(embeddings[:, :, :-1])
        targets = codes[:, :, 1:, :used]
        cross_entropy = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1))
        loss, commitment = cross_entropy, None
        if not cfg.freeze_tokenizer:
            commitment = encoding.commitment_loss
            loss = loss + commitment
        accuracy = (logits.detach().argmax(-1) == targets).float().mean()
        return BrainOmniForecastOutput(loss=loss, logits=logits, targets=targets, cross_entropy=cross_entropy,
                                       commitment_loss=commitment, accuracy=accuracy, codes=codes)

    # ------------------------------------------------------------ forecast
    @torch.no_grad()
    def forecast(self, input_values: torch.Tensor, pos: torch.Tensor | None = None,
                 sensor_type: torch.Tensor | None = None, steps: int = 1, *, do_sample: bool = False,
                 temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, use_cache: bool = True,
                 sampling_rate: float | None = None, channel_names: list[str] | None = None,
                 allow_shorter_windows: bool = False, progress: bool | None = None) -> BrainOmniForecastGeneration:
        """Roll the latent sequence out by `steps` token steps and decode context + rollout to signal space.

        Greedy by default; `do_sample=True` samples each level with temperature / top-k / top-p (global RNG).
        Runs in eval mode (restored afterwards), so the tokenizer's codebooks are never updated. The context is
        checked as in `forward` (`sampling_rate`, `channel_names`, `allow_shorter_windows`). `progress`: a
        tqdm bar over the steps; `None` (default) shows it only for long rollouts in a terminal or notebook.
        """
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"`steps` must be a positive integer (token steps of {self.tokenizer.hop_length} "
                             f"samples), got {steps!r}")
        was_training = self.training
        self.eval()
        try:
            encoding = self.tokenizer.encode(input_values, pos, sensor_type, sampling_rate=sampling_rate,
                                             channel_names=channel_names,
                                             allow_shorter_windows=allow_shorter_windows)
            codes = encoding.codes
            used = codes[..., : self.config.num_quantizers_used]
            choose = self._chooser(do_sample, temperature, top_k, top_p)
            cache = DynamicCache() if use_cache else None
            logits = self.logits_from_embeddings(self.embed_codes(used), cache)
            new = []
            with rollout_progress(steps, progress, desc=f"{type(self).__name__} rollout", unit="step") as bar:
                for step in range(steps):
                    new.append(choose(logits[:, :, -1]).unsqueeze(2))  # (B, C', 1, Qu)
                    bar.update(1)
                    if step + 1 < steps:
                        if cache is not None:
                            logits = self.logits_from_embeddings(self.embed_codes(new[-1]), cache)
                        else:
                            logits = self.logits_from_embeddings(self.embed_codes(torch.cat([used, *new], dim=2)))
            generated = torch.cat(new, dim=2)
            # levels the model does not predict are carried over from the last context step
            carried = codes[:, :, -1:, generated.shape[-1]:].expand(-1, -1, steps, -1)
            all_codes = torch.cat([codes, torch.cat([generated, carried], dim=-1)], dim=2)
            hop = self.tokenizer.hop_length
            signal = self.tokenizer.decode(all_codes, pos, sensor_type)[..., : all_codes.shape[2] * hop]
        finally:
            self.train(was_training)
        return BrainOmniForecastGeneration(signal=signal, rollout=signal[..., codes.shape[2] * hop:], codes=all_codes)

    @staticmethod
    def _chooser(do_sample: bool, temperature: float, top_k: int, top_p: float):
        return make_sampler("roulette" if do_sample else "argmax", temperature=temperature, top_k=top_k, top_p=top_p)
