"""NTD (brain-gen's causal variant of mackelab's neural time-series diffusion): a DDPM over `(B, C, L)` windows with
Ornstein-Uhlenbeck noise, an AdaConv denoiser, in-painting, and forecasting by in-painting the future.

The model holds the denoiser (the weights); `model.scheduler` (an `NTDScheduler`, built from the config and saved
next to the weights as `scheduler_config.json`) holds the schedule and the noise process. Every random draw takes
a `torch.Generator` (or uses torch's global RNG), in the reference's order, so a seeded call is reproducible and a
converted checkpoint reproduces the reference's draws.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn
from transformers import GenerationConfig, LogitsProcessorList
from transformers.utils import ModelOutput
from transformers.utils.generic import can_return_tuple

from ...forecasting import ForecastMixin, ForecastOutput, forecast_progress
from ...modeling_utils import COMMON_FORWARD_KWARGS, BrainGenPreTrainedModel, reject_unknown_kwargs
from .adaconv import AdaConv
from .configuration_ntd import NTDConfig
from .scheduling_ntd import NTDScheduler


@dataclass
class NTDOutput(ModelOutput):
    """One training step of the diffusion objective.

    loss: NTDLoss, the mean squared OU-Mahalanobis error of the noise prediction over the unobserved samples.
    pred_noise: `(B, C, L)` the denoiser's estimate of `noise`.
    noise: `(B, C, L)` the noise added to the signal (the `labels` given, or drawn from the noise process).
    timesteps: `(B,)` the diffusion step of every item.
    forecast_mask: `(B, L)` 1 where the sample was observed (fed to the denoiser and left out of the loss); None
        without a mask channel.
    hidden_states: with `output_hidden_states=True`, `(B, L, F)` after the input conv and after every block.
    """

    loss: torch.Tensor | None = None
    pred_noise: torch.Tensor | None = None
    noise: torch.Tensor | None = None
    timesteps: torch.Tensor | None = None
    forecast_mask: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None


class NTDPreTrainedModel(BrainGenPreTrainedModel):
    config_class = NTDConfig
    main_input_name = "input_values"
    # The AdaConv blocks are `GradientCheckpointingLayer`s.
    supports_gradient_checkpointing = True
    _no_split_modules = ["AdaConvBlock"]


class NTDModel(ForecastMixin, NTDPreTrainedModel):
    """Denoising diffusion over `(B, C, L)` windows, L = `config.signal_length`.

    * `forward(input_values)` -> `NTDOutput`: draws a step, OU noise and (with `mask_channel=1`) an observed prefix,
      predicts the noise and returns NTDLoss; pass `labels` (the noise), `timesteps` and `forecast_mask` to fix them.
    * `sample(batch_size)` -> `(B, C, L)` unconditional ancestral samples.
    * `impute(signal, observed_mask)` -> `(B, C, L)` with the unobserved samples drawn given the observed ones.
    * `forecast(input_values, horizon)` -> `ForecastOutput(values (B, C, horizon))`: in-paints the future window
      by window.
    """

    def __init__(self, config: NTDConfig):
        super().__init__(config)
        self.network = AdaConv(config)
        self.scheduler = NTDScheduler.from_model_config(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        raise NotImplementedError(
            f"{type(self).__name__} denoises continuous signals with convolutions: it has no token embedding table "
            "to get, set or resize"
        )

    def save_pretrained(self, save_directory: str | os.PathLike, *args, **kwargs):
        """`BrainGenPreTrainedModel.save_pretrained`, plus the scheduler's `scheduler_config.json` in the folder."""
        result = super().save_pretrained(save_directory, *args, **kwargs)
        self.scheduler.save_pretrained(save_directory)
        return result

    # ---------------------------------------------------------------------------------------------- checks
    def _check_window(self, x: torch.Tensor, name: str, channel_names: list[str] | None = None) -> torch.Tensor:
        cfg = self.config
        x = self.check_signal(x, name=name, ndim=3, num_channels=cfg.signal_channel, channel_names=channel_names)
        if x.shape[-1] != cfg.signal_length:
            raise ValueError(
                f"{name} has {x.shape[-1]} samples; the denoiser reads windows of exactly signal_length = "
                f"{cfg.signal_length} samples (its position embedding and noise process are built for that length)"
            )
        return x

    def _check_mask(self, mask: torch.Tensor, name: str, batch: int) -> torch.Tensor:
        """A `(B, L)` or channel-uniform `(B, C, L)` 0/1 mask -> `(B, L)` in the model's dtype."""
        cfg = self.config
        if not isinstance(mask, torch.Tensor) or mask.is_complex():
            raise ValueError(f"{name} must be a real or bool tensor of 0/1 values, got {type(mask).__name__}")
        if mask.ndim == 3:
            if mask.shape[1] != cfg.signal_channel or not bool((mask == mask[:, :1]).all()):
                raise ValueError(
                    f"{name} of shape {tuple(mask.shape)} must be (B, L), or (B, C, L) with the same mask on every "
                    "channel: the denoiser sees one mask channel"
                )
            mask = mask[:, 0]
        if mask.ndim != 2 or mask.shape != (batch, cfg.signal_length):
            raise ValueError(f"{name} must have shape (B, L) = ({batch}, {cfg.signal_length}), got {tuple(mask.shape)}")
        mask = mask.to(self.dtype)
        if not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError(f"{name} must hold 0 (unobserved) and 1 (observed) only")
        return mask

    def _check_timesteps(self, timesteps, batch: int) -> torch.Tensor:
        total = self.config.diffusion_time_steps
        t = torch.as_tensor(timesteps, device=self.device)
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise ValueError(f"timesteps must be integer diffusion steps, got dtype {t.dtype}")
        t = t.long().expand(batch) if t.ndim == 0 else t.long()
        if t.shape != (batch,):
            raise ValueError(f"timesteps must be one step per batch item, shape ({batch},), got {tuple(t.shape)}")
        if bool(((t < 0) | (t >= total)).any()):
            raise ValueError(f"timesteps must be in [0, {total - 1}] (diffusion_time_steps = {total})")
        return t

    def _check_cond(self, cond: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        cfg = self.config
        if cond is None:
            return None
        if cfg.cond_dim == 0:
            raise ValueError("cond was given but the model has no conditioning embedder (config.cond_dim = 0)")
        cond = self.check_signal(cond, name="cond", ndim=3, num_channels=cfg.cond_dim)
        if cond.shape[0] not in (1, batch) or cond.shape[-1] != cfg.signal_length:
            raise ValueError(
                f"cond must have shape (B or 1, {cfg.cond_dim}, {cfg.signal_length}), got {tuple(cond.shape)}"
            )
        return cond.expand(batch, -1, -1)

    # ------------------------------------------------------------------------------------------------ draws
    def sample_forecast_mask(
        self, batch_size: int, generator: torch.Generator | None = None, device: torch.device | None = None
    ) -> torch.Tensor:
        """`(B, L)` training mask: with probability `p_forecast` an observed prefix of `L - Lf` samples
        (Lf uniform in [1, L - 1]) shared by the batch, else nothing observed. Draws `rand`, then `randint`."""
        length = self.config.signal_length
        draw_on = generator.device if generator is not None else torch.device("cpu")
        forecast = torch.rand((), generator=generator, device=draw_on) < self.config.p_forecast
        future = torch.randint(1, length, (), generator=generator, device=draw_on)
        prefix = (torch.arange(length, device=draw_on) < length - future) & forecast
        return prefix.to(device or self.device, self.dtype).expand(batch_size, length)

    def _noise(self, batch: int, generator: torch.Generator | None, same_for_every_row: bool = False) -> torch.Tensor:
        shape = (1 if same_for_every_row else batch, self.config.signal_channel, self.config.signal_length)
        noise = self.scheduler.sample_noise(shape, generator=generator, device=self.device, dtype=self.dtype)
        return noise.expand(batch, -1, -1)

    def _denoise(self, state, mask, t: int, cond) -> torch.Tensor:
        x_in = state if mask is None else torch.cat([state, mask[:, None]], dim=1)
        t_vec = torch.full((state.shape[0],), int(t), device=state.device, dtype=torch.long)
        return self.network(x_in, t_vec, cond)[0]

    # ------------------------------------------------------------------------------------------------ train
    def loss(
        self, noise: torch.Tensor, pred_noise: torch.Tensor, mask: torch.Tensor | None = None, reduction: str = "mean"
    ) -> torch.Tensor:
        """NTDLoss: squared OU-Mahalanobis error of the noise estimate (float32), observed samples (mask 1) left
        out; `reduction` `"mean"`, `"sum"` or `"none"` (elementwise `(B, C, L)`)."""
        error = self.scheduler.sqrt_mahalanobis(noise - pred_noise)
        if mask is not None:
            error = error * (1 - mask.float()[:, None])
        squared = error**2
        if reduction == "mean":
            return squared.mean()
        if reduction == "sum":
            return squared.sum()
        if reduction == "none":
            return squared
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")

    @can_return_tuple
    def forward(
        self,
        input_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        timesteps: torch.Tensor | int | None = None,
        forecast_mask: torch.Tensor | None = None,
        cond: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        channel_names: list[str] | None = None,
        output_hidden_states: bool | None = None,
        **kwargs,
    ) -> NTDOutput:
        r"""
        One step of the diffusion objective: noise the signal to a step, predict the noise, score it.

        Args:
            input_values (`torch.Tensor` of shape `(B, C, L)`): clean windows, L = `config.signal_length`.
            labels (`torch.Tensor` of shape `(B, C, L)`, *optional*): the noise to add, i.e. the denoiser's target;
                drawn from the noise process when not given.
            timesteps (`torch.Tensor` of shape `(B,)` or `int`, *optional*): diffusion steps; drawn uniformly.
            forecast_mask (`torch.Tensor` of shape `(B, L)`, *optional*): 1 = observed (needs `mask_channel=1`);
                drawn as in training (`sample_forecast_mask`) when not given.
            cond (`torch.Tensor` of shape `(B, cond_dim, L)`, *optional*): conditioning channels.
            generator (`torch.Generator`, *optional*): source of the draws (else torch's global RNG). They happen
                in the reference's order: mask (`rand`, `randint`), steps (`multinomial`), noise (`randn`).
            channel_names (`list[str]`, *optional*): must equal `config.channel_names` when the config has names.
            output_hidden_states (`bool`, *optional*): also return the denoiser's hidden states.
            return_dict (`bool`, *optional*): `False` returns a tuple of the non-None fields.
        """
        reject_unknown_kwargs(kwargs, COMMON_FORWARD_KWARGS, f"{type(self).__name__}.forward")
        cfg = self.config
        x = self._check_window(input_values, "input_values", channel_names)
        batch = x.shape[0]
        if forecast_mask is not None:
            if not cfg.mask_channel:
                raise ValueError("forecast_mask needs a model with a mask channel (config.mask_channel = 1)")
            mask = self._check_mask(forecast_mask, "forecast_mask", batch)
        else:
            mask = self.sample_forecast_mask(batch, generator) if cfg.mask_channel else None
        if timesteps is None:
            draw_on = generator.device if generator is not None else torch.device("cpu")
            uniform = torch.ones(cfg.diffusion_time_steps, device=draw_on)
            timesteps = uniform.multinomial(batch, replacement=True, generator=generator)
        t = self._check_timesteps(timesteps, batch)
        if labels is None:
            noise = self._noise(batch, generator)
        else:
            noise = self.check_signal(labels, name="labels")
            if noise.shape != x.shape:
                raise ValueError(
                    f"labels (the noise to add) must have the input's shape {tuple(x.shape)}, got {tuple(noise.shape)}"
                )
        noisy = self.scheduler.add_noise(x, noise, t)
        if mask is not None:
            noisy = torch.cat([noisy, mask[:, None]], dim=1)
        want_hidden = cfg.output_hidden_states if output_hidden_states is None else output_hidden_states
        pred_noise, hidden_states = self.network(
            noisy, t, self._check_cond(cond, batch), output_hidden_states=want_hidden
        )
        return NTDOutput(
            loss=self.loss(noise, pred_noise, mask),
            pred_noise=pred_noise,
            noise=noise,
            timesteps=t,
            forecast_mask=mask,
            hidden_states=hidden_states,
        )

    # ----------------------------------------------------------------------------------------------- sample
    @torch.no_grad()
    def sample(
        self,
        batch_size: int = 1,
        *,
        generator: torch.Generator | None = None,
        num_inference_steps: int | None = None,
        cond: torch.Tensor | None = None,
        progress: bool | None = None,
    ) -> torch.Tensor:
        """`(B, C, L)` ancestral samples from the noise prior; nothing observed (the mask channel is all zeros).

        `num_inference_steps` (default: all `diffusion_time_steps`) runs an evenly strided chain. The noise comes
        from `generator` (or torch's global RNG): the prior draw, then one draw per step before the denoiser.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        cond = self._check_cond(cond, batch_size)
        scheduler = self.scheduler
        scheduler.set_timesteps(num_inference_steps)
        state = self._noise(batch_size, generator)
        mask = state.new_zeros(batch_size, self.config.signal_length) if self.config.mask_channel else None
        with self._eval_mode(), forecast_progress(len(scheduler.timesteps), type(self).__name__, progress) as bar:
            for t in scheduler.timesteps.tolist():
                step_noise = self._noise(batch_size, generator)
                pred = self._denoise(state, mask, t, cond)
                state = scheduler.step(pred, t, state, variance_noise=step_noise).prev_sample
                bar.update(1)
        return state

    @torch.no_grad()
    def impute(
        self,
        signal: torch.Tensor,
        observed_mask: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        num_inference_steps: int | None = None,
        cond: torch.Tensor | None = None,
        progress: bool | None = None,
    ) -> torch.Tensor:
        """Fill the unobserved samples of `signal` `(B, C, L)` (`observed_mask` `(B, L)`, 1 = observed) by
        in-painting: the unobserved part follows the ancestral chain, the observed part is re-noised from the
        signal at every step (`config.known_part_update`), and the denoiser sees the mask as an extra channel.

        Draws (from `generator` or torch's global RNG): the start noise, then two per step (the step's noise and
        the observed part's noise) before the denoiser.
        """
        return self._impute(signal, observed_mask, generator, num_inference_steps, cond, progress)

    def _impute(self, signal, observed_mask, generator, num_inference_steps, cond, progress, same_noise=False):
        """`impute`; `same_noise=True` gives every row the same noise draws (a row's result then does not depend
        on the rest of the batch)."""
        cfg = self.config
        if not cfg.mask_channel:
            raise ValueError(
                "impute and forecast tell the denoiser which samples are observed through a mask channel: this "
                "model has none (config.mask_channel = 0); train one with mask_channel=1 (and p_forecast > 0)"
            )
        signal = self._check_window(signal, "signal")
        batch = signal.shape[0]
        mask = self._check_mask(observed_mask, "observed_mask", batch)
        cond = self._check_cond(cond, batch)
        scheduler = self.scheduler
        scheduler.set_timesteps(num_inference_steps)
        observed = mask[:, None]
        start = scheduler.timesteps[:1].to(self.device)
        state = scheduler.add_noise(signal, self._noise(batch, generator, same_noise), start.expand(batch))
        with self._eval_mode(), forecast_progress(len(scheduler.timesteps), type(self).__name__, progress) as bar:
            for t in scheduler.timesteps.tolist():
                step_noise = self._noise(batch, generator, same_noise)
                observed_noise = self._noise(batch, generator, same_noise)
                pred = self._denoise(state, mask, t, cond)
                unknown = scheduler.step(pred, t, state, variance_noise=step_noise).prev_sample
                known = scheduler.known_part(signal, t, observed_noise, cfg.known_part_update)
                state = observed * known + (1.0 - observed) * unknown
                bar.update(1)
        return state

    @contextmanager
    def _eval_mode(self):
        """Eval mode for a sampling loop, the caller's mode restored afterwards."""
        was_training = self.training
        self.eval()
        try:
            yield
        finally:
            self.train(was_training)

    # --------------------------------------------------------------------------------------------- forecast
    def _forecast(
        self,
        input_values: torch.Tensor,
        horizon: int,
        generation_config: GenerationConfig,
        logits_processor: LogitsProcessorList,
        *,
        progress: bool | None = None,
        sliding_window_overlap: float | int | None = None,
        num_inference_steps: int | None = None,
        generator: torch.Generator | None = None,
        channel_names: list[str] | None = None,
    ) -> ForecastOutput:
        """Forecast by in-painting: each window holds the latest `L - stride` known samples (observed) and the
        rest is imputed; the next `stride` imputed samples are kept and the window slides.

        sliding_window_overlap: a float r in [0, 1] (default 0.5; capped at 0.999) gives stride
            `L - round(L * r)`; an int gives the stride itself. The context keeps its last L samples at most.
        num_inference_steps: diffusion steps per window (default: all `diffusion_time_steps`).
        generator: source of the draws (one stream for the batch). Without one, `do_sample=False` (the default)
            gives every row the same draws from a fresh CPU generator seeded with 0: the forecast of a context is
            then a fixed function of that context, whatever else is in the batch; `do_sample=True` draws from
            torch's global RNG (seed it with `transformers.set_seed`). Temperature / top-k / top-p / min-p and
            logits processors act on logits, which a diffusion model does not have: they raise `ValueError`.
        """
        cfg = self.config
        if logits_processor:
            raise ValueError(
                f"{type(self).__name__} samples continuous values by diffusion: temperature / top-k / top-p / "
                "min-p and logits processors do not apply; pass a GenerationConfig without them (do_sample=True "
                "alone draws from torch's global RNG)"
            )
        if cfg.cond_dim:
            raise ValueError("forecast of a conditioned NTD (cond_dim > 0) is not supported; use impute with cond")
        same_noise = generator is None and not generation_config.do_sample
        if same_noise:
            generator = torch.Generator().manual_seed(0)
        context = self.check_signal(
            input_values, name="input_values", ndim=3, num_channels=cfg.signal_channel, channel_names=channel_names
        ).to(self.device)
        length = cfg.signal_length
        stride = self._forecast_stride(sliding_window_overlap)
        keep = length - stride
        window_context = context[..., -length:]
        batch, channels = context.shape[:2]
        pieces, done = [], 0
        with forecast_progress(horizon, f"{type(self).__name__} forecast", progress, unit="sample") as bar:
            while done < horizon:
                known = window_context[..., -keep:] if keep > 0 else window_context[..., :0]
                n_known = known.shape[-1]
                window = context.new_zeros(batch, channels, length)
                window[..., :n_known] = known
                mask = context.new_zeros(batch, length)
                mask[:, :n_known] = 1.0
                completed = self._impute(window, mask, generator, num_inference_steps, None, False, same_noise)
                step = min(stride, length - n_known, horizon - done)
                piece = completed[..., n_known : n_known + step]
                pieces.append(piece)
                done += step
                window_context = torch.cat([window_context, piece], dim=-1)[..., -length:]
                bar.update(step)
        return ForecastOutput(values=torch.cat(pieces, dim=-1))

    def _forecast_stride(self, overlap: float | int | None) -> int:
        length = self.config.signal_length
        if overlap is None:
            overlap = 0.5
        if isinstance(overlap, bool) or not isinstance(overlap, (int, float)):
            raise ValueError(f"sliding_window_overlap must be a float ratio or an int stride, got {overlap!r}")
        if isinstance(overlap, int):
            if overlap < 1:
                raise ValueError(f"an int sliding_window_overlap is the stride in samples (>= 1), got {overlap}")
            return min(length, overlap)
        if not 0.0 <= overlap <= 1.0:
            raise ValueError(f"a float sliding_window_overlap is the overlap ratio in [0, 1], got {overlap}")
        return max(1, length - int(round(length * min(overlap, 0.999))))
