"""FlatGPT model contract: FlatGPTEmbedsRVQ (BrainTokMix inside)."""

from tests.flatgpt_rvq_contract import _FlatGPTRVQContract


class TestFlatGPTEmbedsRVQContract(_FlatGPTRVQContract):
    model_type = "flatgpt_embeds_rvq"
    causal = True
    causal_output_time_dim = 1  # logits (B, N, K): one code per position
    causal_input_time_dim = 1
