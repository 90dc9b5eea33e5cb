"""Forecasting families under the one forecast contract: a registry of tiny builders.

Each family adds one `ForecastCase` to `FORECAST_CASES` (keyed by a short name); `tests/test_forecast_contract.py`
runs every check over every entry. A builder returns a small model with seeded weights; `inputs(batch)` returns
`(input_values, sensor_metadata)`; keys of `batched_metadata` hold a tensor with the batch on axis 0 (sliced
with the signal in the batch-independence check). Add an entry like:

    def _my_family():
        model = ...  # tiny config, torch.manual_seed first
        return model

    FORECAST_CASES["my_family"] = ForecastCase(
        build=_my_family, inputs=lambda batch: (torch.randn(batch, 3, 32, generator=...), {}), horizon=4)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ForecastCase:
    """build: () -> a tiny model with seeded weights. inputs: batch -> (input_values, sensor_metadata), the
    same values for the same batch size (seeded). horizon: a short valid horizon in samples; long_horizon a
    second, longer one (a non-multiple of the family's step where that is allowed). samples: False for a
    deterministic model (do_sample=True must raise ValueError). wrong_channels: (input_values, metadata) ->
    an input whose channel count the model must refuse (default: drop the last channel of a (B, C, T)
    signal and of every batched metadata tensor)."""

    build: Callable[[], torch.nn.Module]
    inputs: Callable[[int], tuple[torch.Tensor, dict]]
    horizon: int
    long_horizon: int | None = None
    samples: bool = True
    batched_metadata: tuple[str, ...] = ()
    wrong_channels: Callable[[torch.Tensor, dict], tuple[torch.Tensor, dict]] | None = None
    rtol: float = 1e-4
    atol: float = 1e-5


def drop_last_channel(input_values: torch.Tensor, metadata: dict) -> tuple[torch.Tensor, dict]:
    """A (B, C, T) signal with one channel fewer; metadata left as it is (it then describes C channels)."""
    return input_values[:, :-1], metadata


def row(case: ForecastCase, input_values: torch.Tensor, metadata: dict, i: int) -> tuple[torch.Tensor, dict]:
    """Batch row `i` of the signal and of its batched metadata, batch axis kept."""
    metadata = {k: v[i : i + 1] if k in case.batched_metadata else v for k, v in metadata.items()}
    return input_values[i : i + 1], metadata


# ------------------------------------------------------------------------------------------------- families
def _bendr():
    from tests.test_bendr import build

    return build()


def _bendr_inputs(batch):
    from tests.test_bendr import signal

    return signal(batch=batch, steps=14), {}


def _brainomni_forecast():
    from tests.test_brainomni_forecast import build

    return build()


def _brainomni_forecast_inputs(batch):
    from tests.test_brainomni_forecast import small_inputs

    inputs = small_inputs(batch=batch)
    return inputs.pop("input_values"), inputs


def _brainomni_wrong_channels(input_values, metadata):
    return input_values[:, :-1], metadata  # `pos` / `sensor_type` still describe 3 channels


def _wavenet():
    from tests.test_wavenet import forecast_model

    return forecast_model()


def _wavenet_parallel():
    from tests.test_wavenet import forecast_model

    return forecast_model(quant_emb=16, parallel_layers=True)  # converted checkpoints' unchained wiring


def _wavenet_inputs(batch):
    from tests.test_wavenet import forecast_signal

    return forecast_signal(batch=batch), {}


def _wavenet3d():
    from tests.test_wavenet import forecast_model_3d

    return forecast_model_3d()


def _wavenet3d_inputs(batch):
    from tests.test_wavenet import forecast_signal

    return forecast_signal(batch=batch, channels=4, steps=9), {}  # the pixels come from the config


def _tasa3d():
    from tests.test_tasa3d import forecast_model

    return forecast_model()


def _tasa3d_inputs(batch):
    from tests.test_tasa3d import COLS, ROWS, forecast_signal

    return forecast_signal(batch=batch), {"row_idx": ROWS, "col_idx": COLS}  # the pixels come with the signal


def _flatgpt(config_name, **kwargs):
    def build():
        from transformers import AutoModelForCausalLM

        import tests.flatgpt_configs as configs

        torch.manual_seed(0)
        return AutoModelForCausalLM.from_config(getattr(configs, config_name)(**kwargs)).eval()

    return build


def _flatgpt_inputs(batch):
    """A float signal in [-1, 1] (what the flat tokenizer mu-law quantises), 3 channels, 4 grid steps."""
    return torch.rand(batch, 3, 4, generator=torch.Generator().manual_seed(3)) * 2 - 1, {}


def _flatgpt_rvq(model_type):
    def build():
        from tests.flatgpt_rvq_configs import build as build_rvq

        return build_rvq(model_type)

    return build


def _flatgpt_rvq_inputs(batch):
    from tests.flatgpt_rvq_configs import signal

    return signal(batch, 8), {}  # two token steps of the brain tokenizer


def _stgpt2meg():
    from tests.test_stgpt2meg import forecast_model

    return forecast_model()


def _stgpt2meg_inputs(batch):
    from tests.test_stgpt2meg import forecast_signal

    return forecast_signal(batch=batch), {}


def _ntd():
    from tests.test_ntd import build

    return build()


def _ntd_inputs(batch):
    from tests.test_ntd import signal

    return signal(batch=batch, steps=30), {}  # longer than a window: the context keeps its last L samples


FORECAST_CASES: dict[str, ForecastCase] = {
    "flatgpt": ForecastCase(build=_flatgpt("flatgpt_config"), inputs=_flatgpt_inputs, horizon=2, long_horizon=7),
    "flatgpt_embeds": ForecastCase(build=_flatgpt("embeds_config"), inputs=_flatgpt_inputs, horizon=2, long_horizon=7),
    "flatgpt_mix": ForecastCase(build=_flatgpt("mix_config"), inputs=_flatgpt_inputs, horizon=2, long_horizon=7),
    "flatgpt_rvq": ForecastCase(
        build=_flatgpt_rvq("flatgpt_rvq"), inputs=_flatgpt_rvq_inputs, horizon=4, long_horizon=10
    ),
    "flatgpt_mix_rvq": ForecastCase(
        build=_flatgpt_rvq("flatgpt_mix_rvq"), inputs=_flatgpt_rvq_inputs, horizon=4, long_horizon=10
    ),
    "flatgpt_embeds_rvq": ForecastCase(
        build=_flatgpt_rvq("flatgpt_embeds_rvq"), inputs=_flatgpt_rvq_inputs, horizon=4, long_horizon=10
    ),
    "bendr": ForecastCase(build=_bendr, inputs=_bendr_inputs, horizon=3, long_horizon=7, samples=False),
    "brainomni_forecast": ForecastCase(
        build=_brainomni_forecast,
        inputs=_brainomni_forecast_inputs,
        horizon=4,
        long_horizon=7,
        batched_metadata=("pos", "sensor_type"),
        wrong_channels=_brainomni_wrong_channels,
    ),
    "wavenet_full_channel": ForecastCase(build=_wavenet, inputs=_wavenet_inputs, horizon=4, long_horizon=9),
    "wavenet_full_channel_parallel": ForecastCase(build=_wavenet_parallel, inputs=_wavenet_inputs, horizon=4),
    "wavenet3d": ForecastCase(build=_wavenet3d, inputs=_wavenet3d_inputs, horizon=3, long_horizon=7),
    "tasa3d": ForecastCase(build=_tasa3d, inputs=_tasa3d_inputs, horizon=3, long_horizon=5),
    "stgpt2meg": ForecastCase(build=_stgpt2meg, inputs=_stgpt2meg_inputs, horizon=3, long_horizon=7),
    # samples=False: the contract samples with temperature / top-k, which act on logits a diffusion model lacks
    # (ValueError); its own seeded draws (do_sample=True, generator=) are checked in tests/test_ntd.py.
    "ntd": ForecastCase(build=_ntd, inputs=_ntd_inputs, horizon=3, long_horizon=17, samples=False),
}
