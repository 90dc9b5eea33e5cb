"""Uploads to the Hub: repo ids checked before any work is done, network and permission failures as one clear
`OSError` that says what was kept locally."""

from __future__ import annotations

import contextlib


def check_repo_id(repo_id: str, option: str) -> None:
    """A `ValueError` naming `option` if `repo_id` cannot be a Hub repo id (checked offline, before a long run)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise ValueError(f"{option} {repo_id!r} is not a Hub repo id ('org/name' or 'name'): {err}") from None


def _upload_errors() -> tuple[type[BaseException], ...]:
    try:
        import httpx2 as httpx  # the HTTP client huggingface_hub uses here
    except ImportError:
        import httpx
    return (OSError, httpx.HTTPError)


@contextlib.contextmanager
def upload_errors(what: str, kept: str):
    """Turn a failed upload (no network, no permission, a rejected commit) into one `OSError` line naming what was
    being uploaded and what is kept on disk."""
    try:
        yield
    except _upload_errors() as err:
        detail = " ".join(str(err).split()) or type(err).__name__
        raise OSError(
            f"uploading {what} failed ({type(err).__name__}: {detail}); {kept} is kept locally: "
            "rerun the upload when the Hub is reachable"
        ) from err
