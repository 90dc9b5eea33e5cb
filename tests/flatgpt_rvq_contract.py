"""The model contract as the RVQ FlatGPT variants join it: flat codes in, flat (B, N, K) logits out."""

import torch

from tests.flatgpt_rvq_configs import K, rvq_config, signal
from tests.model_contract import ModelContract


class _FlatGPTRVQContract(ModelContract):
    auto_class = "AutoModelForCausalLM"
    model_type: str = ""
    rows, length = 2, 16

    def make_config(self):
        return rvq_config(self.model_type)

    def make_inputs(self):
        g = torch.Generator().manual_seed(1)
        x = torch.randint(0, K, (self.rows, self.length), generator=g)
        return {"input_ids": x, "labels": x.clone()}

    def bad_inputs(self):
        x = self.make_inputs()["input_ids"]
        nan = signal()
        nan[0, 0, 0] = float("nan")
        return [
            ({"input_ids": x.float()}, "integer token ids"),
            ({"input_ids": x + K}, "outside the vocabulary"),
            ({"input_ids": x[None]}, "2 dimensions"),
            ({"input_ids": x[:, :0]}, "empty"),
            ({"input_ids": torch.zeros(self.rows, 200, dtype=torch.long)}, "exceed"),
            ({"input_ids": x, "labels": x[:, :4]}, "labels must have"),
            ({"input_ids": x, "attention_mask": torch.zeros_like(x)}, "attention_mask"),
            ({"input_ids": x, "input_values": signal()}, "not both"),
            ({"input_values": nan}, "NaN"),
            ({"input_values": signal(channels=3)}, "channels"),
            ({"input_values": signal().long()}, "floating-point"),
        ]
