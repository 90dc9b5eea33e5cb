"""Family switch: how each trainable family is built from a dataset and fed a batch.

A `Task` knows (1) how to build or load its model for the data (the dataset's channel layout and
sampling rate become the model's signal contract), (2) which collator turns dataset items into a
batch and (3) how many throughput units (tokens or signal samples) a batch carries. The trainer
itself is family-agnostic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

TASKS: dict[str, Task] = {}


@dataclass
class DataInfo:
    """What the trainer learned about the data, handed to `Task.build_model` and the collators."""

    layout: object | None  # ChannelLayout of window data; None for pretokenized data
    sampling_rate: float
    window_length: int  # samples per training example
    pretokenized: bool = False
    classes: list[str] | None = None  # class names, for classifier training (`label_column`)
    units: str | None = None  # physical unit(s) of the signal before normalisation, e.g. "T (mag), T/m (grad)"
    normalization: dict | None = None  # how the windows were normalised (from the dataset)


@dataclass
class Task:
    name: str
    default_model_type: str
    unit: str  # what MFU counts per parameter: "tokens" or "signal_samples" (time samples of a window)
    make_collator: Callable  # (data: DataInfo, model) -> collate_fn
    contract_fields: Callable  # (data: DataInfo) -> config fields the data fixes
    count_units: Callable  # (batch) -> int
    build: Callable | None = None  # (model_args, data, fields) -> model; default: AutoModel.from_config
    data_unit: Callable | None = None  # (data, model) -> unit, where the data decides it; default: `unit`

    def unit_for(self, data: DataInfo, model) -> str:
        return self.data_unit(data, model) if self.data_unit is not None else self.unit

    def build_model(self, model_args, data: DataInfo):
        """A fresh model from `model_type` + `model_config` (or `self.build`), or a pretrained one; either way
        checked against the data's signal contract."""
        from transformers import AutoConfig, AutoModel

        import brain_gen_hf  # noqa: F401  (Auto registration)

        contract = self.contract_fields(data)
        check_config_keys(model_args.model_type or self.default_model_type, model_args.model_config or {})
        if model_args.pretrained:
            check_model_source(model_args.pretrained, "pretrained model")
            model = AutoModel.from_pretrained(model_args.pretrained)
            check_data_matches_model(model.config, contract)
            return model
        fields = {**contract, **(model_args.model_config or {})}
        if self.build is not None:
            model = self.build(model_args, data, fields)
        else:
            model = AutoModel.from_config(AutoConfig.for_model(model_args.model_type or self.default_model_type,
                                                               **fields))
        check_data_matches_model(model.config, contract)
        return model


def check_model_source(name_or_path: str, what: str) -> None:
    """A path that does not exist would reach the Hub as a malformed repo id ('Repo id must be in the form
    ...'); say what is missing instead."""
    looks_like_path = name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1
    if looks_like_path and not Path(name_or_path).expanduser().exists():
        raise FileNotFoundError(f"{what} {name_or_path} does not exist (not a folder, and not a Hub repo id "
                                "'org/name')")


def check_config_keys(model_type: str, fields: dict) -> None:
    """transformers configs accept unknown keys silently; a training run must not (a typo would be ignored)."""
    import dataclasses

    from ..registration import config_class_for

    config_class = config_class_for(model_type)
    known = {f.name for f in dataclasses.fields(config_class)} | set(getattr(config_class, "attribute_map", {}))
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ValueError(f"unknown `model_config` keys {unknown} for {model_type}; valid keys: {sorted(known)}")


def check_data_matches_model(config, contract: dict) -> None:
    """The dataset's layout, sampling rate and units must be the model's signal contract."""
    for key, have in contract.items():
        want = getattr(config, key, None)
        # Normalisation is recorded for the model card, not enforced: its statistics are per recording anyway.
        if key == "normalization" or want is None or have is None or want == have:
            continue
        if key == "channel_names":
            raise ValueError(f"the dataset's channels ({len(have)}: {have[:4]}...) do not match the model's "
                             f"({len(want)}: {want[:4]}...); rebuild the dataset with the model's layout")
        raise ValueError(f"the dataset's {key} is {have} but the model expects {want}")


def _layout_contract(data: DataInfo) -> dict:
    fields = {"sampling_rate": float(data.sampling_rate)}
    if data.layout is not None:
        fields.update(channel_names=list(data.layout.names), channel_types=list(data.layout.types))
    if data.units is not None:
        fields["units"] = data.units
    if data.normalization is not None:
        fields["normalization"] = data.normalization
    return fields


def register_task(task: Task) -> Task:
    TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; available: {sorted(TASKS)}")
    return TASKS[name]


# ------------------------------------------------------------------ WaveNet on mu-law tokens
def _mulaw_collator(data: DataInfo, model):
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
    contract_fields=lambda data: {**_layout_contract(data), "in_channels": len(data.layout.names)},
    count_units=lambda batch: int(batch["input_ids"].numel()),
))


# ------------------------------------------------------------------ brain tokenizers on continuous windows
def _continuous_collator(data: DataInfo, model):
    from ..data.collators import ContinuousCollator

    # BrainOmni's sensor embedding reads 3-D positions + orientations; BrainTokMix ignores sensor metadata.
    positions = "3d" if getattr(model.config, "sensor_space", "sensor") == "sensor" else "2d"
    collate = ContinuousCollator(data.layout, positions=positions)

    def collate_fn(items):
        batch = collate(items)
        return {"input_values": batch["inputs"], "pos": batch["pos"], "sensor_type": batch["sensor_type"]}

    return collate_fn


def _signal_samples(batch) -> int:
    return int(batch["input_values"].shape[0] * batch["input_values"].shape[-1])


register_task(Task(
    name="brain_tokenizer",
    default_model_type="braintokmix",
    unit="signal_samples",
    make_collator=_continuous_collator,
    contract_fields=lambda data: {**_layout_contract(data), "num_sensors": len(data.layout.names)},
    count_units=_signal_samples,
))


# ------------------------------------------------------------------ BENDR next-sample forecasting
def _next_sample_collator(data: DataInfo, model):
    from ..data.collators import ContinuousCollator

    collate = ContinuousCollator(data.layout)

    def collate_fn(items):
        x = collate(items)["inputs"]
        # BENDR's prediction at t only sees samples before t, so the target is the window itself.
        return {"input_values": x, "labels": x.clone()}

    return collate_fn


register_task(Task(
    name="bendr",
    default_model_type="bendr_forecast",
    unit="signal_samples",
    make_collator=_next_sample_collator,
    contract_fields=lambda data: {**_layout_contract(data), "channels": len(data.layout.names),
                                  "samples": data.window_length},
    count_units=_signal_samples,
))


# ------------------------------------------------------------------ FlatGPT language models
# RVQ variants read brain-tokenizer codes (a held, frozen tokenizer); the others read mu-law amplitude tokens.
RVQ_LM_TYPES = ("flatgpt_rvq", "flatgpt_mix_rvq", "flatgpt_embeds_rvq")


def _flatgpt_build(model_args, data: DataInfo, fields: dict):
    from transformers import AutoConfig

    from ..registration import model_class_for

    model_type = model_args.model_type or "flatgpt_embeds_rvq"
    fields = {k: v for k, v in fields.items() if k not in ("channel_names", "channel_types")}
    if model_type not in RVQ_LM_TYPES:
        return model_class_for(model_type)(AutoConfig.for_model(model_type, **fields))
    if model_args.tokenizer is None:
        raise ValueError(f"task 'flatgpt' with {model_type} needs `tokenizer`: a trained brain tokenizer folder or "
                         "Hub repo")
    check_model_source(model_args.tokenizer, "tokenizer")
    # The LM's signal contract is its tokenizer's; the grid defaults to one training window.
    if "input_shape" not in fields:
        tokenizer = AutoConfig.from_pretrained(model_args.tokenizer)
        fields["input_shape"] = [data.window_length, tokenizer.num_sensors, tokenizer.num_quantizers]
    return model_class_for(model_type).from_pretrained_tokenizer(model_args.tokenizer, **fields)


def _flatgpt_collator(data: DataInfo, model):
    if data.pretokenized:
        def collate_codes(items):
            codes = torch.stack([item["codes"] for item in items]).long()
            return {"input_ids": codes, "labels": codes}

        return collate_codes
    if model.config.model_type in RVQ_LM_TYPES:
        return _continuous_collator(data, model.tokenizer)  # the LM tokenizes the signal itself
    from ..data.collators import MuLawCollator

    to_bins = MuLawCollator(mu=model.config.vocab_size - 1, shift=False)

    def collate_amplitude(items):
        bins = to_bins(items)["input_ids"]  # (B, C, T) mu-law bins
        ids = model.tokenize(bins.transpose(1, 2).unsqueeze(-1))  # the reference's (B, T, C, 1) grid
        return {"input_ids": ids, "labels": ids}

    return collate_amplitude


register_task(Task(
    name="flatgpt",
    default_model_type="flatgpt_embeds_rvq",
    unit="tokens",
    make_collator=_flatgpt_collator,
    contract_fields=lambda data: {"sampling_rate": float(data.sampling_rate)},
    count_units=lambda batch: int(batch["input_ids"].numel()) if "input_ids" in batch else _signal_samples(batch),
    build=_flatgpt_build,
    # An RVQ LM reading signal windows tokenizes them itself: its batches carry signal samples, not tokens.
    data_unit=lambda data, model: ("signal_samples" if model.config.model_type in RVQ_LM_TYPES
                                   and not data.pretokenized else "tokens"),
))


# ------------------------------------------------------------------ BrainOmni forecaster over tokenizer codes
def _brainomni_forecast_build(model_args, data: DataInfo, fields: dict):
    from transformers import AutoConfig, AutoModel

    from ..registration import model_class_for

    fields = {k: v for k, v in fields.items() if k not in ("channel_names", "channel_types")}
    model_class = model_class_for(model_args.model_type or "brainomni_causal_forecast")
    if model_args.tokenizer is None:
        return model_class(AutoConfig.for_model(model_class.config_class.model_type, **fields))
    tokenizer = AutoModel.from_pretrained(model_args.tokenizer)
    model = model_class(model_class.config_class(tokenizer_config=tokenizer.config.to_dict(), **fields))
    model.tokenizer.load_state_dict(tokenizer.state_dict(), strict=True)
    return model


register_task(Task(
    name="brainomni_forecast",
    default_model_type="brainomni_causal_forecast",
    unit="signal_samples",
    make_collator=lambda data, model: _continuous_collator(data, model.tokenizer),
    contract_fields=lambda data: {"sampling_rate": float(data.sampling_rate)},
    count_units=_signal_samples,
    build=_brainomni_forecast_build,
))


# ------------------------------------------------------------------ classifiers (labels from segment metadata)
class LabelledWindows(torch.utils.data.Dataset):
    """Windows of a split with `label`: the class index of the segment's `label_column` value."""

    def __init__(self, windows, label_column: str, classes: list[str]):
        values = windows.segments[label_column]
        index = {name: i for i, name in enumerate(classes)}
        self.windows, self.row_labels = windows, [index[str(v)] for v in values]

    def __len__(self) -> int:
        return len(self.windows)

    def __getitems__(self, indices) -> list[dict]:
        items = self.windows.__getitems__(indices)
        for item in items:
            item["label"] = self.row_labels[item["row"]]
        return items

    def __getitem__(self, i: int) -> dict:
        return self.__getitems__([i])[0]


def _classifier_build(model_args, data: DataInfo, fields: dict):
    from transformers import AutoConfig

    from ..registration import config_class_for, model_class_for

    if data.classes is None:
        raise ValueError("task 'classifier' needs `label_column` (e.g. subject, session, task or dataset)")
    model_type = model_args.model_type or "classifier_continuous"
    base = dict(fields.pop("base_config", None) or {"model_type": "bendr_forecast"})
    base_type = base.pop("model_type")
    # The base reads the data's layout: BENDR its channels and window, WaveNet its channels.
    contract = {"bendr_forecast": {"channels": len(data.layout.names), "samples": data.window_length},
                "wavenet_full_channel": {"in_channels": len(data.layout.names)}}.get(base_type, {})
    check_config_keys(base_type, base)
    base_config = AutoConfig.for_model(base_type, **{**contract, **base, "sampling_rate": data.sampling_rate})
    id2label = dict(enumerate(data.classes))
    config = config_class_for(model_type)(base_config=base_config, num_classes=len(data.classes), id2label=id2label,
                                          **fields)
    return model_class_for(model_type)(config)


def _classifier_collator(data: DataInfo, model):
    quantized = model.config.model_type == "classifier_quantized"
    inner = (_mulaw_collator if quantized else _next_sample_collator)(data, model.base_model)

    def collate_fn(items):
        batch = inner(items)
        batch.pop("labels")
        batch["labels"] = torch.tensor([item["label"] for item in items])
        return batch

    return collate_fn


register_task(Task(
    name="classifier",
    default_model_type="classifier_continuous",
    unit="signal_samples",
    make_collator=_classifier_collator,
    contract_fields=lambda data: {"sampling_rate": float(data.sampling_rate)},
    count_units=lambda batch: int(batch["input_ids" if "input_ids" in batch else "input_values"].numel()),
    build=_classifier_build,
))


def load_training_data(data_args, task: str | None = None) -> tuple[dict, DataInfo]:
    """{split: torch Dataset} plus `DataInfo` for a window dataset or a pretokenized folder (`task` only shapes
    the message when the dataset is missing)."""
    from .pretokenize import (
        TOKENIZATION_FILE,
        load_token_datasets,
        pretokenize_hint,
        read_tokenization,
    )

    if (Path(data_args.dataset) / TOKENIZATION_FILE).exists():
        meta = read_tokenization(data_args.dataset)
        if abs(meta["example_seconds"] - data_args.example_seconds) > 1e-9:
            raise ValueError(f"{data_args.dataset} was pretokenized with example_seconds={meta['example_seconds']}, "
                             f"the run asks for {data_args.example_seconds}")
        length = round(meta["example_seconds"] * meta["sampling_rate"])
        return load_token_datasets(data_args.dataset), DataInfo(None, meta["sampling_rate"], length, True)
    from ..data.windows import load_window_datasets

    try:
        splits = load_window_datasets(data_args.dataset, data_args.example_seconds, data_args.overlap_seconds)
    except FileNotFoundError as err:
        if task != "flatgpt" or Path(data_args.dataset).exists():
            raise
        # FlatGPT also reads token folders: the user may have meant one of those.
        raise FileNotFoundError(f"{err}; or, to train on brain-tokenizer codes, "
                                f"{pretokenize_hint(data_args.dataset)}") from err
    first = next(iter(splits.values()))
    info = DataInfo(first.layout, first.layout.sfreq, first.length, units=signal_units(first),
                    normalization=signal_normalization(data_args.dataset, first))
    if data_args.label_column:
        column = data_args.label_column
        missing = [name for name, split in splits.items() if column not in split.segments.column_names]
        if missing:
            raise ValueError(f"label_column {column!r} is not a column of splits {missing} "
                             f"(columns: {first.segments.column_names})")
        info.classes = sorted({str(v) for split in splits.values() for v in split.segments[column]})
        if len(info.classes) < 2:
            raise ValueError(f"label_column {column!r} has a single value {info.classes}: nothing to classify")
        splits = {name: LabelledWindows(split, column, info.classes) for name, split in splits.items()}
    return splits, info


def signal_units(windows) -> str | None:
    """The unit of each channel type in the dataset rows (`ch_units`), as one string: "V" or "T (mag), T/m (grad)"."""
    columns = getattr(windows.segments, "column_names", None) or []
    if not {"ch_types", "ch_units"} <= set(columns):
        return None
    by_type: dict[str, str] = {}
    for row in windows.segments.select_columns(["ch_types", "ch_units"]):
        for channel_type, unit in zip(row["ch_types"], row["ch_units"]):
            by_type.setdefault(channel_type, unit)
    present = [t for t in dict.fromkeys(windows.layout.types) if t in by_type]
    if not present:
        return None
    if len({by_type[t] for t in present}) == 1:
        return by_type[present[0]]
    return ", ".join(f"{by_type[t]} ({t})" for t in present)


def signal_normalization(dataset: str, windows) -> dict | None:
    """How the rows were normalised: the build config's `normalization` (from a local dataset card) and the
    per-recording statistics the rows carry."""
    columns = getattr(windows.segments, "column_names", None) or []
    if not {"norm_center", "norm_scale"} <= set(columns):
        return None
    return {**_card_normalization(Path(dataset) / "README.md"),
            "statistics": "per recording and channel, stored in the dataset rows: x = data * norm_scale + norm_center"}


def _card_normalization(card: Path) -> dict:
    """The `normalization` section of the build config a dataset card embeds as a YAML block, or {}."""
    import yaml

    if not card.is_file():
        return {}
    for block in card.read_text(encoding="utf-8").split("```yaml")[1:]:
        try:
            section = yaml.safe_load(block.split("```")[0])
        except yaml.YAMLError:
            continue
        if isinstance(section, dict) and isinstance(section.get("normalization"), dict):
            return dict(section["normalization"])
    return {}


def trainable_parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
