"""BrainTokMix: the paper's channel-mixing causal SEANet RVQ tokenizer."""
