"""FlatGPT model contract: FlatGPTSmolLM3."""

from tests.flatgpt_configs import flatgpt_config, smollm3_backbone
from tests.flatgpt_contract import _FlatGPTContract


class TestFlatGPTSmolLM3Contract(_FlatGPTContract):
    def make_config(self):
        return flatgpt_config(smollm3_backbone())
