"""The data of a run: {split: torch Dataset} and what the trainer learns about it (`DataInfo`), from a window
dataset (`brain-gen-hf preprocess`) or a pretokenized folder (`training_scripts/pretokenize.py`)."""

from __future__ import annotations

from pathlib import Path

import torch

from .contract import DataInfo


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


def load_training_data(data_args, task: str | None = None) -> tuple[dict, DataInfo]:
    """{split: torch Dataset} plus `DataInfo` for a window dataset or a pretokenized folder (`task` only shapes
    the message when the dataset is missing)."""
    from ..data.pretokenize import (
        TOKENIZATION_FILE,
        load_token_datasets,
        pretokenize_hint,
        read_tokenization,
    )

    if (Path(data_args.dataset) / TOKENIZATION_FILE).exists():
        meta = read_tokenization(data_args.dataset)
        if abs(meta["example_seconds"] - data_args.example_seconds) > 1e-9:
            raise ValueError(
                f"{data_args.dataset} was pretokenized with example_seconds={meta['example_seconds']}, "
                f"the run asks for {data_args.example_seconds}"
            )
        length = round(meta["example_seconds"] * meta["sampling_rate"])
        return load_token_datasets(data_args.dataset), DataInfo(None, meta["sampling_rate"], length, True)
    from ..data.windows import load_window_datasets

    try:
        splits = load_window_datasets(data_args.dataset, data_args.example_seconds, data_args.overlap_seconds)
    except FileNotFoundError as err:
        if task != "flatgpt" or Path(data_args.dataset).exists():
            raise
        # FlatGPT also reads token folders: the user may have meant one of those.
        raise FileNotFoundError(
            f"{err}; or, to train on brain-tokenizer codes, {pretokenize_hint(data_args.dataset)}"
        ) from err
    first = next(iter(splits.values()))
    info = DataInfo(
        first.layout,
        first.layout.sfreq,
        first.length,
        units=signal_units(first),
        normalization=signal_normalization(data_args.dataset, first),
    )
    if data_args.label_column:
        column = data_args.label_column
        missing = [name for name, split in splits.items() if column not in split.segments.column_names]
        if missing:
            raise ValueError(
                f"label_column {column!r} is not a column of splits {missing} (columns: {first.segments.column_names})"
            )
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
    return {
        **_card_normalization(Path(dataset) / "README.md"),
        "statistics": "per recording and channel, stored in the dataset rows: x = data * norm_scale + norm_center",
    }


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
