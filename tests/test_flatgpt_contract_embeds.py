"""FlatGPT model contract: FlatGPTEmbeds."""

from tests.flatgpt_configs import embeds_config
from tests.flatgpt_contract import _FlatGPTContract


class TestFlatGPTEmbedsContract(_FlatGPTContract):
    def make_config(self):
        return embeds_config()
