"""Family switch: how each trainable family is built from a dataset and fed a batch.

A `Task` knows (1) how to build or load its model for the dataset's channel layout, (2) which
collator turns windows into a batch and (3) how many throughput units (tokens or signal samples)
a batch carries. The trainer itself is family-agnostic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

TASKS: dict[str, "Task"] = {}


@dataclass
class Task:
    name: str
    default_model_type: str
    unit: str  # what throughput counts: "tokens" or "samples"
    make_collator: Callable  # (layout, model) -> collate_fn
    contract_from_layout: Callable  # (layout, sfreq) -> dict of config fields the data fixes
    count_units: Callable  # batch -> int

    def build_model(self, model_args, layout, sfreq: float):
        """A fresh model from `model_type` + `model_config`, or a pretrained one checked against the data."""
        from transformers import AutoConfig, AutoModel

        import brain_gen_hf  # noqa: F401  (Auto registration)

        contract = self.contract_from_layout(layout, sfreq)
        if model_args.pretrained:
            model = AutoModel.from_pretrained(model_args.pretrained)
            check_data_matches_model(model.config, contract)
            return model
        fields = {**contract, **(model_args.model_config or {})}
        config = AutoConfig.for_model(model_args.model_type or self.default_model_type, **fields)
        check_data_matches_model(config, contract)
        return AutoModel.from_config(config)


def check_data_matches_model(config, contract: dict) -> None:
    """The dataset's layout and sampling rate must be the model's signal contract."""
    for key in ("sampling_rate", "channel_names", "in_channels", "num_sensors", "channels"):
        want, have = getattr(config, key, None), contract.get(key)
        if want is not None and have is not None and want != have:
            if key == "channel_names":
                raise ValueError(f"the dataset's channels ({len(have)}: {have[:4]}...) do not match the model's "
                                 f"({len(want)}: {want[:4]}...); rebuild the dataset with the model's layout")
            raise ValueError(f"the dataset's {key} is {have} but the model expects {want}")


def _layout_contract(layout, sfreq: float) -> dict:
    return {"sampling_rate": float(sfreq), "channel_names": list(layout.names),
            "channel_types": list(layout.types)}


def register_task(task: Task) -> Task:
    TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; available: {sorted(TASKS)}")
    return TASKS[name]


def _mulaw_collator(layout, model):
    from ..data.collators import MuLawCollator

    # mu-law with mu = Q - 1 maps the signal onto exactly the model's Q token ids.
    collate = MuLawCollator(mu=model.config.quant_levels - 1, shift=True)

    def collate_fn(items):
        batch = collate(items)
        return {"input_ids": batch["input_ids"], "labels": batch["labels"]}

    return collate_fn


register_task(Task(
    name="wavenet",
    default_model_type="wavenet_full_channel",
    unit="tokens",
    make_collator=_mulaw_collator,
    contract_from_layout=lambda layout, sfreq: {**_layout_contract(layout, sfreq), "in_channels": len(layout.names)},
    count_units=lambda batch: int(batch["input_ids"].numel()),
))


def _next_sample_collator(layout, model):
    from ..data.collators import ContinuousCollator

    collate = ContinuousCollator(layout)

    def collate_fn(items):
        x = collate(items)["inputs"]
        return {"input_values": x[..., :-1].contiguous(), "labels": x[..., 1:].contiguous()}

    return collate_fn


register_task(Task(
    name="bendr",
    default_model_type="bendr_forecast",
    unit="samples",
    make_collator=_next_sample_collator,
    contract_from_layout=lambda layout, sfreq: {**_layout_contract(layout, sfreq), "channels": len(layout.names)},
    count_units=lambda batch: int(batch["input_values"].numel()),
))


def _continuous_collator(layout, model):
    from ..data.collators import ContinuousCollator

    # BrainOmni embeds 3-D positions + orientations; BrainTokMix ignores sensor metadata.
    positions = "3d" if getattr(model.config, "sensor_space", "sensor") == "sensor" else "2d"
    collate = ContinuousCollator(layout, positions=positions)

    def collate_fn(items):
        batch = collate(items)
        return {"input_values": batch["inputs"], "pos": batch["pos"], "sensor_type": batch["sensor_type"]}

    return collate_fn


register_task(Task(
    name="brain_tokenizer",
    default_model_type="braintokmix",
    unit="samples",
    make_collator=_continuous_collator,
    contract_from_layout=lambda layout, sfreq: {**_layout_contract(layout, sfreq), "num_sensors": len(layout.names)},
    count_units=lambda batch: int(batch["input_values"].shape[0] * batch["input_values"].shape[-1]),
))


def trainable_parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
