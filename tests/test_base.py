"""The base layer every family shares: signal contract validation, cheap import, lazy Auto registration,
input checks and strict, safetensors-only loading."""

import json
import math
import subprocess
import sys

import pytest
import torch

from brain_gen_hf.models.wavenet.configuration_wavenet import WavenetFullChannelConfig


def contract(**fields):
    return WavenetFullChannelConfig(in_channels=2, **fields)


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"sampling_rate": -100.0}, "positive number in Hz"),
        ({"sampling_rate": math.inf}, "positive number in Hz"),
        ({"channel_names": ["a", "a"]}, "duplicates"),
        ({"channel_names": ["a", "b"], "channel_types": ["mag"]}, "inconsistent channel metadata"),
        ({"sensor_positions": [[0.0, 0.0, math.nan], [0.0, 0.0, 0.1]]}, "finite"),
        ({"sensor_positions": [[0.0, 0.0], [0.0, 0.1]]}, "3 numbers"),
        ({"sensor_orientations": [[1.0, 0.0, 0.0]] * 3}, "3 channels but `in_channels` is 2"),
        ({"token_rate": 0}, "token_rate"),
    ],
)
def test_signal_contract_validation(fields, message):
    with pytest.raises(ValueError, match=message):
        contract(**fields)


def test_signal_contract_round_trips_as_strict_json(tmp_path):
    config = contract(
        sampling_rate=100,
        channel_names=["MEG0111", "MEG0121"],
        channel_types=["mag", "mag"],
        sensor_positions=[[0.01, 0.02, 0.03], [0.0, -0.02, 0.05]],
        sensor_orientations=[[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]],
        units="T",
        normalization={"method": "robust", "clip": 5.0},
    )
    config.save_pretrained(tmp_path)
    data = json.loads((tmp_path / "config.json").read_text(), parse_constant=lambda c: pytest.fail(c))
    assert data["sampling_rate"] == 100.0 and data["sensor_positions"][1] == [0.0, -0.02, 0.05]
    assert type(config).from_pretrained(tmp_path).contract_num_channels == 2
    config.check_signal_metadata(sampling_rate=100.0, channel_names=["MEG0111", "MEG0121"])
    with pytest.raises(ValueError, match="resample"):
        config.check_signal_metadata(sampling_rate=250.0)
    with pytest.raises(ValueError, match="different order"):
        config.check_signal_metadata(channel_names=["MEG0121", "MEG0111"])
    with pytest.raises(ValueError, match="missing"):
        config.check_signal_metadata(channel_names=["MEG0111", "EEG001"])


def test_import_is_cheap_and_registers_lazily():
    code = (
        "import sys, brain_gen_hf; assert 'torch' not in sys.modules and 'transformers' not in sys.modules; "
        "from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer; "
        "c = AutoConfig.for_model('wavenet_full_channel', in_channels=2); "
        "m = AutoModel.from_config(c); assert type(m).__name__ == 'WavenetFullChannelModel'; print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.stdout.strip().endswith("ok"), result.stderr[-3000:]


def test_registration_when_a_model_module_imports_transformers_auto_classes_itself():
    # The RVQ LM module imports transformers' AutoModel while it is itself being imported: its classes are
    # registered once it has finished, and every other family's too.
    code = (
        "import brain_gen_hf.models.flatgpt.modeling_flatgpt_rvq; "
        "from transformers import AutoConfig, AutoModel, AutoModelForCausalLM; "
        "m = AutoModelForCausalLM.from_config(AutoConfig.for_model('flatgpt_embeds_rvq')); "
        "assert type(m).__name__ == 'FlatGPTEmbedsRVQForCausalLM', type(m); "
        "m = AutoModel.from_config(AutoConfig.for_model('wavenet_full_channel', in_channels=2)); "
        "assert type(m).__name__ == 'WavenetFullChannelModel'; print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.stdout.strip().endswith("ok"), result.stderr[-3000:]


def test_unknown_model_type_is_a_clear_error():
    from transformers import AutoConfig

    with pytest.raises(ValueError, match="not_a_brain_model"):
        AutoConfig.for_model("not_a_brain_model")


def test_input_checks_name_the_problem():
    from transformers import AutoModel

    model = AutoModel.from_config(WavenetFullChannelConfig(in_channels=2, quant_levels=8, dilations=[1]))
    signal = torch.zeros(1, 2, 4)
    with pytest.raises(ValueError, match="must be a torch.Tensor"):
        model.check_signal([[0.0]])
    with pytest.raises(ValueError, match="floating-point"):
        model.check_signal(signal.long())
    with pytest.raises(ValueError, match="3 NaN/inf"):
        model.check_signal(signal.index_fill(2, torch.tensor([0, 1, 3]), float("nan"))[:, :1])
    with pytest.raises(ValueError, match="has 1 channels"):
        model.check_signal(signal[:, :1], num_channels=2)
    with pytest.raises(ValueError, match="empty"):
        model.check_signal(signal[..., :0])
    with pytest.raises(ValueError, match="2 or 3 dimensions"):
        model.check_signal(signal[0, 0], ndim=(2, 3))
