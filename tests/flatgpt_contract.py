"""The model contract as FlatGPT variants join it (token ids in, (B, L, V) logits out)."""

import torch

from tests.flatgpt_configs import V
from tests.model_contract import ModelContract


class _FlatGPTContract(ModelContract):
    auto_class = "AutoModelForCausalLM"
    causal = True
    causal_output_time_dim = 1  # logits (B, L, V)
    causal_input_time_dim = 1  # embeddings (B, L, hidden)
    rows, length = 2, 12

    def make_inputs(self):
        g = torch.Generator().manual_seed(1)
        x = torch.randint(0, V, (self.rows, self.length), generator=g)
        return {"input_ids": x, "labels": x.clone()}

    def bad_inputs(self):
        x = self.make_inputs()["input_ids"]
        return [
            ({"input_ids": x.float()}, "integer token ids"),
            ({"input_ids": x + V}, "outside the vocabulary"),
            ({"input_ids": x[None]}, "2 dimensions"),
            ({"input_ids": x[:, :0]}, "empty"),
            ({"input_ids": torch.zeros(self.rows, 200, dtype=torch.long)}, "exceed"),
            ({"input_ids": x, "labels": x[:, :3]}, "labels must have"),
            ({"input_ids": x, "attention_mask": torch.zeros_like(x)}, "attention_mask"),
        ]
