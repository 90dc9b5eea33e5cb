"""FlatGPT model contract: FlatGPTMix."""

import torch

from tests.flatgpt_configs import mix_config
from tests.flatgpt_contract import _FlatGPTContract


class TestFlatGPTMixContract(_FlatGPTContract):
    rows, length = 6, 5  # (B*C, T) channel rows

    def make_config(self):
        return mix_config()

    def bad_inputs(self):
        x = self.make_inputs()["input_ids"]
        return [case for case in super().bad_inputs() if case[1] != "exceed"] + [
            ({"input_ids": x[:5]}, "channel rows"),
            ({"input_ids": torch.zeros(6, 20, dtype=torch.long)}, "exceed"),
        ]
