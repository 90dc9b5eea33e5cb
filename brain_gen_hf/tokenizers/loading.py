"""Loading saved tokenizers: a damaged `tokenizer.json` or `tokenizer_config.json` is reported by name.

transformers reads these files with `json.load` and indexes them directly, so a truncated or edited
file surfaces as `Expecting value: line 1 column 1 (char 0)` or `KeyError: 'added_tokens'`, naming
neither the file nor the folder. `NamedFileErrorsMixin.from_pretrained` turns such failures into a
`ValueError` that names the file and what is wrong with it.
"""

from __future__ import annotations

import json
from pathlib import Path

TOKENIZER_FILES = ("tokenizer_config.json", "tokenizer.json")


def _saved_file(name_or_path, filename: str, subfolder: str = "") -> Path | None:
    """The local copy of `filename`: in the folder itself, or in the Hub cache for a repo id."""
    local = Path(name_or_path, subfolder, filename)
    if local.is_file():
        return local
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(str(name_or_path), f"{subfolder}/{filename}" if subfolder else filename)
    except ValueError:  # not a valid repo id (a local path that does not exist)
        return None
    return Path(cached) if isinstance(cached, str) else None


def file_problem(path: Path) -> str | None:
    """What is wrong with one saved tokenizer file, or None if it reads as the format it should have."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        return f"{path} is not a UTF-8 text file ({err.reason} at byte {err.start})"
    try:
        content = json.loads(text)
    except json.JSONDecodeError as err:
        return f"{path} is not valid JSON: {err.msg} (line {err.lineno}, column {err.colno}); the file is damaged"
    if not isinstance(content, dict):
        return f"{path} holds a JSON {type(content).__name__}, not an object"
    if path.name == "tokenizer.json":
        from tokenizers import Tokenizer

        try:
            Tokenizer.from_str(text)
        except Exception as err:  # noqa: BLE001  (the Rust parser raises plain `Exception`)
            return f"{path} is not a valid `tokenizers` file: {' '.join(str(err).split())}"
    return None


def damaged_tokenizer_file(name_or_path, subfolder: str = "") -> str | None:
    """The first problem found in the saved tokenizer files of `name_or_path`, or None."""
    for filename in TOKENIZER_FILES:
        path = _saved_file(name_or_path, filename, subfolder)
        if path is not None and (problem := file_problem(path)) is not None:
            return problem
    return None


class NamedFileErrorsMixin:
    """Put first in a tokenizer's bases: `from_pretrained` errors name the damaged file, or at least the folder."""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        try:
            return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        except (ValueError, KeyError, TypeError) as err:
            problem = damaged_tokenizer_file(pretrained_model_name_or_path, kwargs.get("subfolder") or "")
            if problem is None:
                message = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
                problem = f"cannot load {cls.__name__} from {pretrained_model_name_or_path}: {message}"
            raise ValueError(problem) from err
