"""Reference (brain-gen) NTD checkpoints -> brain_gen_hf configs and state dicts.

The denoiser's keys (`network.*`) are unchanged. The reference also stores its schedule (`betas`, `alphas`,
`alpha_bars`, `unormalized_probs`) and the OU factor twice (`noise_sampler.*`, `mal_dist_computer.*`, one tensor);
here they belong to `NTDScheduler`, which rebuilds them from the config, so they are checked against it and dropped.
"""

from __future__ import annotations

import torch

from .configuration_ntd import NTDConfig
from .scheduling_ntd import NTDScheduler

# The scheduler's tensor each stored reference buffer must match.
_SCHEDULE_BUFFERS = {"betas": "betas", "alphas": "alphas", "alpha_bars": "alphas_cumprod"}
_NOISE_PREFIXES = ("noise_sampler.", "mal_dist_computer.")


def config_from_reference(reference_name: str, kwargs: dict, **overrides) -> NTDConfig:
    kwargs = dict(kwargs)
    # The reference accepts a padding mode but always pads causally with zeros; the FFT path it offers is unused and
    # centred (not causal).
    kwargs.pop("net_padding_mode", None)
    if kwargs.pop("net_use_fft_conv", False):
        raise ValueError(
            "reference NTD with net_use_fft_conv=True (a centred, non-causal FFT convolution) is not supported"
        )
    return NTDConfig(**{**kwargs, **overrides})


def _check_same(name: str, stored: torch.Tensor, expected: torch.Tensor) -> None:
    if stored.shape != expected.shape or not torch.allclose(stored.double(), expected.double(), rtol=1e-5, atol=1e-7):
        raise ValueError(
            f"reference buffer {name} {tuple(stored.shape)} does not match the schedule / noise process the reference "
            "kwargs describe; check diffusion_time_steps, schedule, start_beta, end_beta, ou_sigma2, ou_ell"
        )


def state_dict_from_reference(reference_name: str, state: dict, config: NTDConfig) -> dict:
    scheduler = NTDScheduler.from_model_config(config)
    state = dict(state)
    for key, attribute in _SCHEDULE_BUFFERS.items():
        if key in state:
            _check_same(key, state.pop(key), getattr(scheduler, attribute))
    state.pop("unormalized_probs", None)  # uniform step sampling: all ones
    for prefix in _NOISE_PREFIXES:
        band = state.pop(f"{prefix}banded_upper_prec", None)
        dense = state.pop(f"{prefix}dense_upper_matrix", None)
        if band is not None and scheduler.ou_band is not None:
            _check_same(f"{prefix}banded_upper_prec", band, scheduler.ou_band)
        if dense is not None and scheduler.ou_band is not None:
            _check_same(f"{prefix}dense_upper_matrix", dense, scheduler._dense_upper(torch.device("cpu")))
    # A reference model saved before its first forward has not fixed its kernel norms yet: fix them as that forward
    # would (from the stored kernels), since this model fixes them at initialisation.
    for key in [k for k in state if k.endswith(".conv.kernel_norm_initialized")]:
        if not bool(state[key]):
            prefix = key[: -len("kernel_norm_initialized")]
            state[f"{prefix}kernel_norm"] = _initial_kernel_norm(state, prefix, config)
            state[key] = torch.ones((), dtype=torch.bool)
    return state


def _initial_kernel_norm(state: dict, prefix: str, config: NTDConfig) -> torch.Tensor:
    from .adaconv import SLConv

    conv = SLConv(config.net_slconv_kernel_size, config.hidden_width, config.net_num_scales)
    conv.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}, strict=False)
    with torch.no_grad():
        return conv.stacked_kernel().norm(dim=-1, keepdim=True)
