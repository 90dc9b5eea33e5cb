"""FlatGPT model contract: FlatGPTMixRVQ (BrainTokMix inside)."""

from tests.flatgpt_rvq_contract import _FlatGPTRVQContract


class TestFlatGPTMixRVQContract(_FlatGPTRVQContract):
    model_type = "flatgpt_mix_rvq"
    causal = False  # several codes per position: causality is checked per position in test_flatgpt_rvq.py

    def bad_inputs(self):
        x = self.make_inputs()["input_ids"]
        return super().bad_inputs() + [({"input_ids": x[:, :3]}, "whole positions")]
