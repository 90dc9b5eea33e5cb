"""Session-wide test settings.

Thread count and Hub settings must be fixed before torch / huggingface_hub are imported.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from tests.datasets_fixtures import tiny_meg_dataset  # noqa: F401, E402
from tests.evaluation_fixtures import tiny_eval_model  # noqa: F401, E402
from tests.local_hub.fixtures import hub_repo_id, local_hub  # noqa: F401, E402

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BRAIN_GEN_HF_SHARED", REPO_ROOT.parent / "shared"))


def refvec_root() -> Path:
    return Path(os.environ.get("BRAIN_GEN_HF_REFVEC", SHARED / "refvec" / "public"))


def require_shared(path: Path) -> Path:
    """Return `path`; under CI a missing ../shared is a failure, elsewhere a skip."""
    if path.exists():
        return path
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"required test data is missing: {path} (CI expects ../shared beside the repo)")
    pytest.skip(f"test data not available: {path}")


@pytest.fixture(autouse=True, scope="session")
def _torch_threads():
    import torch

    torch.set_num_threads(1)
    yield
