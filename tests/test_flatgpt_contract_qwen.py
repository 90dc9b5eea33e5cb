"""FlatGPT model contract: FlatGPTQwen."""

from tests.flatgpt_configs import flatgpt_config
from tests.flatgpt_contract import _FlatGPTContract


class TestFlatGPTQwenContract(_FlatGPTContract):
    def make_config(self):
        return flatgpt_config()
