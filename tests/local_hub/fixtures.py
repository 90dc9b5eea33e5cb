"""pytest fixtures pointing huggingface_hub / transformers / datasets at a local Hub server.

The libraries copy endpoint and cache settings into module globals at import time, so setting
environment variables is not enough once they are imported: every copy they read is patched here
(and restored at the end). Modules imported later pick the values up from the environment.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .server import LocalHub

DUMMY_TOKEN = "hf_local_hub_dummy_token"
_repo_counter = itertools.count(1)
_TRANSFORMERS_MODULES_CACHE_COPIES = (
    "transformers.utils.hub",
    "transformers.utils",
    "transformers.file_utils",
    "transformers.dynamic_module_utils",
)


def _patch_module(mp: pytest.MonkeyPatch, module: str, **attrs: Any) -> None:
    """Patch attributes of `module` if it is imported (and has them)."""
    mod = sys.modules.get(module)
    if mod is None:
        return
    for name, value in attrs.items():
        if hasattr(mod, name):
            mp.setattr(mod, name, value)


def _point_caches(mp: pytest.MonkeyPatch, home: Path) -> None:
    hub_cache, datasets_cache, modules_cache = home / "hub", home / "datasets", home / "modules"
    for key, value in {
        "HF_HOME": home,
        "HF_HUB_CACHE": hub_cache,
        "HF_ASSETS_CACHE": home / "assets",
        "HF_XET_CACHE": home / "xet",
        "HF_DATASETS_CACHE": datasets_cache,
        "HF_MODULES_CACHE": modules_cache,
    }.items():
        mp.setenv(key, str(value))
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        # Every path derived from HF_HOME (token, caches, agent registry, update markers) moves with it.
        old_home = constants.HF_HOME.rstrip(os.sep) + os.sep
        for name, value in vars(constants).copy().items():
            if name.isupper() and isinstance(value, str) and value.startswith(old_home):
                mp.setattr(constants, name, str(home / value[len(old_home) :]))
        _patch_module(
            mp,
            "huggingface_hub.constants",
            HF_HOME=str(home),
            HF_HUB_CACHE=str(hub_cache),
            HF_ASSETS_CACHE=str(home / "assets"),
            HF_XET_CACHE=str(home / "xet"),
        )
    _patch_module(mp, "huggingface_hub.utils._cache_manager", HF_HUB_CACHE=str(hub_cache))
    _patch_module(mp, "huggingface_hub.utils._cache_assets", HF_ASSETS_CACHE=str(home / "assets"))
    _patch_module(
        mp,
        "datasets.config",
        HF_CACHE_HOME=str(home),
        HF_DATASETS_CACHE=datasets_cache,
        DOWNLOADED_DATASETS_PATH=datasets_cache / "downloads",
        EXTRACTED_DATASETS_PATH=datasets_cache / "downloads" / "extracted",
        HF_MODULES_CACHE=modules_cache,
    )
    # transformers keeps copies of its remote-code module cache in several modules
    for module in _TRANSFORMERS_MODULES_CACHE_COPIES:
        _patch_module(mp, module, HF_MODULES_CACHE=str(modules_cache))


def _point_endpoint(mp: pytest.MonkeyPatch, endpoint: str) -> None:
    mp.setenv("HF_ENDPOINT", endpoint)
    mp.setenv("HF_HUB_DISABLE_XET", "1")
    mp.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    mp.setenv("HF_TOKEN", DUMMY_TOKEN)
    mp.setenv("HF_UPDATE_DOWNLOAD_COUNTS", "0")
    mp.delenv("HF_HUB_OFFLINE", raising=False)
    mp.delenv("HF_DATASETS_OFFLINE", raising=False)
    mp.delenv("TRANSFORMERS_OFFLINE", raising=False)
    host = endpoint.split("://", 1)[1].split(":")[0]
    _patch_module(
        mp,
        "huggingface_hub.constants",
        ENDPOINT=endpoint,
        HUGGINGFACE_CO_URL_TEMPLATE=endpoint + "/{repo_id}/resolve/{revision}/{filename}",
        HF_HUB_DISABLE_XET=True,  # hf_xet is installed, but the local server speaks plain git-LFS only
        HF_HUB_OFFLINE=False,
        HF_HUB_DISABLE_TELEMETRY=True,
    )
    # Hosts / origins trusted as "the Hub" (URL parsing, redirects keeping the auth header): add ours.
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None and hasattr(constants, "HF_URL_HOSTS"):
        mp.setattr(constants, "HF_URL_HOSTS", constants.HF_URL_HOSTS | {host})
    http = sys.modules.get("huggingface_hub.utils._http")
    if http is not None and hasattr(http, "_HUB_ORIGINS"):
        mp.setattr(http, "_HUB_ORIGINS", http._HUB_ORIGINS | {http._url_origin(endpoint)})
    _patch_module(mp, "huggingface_hub.utils._git_credential", ENDPOINT=endpoint)
    _patch_module(mp, "huggingface_hub.cli.auth", ENDPOINT=endpoint)
    _patch_module(
        mp,
        "datasets.config",
        HF_ENDPOINT=endpoint,
        HUB_DATASETS_URL=endpoint + "/datasets/{repo_id}/resolve/{revision}/{path}",
        HF_HUB_OFFLINE=False,
        HF_DATASETS_OFFLINE=False,
        # The download counter pings an S3 bucket, and the parquet export lives on a separate
        # datasets-server host: neither exists here, so keep datasets from reaching out.
        HF_UPDATE_DOWNLOAD_COUNTS=False,
        USE_PARQUET_EXPORT=False,
    )


def _forget_clients() -> None:
    """Drop pooled connections and cached HfFileSystem instances (they hold listings of older commits)."""
    if "huggingface_hub" in sys.modules:
        from huggingface_hub import HfFileSystem
        from huggingface_hub.utils import close_session

        close_session()
        HfFileSystem.clear_instance_cache()


@dataclass
class LocalHubHandle:
    server: LocalHub
    endpoint: str
    tmp_dir: Path
    api: Any = None  # huggingface_hub.HfApi bound to the local endpoint
    cache_dir: Path | None = None
    _fresh_ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    @contextlib.contextmanager
    def fresh_cache(self):
        """Point every cache (hub, datasets, modules) at a new empty dir, so the next load really downloads."""
        home = self.tmp_dir / f"hf_home_{next(self._fresh_ids)}"
        home.mkdir()
        mp = pytest.MonkeyPatch()
        previous = self.cache_dir
        try:
            _point_caches(mp, home)
            _forget_clients()
            self.cache_dir = home
            yield home
        finally:
            mp.undo()
            self.cache_dir = previous
            _forget_clients()


@pytest.fixture(scope="session")
def local_hub(tmp_path_factory):
    # datasets.config holds settings with no environment variable (USE_PARQUET_EXPORT): import it now so
    # that it gets patched; huggingface_hub is needed anyway.
    from huggingface_hub import HfApi

    if importlib.util.find_spec("datasets") is not None:
        import datasets.config  # noqa: F401

    tmp_dir = tmp_path_factory.mktemp("local_hub")
    server = LocalHub(root=str(tmp_dir / "storage")).start()
    mp = pytest.MonkeyPatch()
    try:
        _point_endpoint(mp, server.endpoint)
        home = tmp_dir / "hf_home"
        home.mkdir()
        _point_caches(mp, home)
        _forget_clients()
        api = HfApi(endpoint=server.endpoint, token=DUMMY_TOKEN)
        yield LocalHubHandle(server=server, endpoint=server.endpoint, tmp_dir=tmp_dir, api=api, cache_dir=home)
    finally:
        mp.undo()
        _forget_clients()
        server.stop()


@pytest.fixture
def hub_repo_id(local_hub) -> str:
    """A repo id no other test uses (the repo itself is not created)."""
    return f"user/repo-{next(_repo_counter)}"
