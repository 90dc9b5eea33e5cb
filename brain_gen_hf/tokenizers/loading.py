"""Loading saved tokenizers: a damaged `tokenizer.json` or `tokenizer_config.json` is reported by name.

transformers reads these files with `json.load` and indexes them directly, so a truncated or edited
file surfaces as `Expecting value: line 1 column 1 (char 0)` or `KeyError: 'added_tokens'`, naming
neither the file nor the folder. `NamedFileErrorsMixin.from_pretrained` turns such failures into a
`ValueError` that names the file and what is wrong with it.

Two failures happen inside `AutoTokenizer.from_pretrained` before any tokenizer class is chosen, so no
class of this package can name them: an invalid `tokenizer_config.json` (a bare `JSONDecodeError`) and a
folder without one (a generic `TokenizersBackend`, silently, with no signal API). `load_tokenizer` checks
the saved files first and names them; load saved flat tokenizers with it.
"""

from __future__ import annotations

import json
import os
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
        if (problem := file_problem(path)) is not None:
            return problem
    return None


class NamedFileErrorsMixin:
    """Put first in a tokenizer's bases: `from_pretrained` errors name the damaged file, or at least the folder;
    `save_pretrained` into a file and `decode` of ids outside the vocabulary raise instead of doing nothing."""

    # A class whose vocabulary lives only in tokenizer.json (BPE merges) must not load without it: transformers
    # would build it from the constructor defaults, an untrained tokenizer, silently.
    requires_tokenizer_file = False

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        folder = Path(pretrained_model_name_or_path, kwargs.get("subfolder") or "")
        if cls.requires_tokenizer_file and folder.is_dir() and not (folder / "tokenizer.json").is_file():
            raise ValueError(
                f"{folder} has no tokenizer.json, which holds the vocabulary and merges of "
                f"{cls.__name__}; save the tokenizer again with `save_pretrained`"
            )
        try:
            return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        except (ValueError, KeyError, TypeError) as err:
            problem = damaged_tokenizer_file(pretrained_model_name_or_path, kwargs.get("subfolder") or "")
            if problem is None:
                message = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
                problem = f"cannot load {cls.__name__} from {pretrained_model_name_or_path}: {message}"
            raise ValueError(problem) from err

    def decode(self, token_ids, *args, **kwargs):
        # The `tokenizers` backend silently skips ids it does not know: a shorter text than the ids.
        from transformers.utils import to_py_obj

        ids = to_py_obj(token_ids)
        flat = [ids] if isinstance(ids, int) else ids if isinstance(ids, list) else []
        bad = [i for i in flat if isinstance(i, int) and not 0 <= i < len(self)]
        if bad:
            raise ValueError(f"decode got token ids outside the vocabulary [0, {len(self) - 1}]: {bad[:10]}")
        return super().decode(token_ids, *args, **kwargs)

    def save_pretrained(self, save_directory, *args, **kwargs):
        if os.path.isfile(save_directory):  # transformers would only log an error and save nothing
            raise OSError(
                f"save_directory {os.fspath(save_directory)} is an existing file; save_pretrained writes a "
                "folder (tokenizer_config.json, tokenizer.json, ...): pass a folder path"
            )
        return super().save_pretrained(save_directory, *args, **kwargs)


def load_tokenizer(name_or_path, **kwargs):
    """A saved flat signal tokenizer (`AmplitudeTokenizer`, ...) from a folder or Hub repo, its files checked first.

    `kwargs` go to `AutoTokenizer.from_pretrained` (`subfolder`, `revision`, `token`, `cache_dir`, ...).
    Raises FileNotFoundError when nothing is saved there and ValueError naming the file that is missing,
    damaged or holds another kind of tokenizer.
    """
    from transformers import AutoTokenizer

    import brain_gen_hf  # noqa: F401  (Auto registration)

    from ..registration import TOKENIZERS

    where = Path(name_or_path, kwargs.get("subfolder") or "")
    config_file = _fetched_file(name_or_path, "tokenizer_config.json", kwargs)
    backend_file = _fetched_file(name_or_path, "tokenizer.json", kwargs)
    for path in (config_file, backend_file):
        if path is not None and (problem := file_problem(path)) is not None:
            raise ValueError(problem)
    if config_file is None:
        if backend_file is None:
            raise FileNotFoundError(
                f"{where} holds no saved tokenizer (no tokenizer_config.json); save one with "
                "`tokenizer.save_pretrained(folder)`"
            )
        raise ValueError(
            f"{where} has tokenizer.json but no tokenizer_config.json, which names the tokenizer class "
            "and its signal settings (mu, num_channels): AutoTokenizer would load a generic text "
            "tokenizer; save the tokenizer again with `save_pretrained`"
        )
    if backend_file is None:  # save_pretrained always writes it; a BPE vocabulary lives nowhere else
        raise ValueError(
            f"{where} has tokenizer_config.json but no tokenizer.json (the vocabulary); save the "
            "tokenizer again with `save_pretrained`"
        )
    class_name = json.loads(config_file.read_text(encoding="utf-8")).get("tokenizer_class")
    known = [entry.tokenizer_class for entry in TOKENIZERS]
    if class_name not in known:
        raise ValueError(
            f"{config_file}: tokenizer_class is {class_name!r}, not a brain_gen_hf signal tokenizer "
            f"({', '.join(known)})"
        )
    return AutoTokenizer.from_pretrained(name_or_path, **kwargs)


def _fetched_file(name_or_path, filename: str, kwargs: dict) -> Path | None:
    """The local path of a saved tokenizer file (downloaded first for a Hub repo), or None if it has none."""
    subfolder = kwargs.get("subfolder") or ""
    if Path(name_or_path).is_dir():
        local = Path(name_or_path, subfolder, filename)
        return local if local.is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HFValidationError,
        LocalEntryNotFoundError,
    )

    try:
        return Path(
            hf_hub_download(
                str(name_or_path),
                filename,
                subfolder=subfolder or None,
                revision=kwargs.get("revision"),
                cache_dir=kwargs.get("cache_dir"),
                token=kwargs.get("token"),
                local_files_only=kwargs.get("local_files_only", False),
            )
        )
    except LocalEntryNotFoundError as err:  # offline, or the Hub unreachable, and not in the cache
        raise OSError(f"cannot fetch {filename} of {name_or_path}: {' '.join(str(err).split())}") from err
    except EntryNotFoundError:
        return None
    except HFValidationError:  # not a repo id: a local path that does not exist
        raise FileNotFoundError(f"tokenizer folder {name_or_path} does not exist") from None
