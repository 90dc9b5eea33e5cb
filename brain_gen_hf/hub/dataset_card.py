"""Render the dataset card of a built MEG/EEG dataset (template `model_cards/dataset_card.md`)."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

TEMPLATE_NAME = "dataset_card.md"


def dataset_card_template() -> Path:
    """The card template, installed with the package as `brain_gen_hf.model_cards` (see setup.py)."""
    from importlib import resources

    return Path(str(resources.files("brain_gen_hf.model_cards") / TEMPLATE_NAME))


def _size_category(n_rows: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n_rows < limit:
            return label
    return "n>1M"


def _steps(config) -> str:
    p = config.preprocessing
    steps = []
    if p.crop_seconds:
        steps.append(f"crop to the first {p.crop_seconds:g} s")
    if p.maxwell:
        steps.append(f"Maxwell filter (tSSS, {p.maxwell_st_duration:g} s) for Neuromag data")
    if p.gradient_compensation is not None:
        steps.append(f"CTF gradient compensation grade {p.gradient_compensation}")
    band = f"band-pass {p.l_freq}-{p.h_freq} Hz ({p.filter_phase} phase FIR)"
    notch = f"notch {p.notch_freqs} Hz" if p.notch_freqs else None
    steps.extend([s for s in ((notch, band) if p.notch_before_bandpass else (band, notch)) if s])
    if p.sfreq:
        steps.append(f"resample to {p.sfreq:g} Hz ({p.resample_method})")
    steps.append(f"pick {p.picks} channels")
    if p.detect_bad_channels:
        steps.append(f"GESD bad channels (alpha {p.bad_channel_alpha}), then {p.bad_channel_action}")
    if config.source_space.enabled:
        space = config.source_space
        steps.append(f"{space.method} source projection to {space.parcellation} parcels on {space.subject}")
    n = config.normalization
    steps.append(
        f"{n.method} per-channel normalisation" + (f", clip at +-{n.clip_std_factor} std" if n.clip_std_factor else "")
    )
    c = config.cleaning
    if c.enabled:
        steps.append(
            f"session cleaning ({c.window_seconds:g} s windows, std > {c.std_threshold:g} bad, "
            f"reject > {c.max_bad_pct:g}% bad, clip {list(c.clip_range)}, segments "
            f"{c.min_segment_seconds:g}-{c.max_segment_seconds:g} s)"
        )
    if config.mulaw.enabled:
        steps.append(f"mu-law quantisation (mu={config.mulaw.mu})")
    return "; ".join(steps)


def render_dataset_card(
    config, recordings: dict, splits: dict, assignment: dict | None = None, *, repo_id: str | None = None
):
    """A `huggingface_hub.DatasetCard` for a built dataset.

    `recordings`: manifest entries (dataset, session, seconds, sfreq, n_channels, ch_types, path);
    `splits`: per split {recordings, segments, hours, shards}.
    """
    import yaml
    from huggingface_hub import DatasetCard, DatasetCardData

    by_dataset: OrderedDict[str, list[dict]] = OrderedDict()
    for entry in recordings.values():
        by_dataset.setdefault(entry["dataset"], []).append(entry)
    sources, layouts = [], []
    for name, entries in by_dataset.items():
        types = sorted({t for e in entries for t in e["ch_types"]})
        sources.append(
            {
                "dataset": name,
                "recordings": len(entries),
                "hours": sum(e["seconds"] for e in entries) / 3600,
                "sfreq": ", ".join(sorted({f"{e['sfreq']:g}" for e in entries})),
                "ch_types": ", ".join(types),
            }
        )
        layouts.append(
            {
                "dataset": name,
                "n_channels": "/".join(sorted({str(e["n_channels"]) for e in entries})),
                "types": ", ".join(types),
            }
        )
    simulated = any(
        e["dataset"].startswith("simulated") or "simulated" in str(e.get("path", "")) for e in recordings.values()
    )
    n_rows = sum(info["segments"] for info in splits.values())
    card_data = DatasetCardData(
        license=config.card.license,
        pretty_name=config.card.pretty_name or config.dataset_name or "brain_gen_hf MEG/EEG dataset",
        size_categories=_size_category(n_rows),
        task_categories=["time-series-forecasting"],
        tags=["meg", "eeg", "neuroscience", "brain_gen_hf"] + (["simulated"] if simulated else []),
        configs=[
            {"config_name": "default", "data_files": [{"split": s, "path": f"data/{s}-*.parquet"} for s in splits]}
        ],
        source_datasets=sorted(by_dataset),
    )
    config_dict = config.to_dict()
    return DatasetCard.from_template(
        card_data,
        template_path=str(dataset_card_template()),
        pretty_name=card_data.pretty_name,
        description=config.card.description or "Cleaned, normalised MEG/EEG segments for generative modelling.",
        simulated=simulated,
        split_config=config.splits,
        splits=splits,
        sources=sources,
        layouts=layouts,
        config_yaml=yaml.safe_dump(config_dict, sort_keys=False).strip(),
        steps=_steps(config),
        mulaw=config.mulaw.enabled,
        source_space=config.source_space.enabled,
        mulaw_mu=config.mulaw.mu,
        license=config.card.license,
        citation=config.card.citation,
        repo_hint=repo_id or "path/to/this/folder",
    )
