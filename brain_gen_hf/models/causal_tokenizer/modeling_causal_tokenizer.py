"""What the causal RVQ brain tokenizers share: windows, RVQ codes, the objective, decode and streaming.

A family subclass provides `sensor_embed(pos, sensor_type) -> (B, C, D)`, `encoder(windows, sensor_embedding,
state=None, hidden_states=None, attentions=None) -> (B, C', N, Tw, D)`, `decoder(latents, sensor_embedding,
attentions=None) -> (B, C, N, L)` and `_sensor_inputs(...)` (which sensor metadata it needs), and builds
`self.quantizer` with `build_quantizer(config)`. `hidden_states`/`attentions` are lists the encoder and decoder
append to when `forward` is asked for them (`output_hidden_states`, `output_attentions`).

Everything here is stateless with respect to the data: sensor metadata is passed to every call (or
taken from the config's signal contract), never remembered from a previous call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from einops import rearrange
from torch import nn
from transformers import initialization as init
from transformers.utils.generic import can_return_tuple

from ...layers.brainomni_attention import RMSNorm
from ...layers.quantizers import BrainQuantizer
from ...layers.reconstruction_losses import code_perplexity, l1_loss, pearson_correlation, spectral_losses
from ...modeling_outputs import BrainTokenizerEncoding, BrainTokenizerOutput
from ...modeling_utils import COMMON_FORWARD_KWARGS, BrainGenPreTrainedModel, reject_unknown_kwargs
from .configuration_causal_tokenizer import CausalRVQTokenizerConfig
from .seanet import SLSTM
from .streaming_conv import StreamingConv1d


def build_quantizer(config: CausalRVQTokenizerConfig) -> BrainQuantizer:
    return BrainQuantizer(
        config.token_dim,
        config.codebook_dim,
        config.codebook_size,
        config.num_quantizers,
        config.rotation_trick,
        normalize=config.normalize,
        kmeans_iters=config.kmeans_iters,
        init_on_first_forward=config.codebook_init == "kmeans_on_first_forward",
    )


@dataclass
class TokenizerStreamState:
    """Carried between `encode_stream` calls: convolution/LSTM context and the position in the current window.

    Pass back the state the previous call returned; `encode_stream` refuses one that cannot continue the stream
    (a position outside the window or off the hop grid, layer contexts of another model or batch shape).
    """

    position: int = 0
    layers: dict = field(default_factory=dict)


class CausalRVQTokenizerModel(BrainGenPreTrainedModel):
    """Base of the causal RVQ tokenizers (see the family modeling files for the public API docs).

    transformers conventions, as they apply to a convolutional RVQ tokenizer:

    * `output_hidden_states=True`: the encoder's stage outputs, time-major `(B, [C,] W_stage, width)` (the first
      convolution's output first, then each downsampling stage, then the family's own stages), ending with the
      latent tokens the RVQ quantises `(B, C', W, D)`. They are the tensors the next stage reads (not copies), so
      gradients reach them.
    * `output_attentions=True`: the attention maps where the family has attention (BrainOmni's sensor<->latent
      cross-attention); none for a convolution-only tokenizer.
    * `return_dict=False` returns the output's non-`None` fields as a tuple.
    * Gradient checkpointing recomputes the SEANet residual blocks (whole-window calls only, not streaming).
    * No token table: the tokenizer reads continuous signals, so there are no input embeddings to get, set or
      resize (`get_input_embeddings()` returns `None`, `set_input_embeddings` raises `ValueError`).
    """

    config_class = CausalRVQTokenizerConfig
    main_input_name = "input_values"
    supports_gradient_checkpointing = True

    # ------------------------------------------------------------------ init
    def _init_module(self, module: nn.Module) -> None:
        # The reference's init: trunc-normal(0.02) Linear/Embedding (zero bias), unit RMSNorm; convolutions and
        # LSTMs keep PyTorch's defaults.
        if isinstance(module, nn.Linear):
            init.trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.trunc_normal_(module.weight, std=0.02)
        elif isinstance(module, RMSNorm):
            init.ones_(module.weight)
        else:  # modules with their own `reset_brain_gen_parameters` (e.g. learned latent queries), convs, LSTMs
            super()._init_module(module)

    def get_input_embeddings(self) -> None:
        """`None`: a signal tokenizer reads continuous values, it has no input token table."""
        return None

    def set_input_embeddings(self, value: nn.Module) -> None:
        raise ValueError(f"{type(self).__name__} reads continuous signals: it has no input token table to replace")

    # ------------------------------------------------------------- helpers
    @property
    def hop_length(self) -> int:
        return self.config.hop_length

    def codebook_embeddings(self) -> torch.Tensor:
        """`(Q, K, D)`: codewords per RVQ level in token space (D = `config.token_dim`); summing level q's row
        `codes[..., q]` over q gives `encode(...).embeddings`."""
        return self.quantizer.rvq.codebook_embeddings()

    def flatten_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """`(B, C', W, Q)` -> `(B, W * C' * Q)` in the reference's flat order (time, latent, level), level fastest."""
        return rearrange(codes, "B C W Q -> B (W C Q)")

    def unflatten_codes(self, flat: torch.Tensor) -> torch.Tensor:
        """Inverse of `flatten_codes`."""
        per_step = self.config.n_neuro * self.config.num_quantizers
        if flat.ndim != 2 or flat.shape[1] % per_step:
            raise ValueError(
                f"flat codes must be (B, W * {self.config.n_neuro} * {self.config.num_quantizers}), got "
                f"shape {tuple(flat.shape)}"
            )
        return rearrange(flat, "B (W C Q) -> B C W Q", C=self.config.n_neuro, Q=self.config.num_quantizers)

    def _check_input(
        self, x: torch.Tensor, sampling_rate: float | None, channel_names: list[str] | None = None
    ) -> torch.Tensor:
        """The checked signal in the model's dtype (float16/float64 recordings are cast)."""
        x = self.check_signal(
            x, name="input_values", ndim=3, num_channels=self.config.contract_num_channels, channel_names=channel_names
        )
        self.config.check_signal_metadata(sampling_rate=sampling_rate)
        return x

    def _windows(self, x: torch.Tensor, allow_shorter_windows: bool = False) -> torch.Tensor:
        """`(B, C, T)` -> non-overlapping windows `(B, C, N, L)`."""
        length, window = x.shape[-1], self.config.window_length
        if length < window and allow_shorter_windows:
            if length % self.hop_length:
                raise ValueError(
                    f"a short input must be a multiple of the hop ({self.hop_length} samples), got {length}"
                )
            return x.unsqueeze(2)
        if length % window:
            hint = "" if allow_shorter_windows else " (or pass allow_shorter_windows=True for one short window)"
            raise ValueError(
                f"the input length ({length} samples) must be a multiple of window_length ({window}); "
                f"crop or pad the recording{hint}"
            )
        return x.unfold(-1, window, window)

    def _latents(
        self,
        windows: torch.Tensor,
        sensor_embedding: torch.Tensor,
        state: dict | None = None,
        hidden_states: list | None = None,
        attentions: list | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """`(features (B, C', N, Tw, D), quantized (B, C', N, Tw, D), codes (B, C', N, Tw, Q), commitment)`."""
        features = self.encoder(windows, sensor_embedding, state, hidden_states=hidden_states, attentions=attentions)
        num_windows = features.shape[2]
        tokens = rearrange(features, "B C N T D -> B C (N T) D")  # the RVQ reads rows: the same rows in the same order
        if hidden_states is not None:
            hidden_states.append(tokens)
        quantized, codes, commitment = self.quantizer(tokens)
        quantized = rearrange(quantized, "B C (N T) D -> B C N T D", N=num_windows)
        codes = rearrange(codes, "B C (N T) Q -> B C N T Q", N=num_windows)
        return features, quantized, codes, commitment

    # ------------------------------------------------------------------ api
    @torch.no_grad()
    def init_codebooks(
        self,
        input_values: torch.Tensor,
        pos: torch.Tensor | None = None,
        sensor_type: torch.Tensor | None = None,
        seed: int | None = None,
    ) -> None:
        """k-means-initialise every RVQ level from a batch (the reference does this on its first forward).

        With `seed`, the global RNG is seeded inside a forked RNG scope, so the result equals the reference's
        `torch.manual_seed(seed); model(batch)` while the caller's RNG stream is left untouched.
        """
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"seed must be an int or None, got {seed!r}")
        x = self._check_input(input_values, None)
        pos, sensor_type = self._sensor_inputs(x, pos, sensor_type)
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            features = self.encoder(self._windows(x), self.sensor_embed(pos, sensor_type))
            self.quantizer.init_codebooks(features)

    def encode(
        self,
        input_values: torch.Tensor,
        pos: torch.Tensor | None = None,
        sensor_type: torch.Tensor | None = None,
        *,
        sampling_rate: float | None = None,
        channel_names: list[str] | None = None,
        allow_shorter_windows: bool = False,
    ) -> BrainTokenizerEncoding:
        """Signal `(B, C, T)` -> `codes (B, C', W, Q)` and quantised `embeddings (B, C', W, D)`.

        In training mode the RVQ updates its codebooks (the reference's behaviour); use eval mode to only read.
        `sampling_rate` and `channel_names` (optional) must match the config's signal contract where it has them;
        a float16/float64 signal is cast to the model's dtype.
        """
        x = self._check_input(input_values, sampling_rate, channel_names)
        pos, sensor_type = self._sensor_inputs(x, pos, sensor_type)
        windows = self._windows(x, allow_shorter_windows)
        _, quantized, codes, commitment = self._latents(windows, self.sensor_embed(pos, sensor_type))
        return BrainTokenizerEncoding(
            codes=rearrange(codes, "B C N T Q -> B C (N T) Q"),
            embeddings=rearrange(quantized, "B C N T D -> B C (N T) D"),
            commitment_loss=commitment,
        )

    def encode_stream(
        self,
        chunk: torch.Tensor,
        pos: torch.Tensor | None = None,
        sensor_type: torch.Tensor | None = None,
        state: TokenizerStreamState | None = None,
        *,
        sampling_rate: float | None = None,
        channel_names: list[str] | None = None,
    ) -> tuple[torch.Tensor, TokenizerStreamState]:
        """Encode a recording chunk by chunk: `(codes (B, C', w, Q), state)` for a chunk of `w * hop` samples.

        Chunks may have any length that is a multiple of the hop; concatenating the codes of successive
        chunks gives exactly `encode(whole recording).codes` (window boundaries reset the state).
        """
        x = self._check_input(chunk, sampling_rate, channel_names)
        if x.shape[-1] % self.hop_length:
            raise ValueError(
                f"stream chunks must be a multiple of the hop ({self.hop_length} samples), got {x.shape[-1]}"
            )
        state = self._check_stream_state(state, x)
        pos, sensor_type = self._sensor_inputs(x, pos, sensor_type)
        sensor_embedding = self.sensor_embed(pos, sensor_type)
        window, start, pieces = self.config.window_length, 0, []
        while start < x.shape[-1]:
            if state.position == 0:
                state.layers = {}
            stop = min(x.shape[-1], start + window - state.position)
            segment = x[..., start:stop].unsqueeze(2)  # one (partial) window
            _, _, codes, _ = self._latents(segment, sensor_embedding, state=state.layers)
            pieces.append(rearrange(codes, "B C N T Q -> B C (N T) Q"))
            state.position = (state.position + stop - start) % window
            start = stop
        return torch.cat(pieces, dim=2), state

    def _check_stream_state(self, state: TokenizerStreamState | None, x: torch.Tensor) -> TokenizerStreamState:
        """A new state, or `state` if it can continue a stream of chunks shaped like `x` in this model.

        The loop trusts `state.position` (a negative one makes a segment longer than a window, one past the
        window an empty segment) and feeds `state.layers` to the encoder's layers as their left context.
        """
        if state is None:
            return TokenizerStreamState()
        if not isinstance(state, TokenizerStreamState):
            raise ValueError(  # noqa: TRY004 (bad inputs are ValueErrors throughout, as in `check_signal`)
                f"state must be the TokenizerStreamState returned by the previous encode_stream call (or None to "
                f"start a stream), got {type(state).__name__}"
            )
        window, hop, position = self.config.window_length, self.hop_length, state.position
        if isinstance(position, bool) or not isinstance(position, int) or not 0 <= position < window or position % hop:
            raise ValueError(
                f"state.position must be the samples already streamed into the current window: an int "
                f"in [0, {window}) and a multiple of the hop ({hop}), got {position!r}"
            )
        if not isinstance(state.layers, dict):
            raise ValueError(  # noqa: TRY004
                f"state.layers must be a dict of layer contexts, got {type(state.layers).__name__}"
            )
        if position == 0:
            return state  # a window boundary: the layer contexts are reset
        # Mid-window, every streaming layer of the encoder carries the context of this window's earlier chunks.
        layers = [m for m in self.encoder.modules() if isinstance(m, (StreamingConv1d, SLSTM))]
        if set(state.layers) != set(layers):
            raise ValueError(
                f"state.layers does not hold the context of this model's {len(layers)} streaming "
                f"encoder layers (got {len(state.layers)} entries); continue a stream with the state "
                "this model returned for its previous chunk"
            )
        # The encoder's first convolution reads the chunk as (rows, in_channels, time): B * C values per sample.
        rows = x.shape[0] * x.shape[1] // layers[0].conv.conv.in_channels
        for layer in layers:
            if isinstance(layer, SLSTM):  # (h, c)
                expected = ((layer.lstm.num_layers, rows, layer.lstm.hidden_size),) * 2
            else:
                expected = ((rows, layer.conv.conv.in_channels, max(layer.padding_total, 0)),)
            context = state.layers[layer]
            context = context if isinstance(context, tuple) else (context,)
            got = tuple(tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__ for t in context)
            if got != expected:
                raise ValueError(
                    f"state.layers holds {got} for a {type(layer).__name__} that expects tensors of "
                    f"shape {expected}: the state does not come from chunks of shape (B, C) = "
                    f"{tuple(x.shape[:2])} in this model"
                )
        return state

    def codes_to_embeddings(self, codes: torch.Tensor) -> torch.Tensor:
        """`(B, C', W, Q')` -> `(B, C', W, D)`: sum of the levels' codewords.

        With fewer levels than the model has (Q' < Q), the missing levels repeat the last given code (the
        reference's convention, kept so decoded partial predictions match it).
        """
        codes = self._check_codes(codes, allow_fewer_levels=True)
        missing = self.config.num_quantizers - codes.shape[-1]
        if missing:
            codes = torch.cat([codes, codes[..., -1:].expand(*codes.shape[:-1], missing)], dim=-1)
        return self.quantizer.rvq.decode(codes)

    def decode(
        self,
        codes: torch.Tensor,
        pos: torch.Tensor | None = None,
        sensor_type: torch.Tensor | None = None,
        *,
        tokens_per_window: int | None = None,
    ) -> torch.Tensor:
        """Codes `(B, C', W, Q)` (or flat `(B, W * C' * Q)`) -> signal `(B, C, ceil(W / Tw) * L)`.

        A partial last window is completed by repeating the last token step, so the output covers whole
        windows: crop it to `W * hop` samples. Decoding runs in chunks of windows to cap memory.
        """
        if isinstance(codes, torch.Tensor) and codes.ndim == 2:
            codes = self.unflatten_codes(self.check_tokens(codes, vocab_size=self.config.codebook_size, name="codes"))
        codes = self._check_codes(codes)
        if tokens_per_window is None:
            tokens_per_window = self.config.tokens_per_window
        elif isinstance(tokens_per_window, bool) or not isinstance(tokens_per_window, int) or tokens_per_window < 1:
            raise ValueError(
                f"tokens_per_window must be a positive int (token steps per decoded window) or None for "
                f"the config's {self.config.tokens_per_window}, got {tokens_per_window!r}"
            )
        batch = codes.shape[0]
        pos, sensor_type = self._sensor_inputs(None, pos, sensor_type, batch=batch)
        sensor_embedding = self.sensor_embed(pos, sensor_type)
        num_windows = math.ceil(codes.shape[2] / tokens_per_window)
        pad = num_windows * tokens_per_window - codes.shape[2]
        if pad:
            codes = torch.cat([codes, codes[:, :, -1:].expand(-1, -1, pad, -1)], dim=2)
        codes = rearrange(codes, "B C (N T) Q -> B C N T Q", T=tokens_per_window)
        chunk = self.config.decode_window_chunk or max(1, self.config.decode_max_tokens // tokens_per_window)
        windows = [
            self.decoder(self.quantizer.rvq.decode(codes[:, :, i : i + chunk]), sensor_embedding)
            for i in range(0, num_windows, chunk)
        ]
        return torch.cat(windows, dim=2).flatten(2)

    def _check_codes(self, codes: torch.Tensor, allow_fewer_levels: bool = False) -> torch.Tensor:
        cfg = self.config
        self.check_tokens(codes, vocab_size=cfg.codebook_size, name="codes", ndim=4, num_channels=cfg.n_neuro)
        levels = codes.shape[-1]
        if levels > cfg.num_quantizers or (levels < cfg.num_quantizers and not allow_fewer_levels):
            raise ValueError(f"codes must have {cfg.num_quantizers} RVQ levels in the last dimension, got {levels}")
        return codes

    @can_return_tuple
    def forward(
        self,
        input_values: torch.Tensor,
        pos: torch.Tensor | None = None,
        sensor_type: torch.Tensor | None = None,
        *,
        sampling_rate: float | None = None,
        channel_names: list[str] | None = None,
        allow_shorter_windows: bool = False,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> BrainTokenizerOutput:
        """Reconstruct a signal through its codes and compute the training objective.

        Args:
            input_values: `(B, C, T)` float signal, T a multiple of `window_length` (or, with
                `allow_shorter_windows`, one window of a multiple of the hop); half/double precision is cast to the
                model's dtype.
            pos: `(B, C, n_pos)` sensor positions (+ orientations), `sensor_type`: `(B, C)` int sensor-type ids;
                optional where the config's signal contract provides them (see the family's module docstring).
            sampling_rate, channel_names: checked against the config's signal contract where it has them.
            output_hidden_states, output_attentions: return the encoder's stage outputs / the attention maps (see
                the class docstring); default: the config's values.
            return_dict: `False` returns a tuple of the non-`None` fields.

        Returns:
            `BrainTokenizerOutput`: `loss` and its terms, `reconstruction (B, C, T)` (float32), `codes (B, C', W, Q)`
            with W = T / hop, and `hidden_states`/`attentions` when asked for. Unknown keywords raise `TypeError`.
        """
        reject_unknown_kwargs(kwargs, COMMON_FORWARD_KWARGS, f"{type(self).__name__}.forward")
        cfg = self.config
        if output_hidden_states is None:
            output_hidden_states = cfg.output_hidden_states
        if output_attentions is None:
            output_attentions = cfg.output_attentions
        hidden_states = [] if output_hidden_states else None
        attentions = [] if output_attentions else None
        x = self._check_input(input_values, sampling_rate, channel_names)
        pos, sensor_type = self._sensor_inputs(x, pos, sensor_type)
        windows = self._windows(x, allow_shorter_windows)
        sensor_embedding = self.sensor_embed(pos, sensor_type)
        if self.training and cfg.shuffle_channels:
            order = torch.randperm(windows.shape[1], device=windows.device)
            windows, sensor_embedding = windows[:, order], sensor_embedding[:, order]
        if self.training and cfg.noise_std > 0:
            windows = windows + torch.randn_like(windows) * cfg.noise_std
        _, quantized, codes, commitment = self._latents(
            windows, sensor_embedding, hidden_states=hidden_states, attentions=attentions
        )
        # The objective (its FFT terms above all) is computed in float32 whatever the model's dtype, on purpose.
        reconstruction = self.decoder(quantized, sensor_embedding, attentions=attentions).float()
        target = (_standardize(windows) if cfg.normalize else windows).float()
        l1 = l1_loss(reconstruction, target)
        pcc = pearson_correlation(reconstruction, target)
        amp, phi = spectral_losses(reconstruction, target)
        loss = l1 + torch.exp(-pcc) + commitment + amp + 0.5 * phi
        return BrainTokenizerOutput(
            loss=loss,
            l1=l1.detach(),
            pcc=pcc.detach(),
            amp=amp.detach(),
            phi=phi.detach(),
            commit=commitment.detach(),
            ppl=code_perplexity(codes, cfg.codebook_size),
            reconstruction=reconstruction.flatten(2),
            codes=rearrange(codes, "B C N T Q -> B C (N T) Q"),
            hidden_states=tuple(hidden_states) if hidden_states is not None else None,
            attentions=tuple(attentions) if attentions is not None else None,
        )


def _standardize(windows: torch.Tensor) -> torch.Tensor:
    windows = windows.float()
    windows = windows - windows.mean(dim=-1, keepdim=True)
    return windows / (windows.std(dim=-1, keepdim=True) + 1e-6)
