"""Pre-tokenisation: a frozen brain tokenizer over a windowed dataset -> token shards (`datasets.map`).

The output folder holds one Parquet shard set per split, one row per window (`dataset`, `session`,
`row`, `start`, flat `codes` in the tokenizer's (time, latent, level) order, level fastest), plus a
`tokenization.json` describing the tokenizer and windowing. It loads with
`datasets.load_dataset(folder)` and pushes like any dataset.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

TOKENIZATION_FILE = "tokenization.json"


def tokenizer_fingerprint(tokenizer) -> str:
    """sha256 of the tokenizer's weights and buffers (codebooks included): which tokenizer made a token folder."""
    digest = hashlib.sha256()
    for name, tensor in sorted(tokenizer.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


# What must be equal for the token shards of two runs to live in one folder.
TOKENIZATION_IDENTITY = ("tokenizer_fingerprint", "example_seconds", "overlap_seconds", "source_dataset")


def _kept_splits(output_dir: Path, written: set[str], meta: dict) -> dict[str, int]:
    """Splits of an earlier run that this run leaves in place (their window counts); a `ValueError` if they were
    made with another tokenizer or windowing, since one folder must hold one tokenization."""
    shards = output_dir / "data"
    old = (
        {p.name.split("-00000-of-00001")[0] for p in shards.glob("*-00000-of-00001.parquet")}
        if shards.is_dir()
        else set()
    )
    kept = sorted(old - written)
    if not kept:
        return {}
    previous = read_tokenization(output_dir) if (output_dir / TOKENIZATION_FILE).is_file() else {}
    changed = [key for key in TOKENIZATION_IDENTITY if previous.get(key) != meta[key]]
    if changed:
        raise ValueError(
            f"{output_dir} holds token shards of split(s) {kept} made with another "
            f"{' / '.join(changed)} (or by an older version, which recorded no tokenizer fingerprint); "
            "one folder must hold one tokenization: tokenize every split again (drop --splits) or "
            "choose a new --output. Nothing was written."
        )
    return {split: int((previous.get("windows") or {}).get(split, 0)) for split in kept}


def _codes_dtype(codebook_size: int):
    return np.uint16 if codebook_size <= np.iinfo(np.uint16).max else np.uint32


def load_frozen_tokenizer(name_or_path: str):
    """A trained brain tokenizer (anything with `encode` -> RVQ codes) from a folder or Hub repo, or a
    `ValueError` saying what the folder holds instead."""
    from transformers import AutoModel

    import brain_gen_hf  # noqa: F401  (Auto registration)

    from ..training.model_building import check_model_source

    check_model_source(name_or_path, "tokenizer")
    model = AutoModel.from_pretrained(name_or_path)
    if not (
        callable(getattr(model, "encode", None))
        and callable(getattr(model, "flatten_codes", None))
        and hasattr(model.config, "codebook_size")
    ):
        raise ValueError(
            f"{name_or_path} holds a {model.config.model_type} model, not a brain tokenizer "
            "(e.g. braintokmix or brainomni_causal_tokenizer)"
        )
    return model


def pretokenize_dataset(
    tokenizer,
    dataset: str,
    output_dir: str | Path,
    *,
    example_seconds: float,
    overlap_seconds: float = 0.0,
    splits: list[str] | None = None,
    batch_size: int = 8,
    progress: bool = True,
) -> dict[str, int]:
    """Encode every window of `dataset` with `tokenizer`; returns the number of windows per split."""
    import datasets

    from .windows import load_window_datasets

    output_dir = Path(output_dir)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if Path(dataset).exists() and Path(dataset).resolve() == output_dir.resolve():
        raise ValueError(
            f"--output {output_dir} is the dataset being tokenized: its shards would be replaced; "
            "choose another folder for the tokens"
        )
    check_token_output(output_dir)
    tokenizer = tokenizer.eval().requires_grad_(False)
    windows = load_window_datasets(dataset, example_seconds, overlap_seconds)
    unknown = sorted(set(splits or []) - set(windows))
    if unknown:
        raise ValueError(f"dataset {dataset} has no split(s) {unknown} (has {sorted(windows)}); fix --splits")
    identity = {
        "tokenizer_fingerprint": tokenizer_fingerprint(tokenizer),
        "example_seconds": example_seconds,
        "overlap_seconds": overlap_seconds,
        "source_dataset": str(dataset),
    }
    kept = _kept_splits(output_dir, {split for split in windows if not splits or split in splits}, identity)
    output_dir.mkdir(parents=True, exist_ok=True)
    codebook_size = int(tokenizer.config.codebook_size)
    dtype = _codes_dtype(codebook_size)
    counts = {}
    for split, window_set in windows.items():
        if splits and split not in splits:
            continue
        index = datasets.Dataset.from_dict({"window": np.arange(len(window_set), dtype=np.int64)})

        def encode(batch, _ws=window_set):
            ids = batch["window"]
            signal = torch.from_numpy(_ws.window_array(ids))
            with torch.inference_mode():
                codes = tokenizer.encode(signal).codes
            flat = tokenizer.flatten_codes(codes).cpu().numpy().astype(dtype)
            rows = _ws.index[ids]
            return {"row": rows[:, 0], "start": rows[:, 1], "codes": list(flat)}

        tokens = index.map(
            encode,
            batched=True,
            batch_size=batch_size,
            remove_columns=["window"],
            desc=f"tokenizing {split}" if progress else None,
        )
        shard = output_dir / "data" / f"{split}-00000-of-00001.parquet"
        shard.parent.mkdir(parents=True, exist_ok=True)
        tmp = shard.with_suffix(".tmp")
        tokens.to_parquet(str(tmp))
        tmp.replace(shard)  # atomic per split
        counts[split] = len(tokens)
    meta = {
        "tokenizer_model_type": tokenizer.config.model_type,
        "codebook_size": codebook_size,
        "num_quantizers": int(tokenizer.config.num_quantizers),
        **identity,
        "windows": {**kept, **counts},
        # After encoding: a tokenizer without trained codebooks initialises them on its first batch.
        "tokenizer_fingerprint": tokenizer_fingerprint(tokenizer),
        "sampling_rate": float(next(iter(windows.values())).layout.sfreq),
    }
    (output_dir / TOKENIZATION_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return counts


def _is_token_output(folder: Path) -> bool:
    """An earlier pretokenize output: it has tokenization.json, or (interrupted before writing it) only token shards."""
    if (folder / TOKENIZATION_FILE).is_file():
        return True
    shards = folder / "data"
    return (
        {p.name for p in folder.iterdir()} == {"data"}
        and shards.is_dir()
        and all(p.name.endswith(("-00000-of-00001.parquet", "-00000-of-00001.tmp")) for p in shards.iterdir())
    )


def check_token_output(output_dir: Path) -> None:
    """The output must be a new or empty folder, or an earlier pretokenize output: its `data/` shards are replaced,
    so another folder (the source dataset itself, say) would lose its own."""
    blocking = next((folder for folder in (output_dir, *output_dir.parents) if folder.exists()), None)
    if blocking is not None and not blocking.is_dir():
        raise NotADirectoryError(f"output {output_dir}: {blocking} is a file, not a folder; choose another --output")
    if output_dir.is_dir() and any(output_dir.iterdir()) and not _is_token_output(output_dir):
        raise ValueError(
            f"output folder {output_dir} is not empty and is not a pretokenized folder (no "
            f"{TOKENIZATION_FILE}); nothing was written: choose a new or empty folder for --output"
        )


# What a token folder must hold: the windowing of tokenization.json, the `codes` column of its shards.
TOKENIZATION_KEYS = ("example_seconds", "sampling_rate")
TOKEN_COLUMNS = ("codes",)


def pretokenize_hint(path: str | Path = "DIR") -> str:
    return (
        "make one with `python training_scripts/pretokenize.py --tokenizer TOKENIZER --dataset DATASET "
        f"--output {path}`"
    )


def read_tokenization(path: str | Path) -> dict:
    """The `tokenization.json` of a pretokenized folder, or a ValueError naming the file and how to remake it."""
    marker = Path(path) / TOKENIZATION_FILE
    try:
        meta = json.loads(marker.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(
            f"{marker} is not valid JSON ({err}); the pretokenized folder is damaged: {pretokenize_hint(path)}"
        ) from None
    missing = [key for key in TOKENIZATION_KEYS if not isinstance(meta, dict) or key not in meta]
    if missing:
        raise ValueError(
            f"{marker} lacks {missing}: it was not written by training_scripts/pretokenize.py; {pretokenize_hint(path)}"
        )
    return meta


def load_token_datasets(path: str | Path) -> dict:
    """{split: datasets.Dataset with a `codes` column} from a pretokenized folder (torch format).

    Shards are read like dataset folders (`load_parquet_folder`): a damaged one is a ValueError naming it."""
    from .windows import load_parquet_folder

    path = Path(path)
    hint = pretokenize_hint(path)
    if not path.exists():
        raise FileNotFoundError(f"pretokenized folder {path} does not exist; {hint}")
    rebuild = f"rerun training_scripts/pretokenize.py with --output {path} to write the token shards again"
    loaded = load_parquet_folder(path, build_hint=hint, rebuild_hint=rebuild)
    for name, ds in loaded.items():
        missing = [column for column in TOKEN_COLUMNS if column not in ds.column_names]
        if missing:
            raise ValueError(
                f"{path}: the {name!r} shards have no {missing} column (columns: {ds.column_names}), "
                f"so they are not pretokenized windows; {hint}"
            )
    return {name: ds.with_format("torch", columns=list(TOKEN_COLUMNS)) for name, ds in loaded.items()}
