"""How the FlatGPT language models are trained.

- amplitude LMs (`flatgpt`, `flatgpt_embeds`, `flatgpt_mix`): mu-law bins of the windows, laid out as the
  model's flat tokens, are `input_ids` and `labels`;
- brain-tokenizer LMs (`*_rvq`): either pretokenized codes (`input_ids`/`labels`) or the signal itself
  (`input_values` + sensor metadata: the LM encodes it with its frozen tokenizer). A fresh one is built around a
  trained `tokenizer` (folder or Hub repo).
"""

from __future__ import annotations

from ...training.contract import DataContract, sampling_rate_field
from ...training.metrics import next_token_accuracy

RVQ_LM_TYPES = ("flatgpt_rvq", "flatgpt_mix_rvq", "flatgpt_embeds_rvq")
AMPLITUDE_LM_TYPES = ("flatgpt", "flatgpt_embeds", "flatgpt_mix")


def amplitude_token_ids(model, bins):
    """Mu-law bins `(B, C, T)` -> the LM's flat `input_ids`, through the model's token layout (the reference's
    `(B, T, C, 1)` grid). The one call into FlatGPT's layout API from training."""
    return model.tokenize(bins.transpose(1, 2).unsqueeze(-1))


class AmplitudeTokenCollator:
    """Windows -> mu-law bins (mu = vocab_size - 1) -> `input_ids` = `labels` in the LM's flat layout."""

    model_inputs = ("input_ids", "labels")

    def __init__(self, model):
        from ...data.collators import MuLawCollator

        self.model = model
        self.to_bins = MuLawCollator(mu=model.config.vocab_size - 1, shift=False, labels=False)

    def __call__(self, items: list[dict]) -> dict:
        ids = amplitude_token_ids(self.model, self.to_bins(items)["input_ids"])
        return {"input_ids": ids, "labels": ids}


def flatgpt_collator(data, model):
    from ...data.collators import CodesCollator
    from ..causal_tokenizer.training_causal_tokenizer import tokenizer_collator

    if data.pretokenized:
        return CodesCollator()
    if model.config.model_type in RVQ_LM_TYPES:
        return tokenizer_collator(data, model.tokenizer)  # the LM tokenizes the signal itself
    return AmplitudeTokenCollator(model)


def build_flatgpt(model_args, data, fields: dict):
    from transformers import AutoConfig

    from ...registration import model_class_for
    from ...training.model_building import check_model_source

    model_type = model_args.model_type or FLATGPT_TRAINING.default_model_type
    fields = {k: v for k, v in fields.items() if k not in ("channel_names", "channel_types")}
    if model_type not in RVQ_LM_TYPES:
        return model_class_for(model_type)(AutoConfig.for_model(model_type, **fields))
    if model_args.tokenizer is None:
        raise ValueError(
            f"task 'flatgpt' with {model_type} needs `tokenizer`: a trained brain tokenizer folder or Hub repo"
        )
    check_model_source(model_args.tokenizer, "tokenizer")
    # The LM's signal contract is its tokenizer's; the grid defaults to one training window.
    if "input_shape" not in fields:
        tokenizer = AutoConfig.from_pretrained(model_args.tokenizer)
        fields["input_shape"] = [data.window_length, tokenizer.num_sensors, tokenizer.num_quantizers]
    return model_class_for(model_type).from_pretrained_tokenizer(model_args.tokenizer, **fields)


FLATGPT_TRAINING = DataContract(
    task="flatgpt",
    model_types=("flatgpt_embeds_rvq", "flatgpt_rvq", "flatgpt_mix_rvq", *AMPLITUDE_LM_TYPES),
    inputs=("input_ids", "labels", "input_values", "pos", "sensor_type"),
    make_collator=flatgpt_collator,
    data_fields=sampling_rate_field,
    build=build_flatgpt,
    metrics=next_token_accuracy,
)
