"""Checkpoints: accelerate state + `save_pretrained` model + resolved run config, written atomically.

Layout: `<output_dir>/checkpoints/step-000120/{state/, model/, run_config.yaml, trainer_state.json}`; the
best-by-validation checkpoint is `<output_dir>/checkpoints/best/` (same layout, kept besides the last N).
A checkpoint is written to `step-000120.tmp` and renamed when complete, so an interrupted save never
replaces the previous checkpoint; only complete `step-*` folders are ever resumed from.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import yaml

_STEP = re.compile(r"^step-(\d+)$")


def checkpoint_root(output_dir: str | Path) -> Path:
    return Path(output_dir) / "checkpoints"


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    root = checkpoint_root(output_dir)
    if not root.exists():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and _STEP.match(p.name) and (p / "trainer_state.json").exists()]
    return sorted(found, key=lambda p: int(_STEP.match(p.name).group(1)))


def incomplete_checkpoints(output_dir: str | Path) -> list[Path]:
    """Checkpoint folders an interrupted save left behind (`step-*.tmp`, or no trainer_state.json), oldest first."""
    root = checkpoint_root(output_dir)
    if not root.exists():
        return []
    complete = set(list_checkpoints(output_dir))
    return sorted(
        (p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-") and p not in complete),
        key=lambda p: p.name,
    )


def save_checkpoint(
    accelerator,
    model,
    *,
    output_dir,
    step: int,
    run_config: dict,
    trainer_state: dict,
    keep_last: int,
    card: dict | None = None,
    name: str | None = None,
) -> Path | None:
    """Write one checkpoint (main process writes files; every rank joins `save_state`). `name` (e.g. `best`)
    writes `checkpoints/<name>` instead of `step-<step>`, outside the keep-last-N rotation."""
    root = checkpoint_root(output_dir)
    final = root / (name or f"step-{step:06d}")
    tmp = root / f"{final.name}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp / "state"))
    if accelerator.is_main_process:
        accelerator.unwrap_model(model).save_pretrained(tmp / "model", model_card=card or True)
        (tmp / "run_config.yaml").write_text(yaml.safe_dump(run_config, sort_keys=True), encoding="utf-8")
        # Written last: its presence marks the checkpoint complete.
        (tmp / "trainer_state.json").write_text(json.dumps(trainer_state, indent=2), encoding="utf-8")
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        for old in list_checkpoints(output_dir)[:-keep_last] if keep_last > 0 and name is None else []:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final if accelerator.is_main_process else None


def resolve_resume(resume_from: str | None, output_dir: str | Path) -> Path | None:
    """'latest' -> newest local checkpoint; a folder -> itself; `org/repo` -> downloaded Hub snapshot."""
    if not resume_from:
        return None
    if resume_from == "latest":
        found = list_checkpoints(output_dir)
        return found[-1] if found else None
    path = Path(resume_from)
    if path.exists():
        if (path / "trainer_state.json").exists():
            return path
        found = list_checkpoints(path) or list_checkpoints(path.parent)
        if found:
            return found[-1]
        if path.name.startswith("step-"):
            raise ValueError(
                f"{path} is an incomplete checkpoint (an interrupted save: no trainer_state.json); "
                "resume from a complete one, or use 'latest'"
            )
        raise ValueError(f"{path} holds no complete checkpoint (expected trainer_state.json)")
    from huggingface_hub import snapshot_download

    try:
        local = Path(snapshot_download(resume_from))
    except (OSError, ValueError) as err:  # huggingface_hub's errors are OSErrors (HTTP, offline) or ValueErrors
        raise ValueError(
            f"resume_from {resume_from!r} is not a local folder and could not be fetched as a Hub "
            f"repo ({' '.join(str(err).split())}); give a checkpoint folder, 'latest', or a "
            "reachable Hub repo id"
        ) from None
    candidates = sorted(local.glob("checkpoints/step-*/trainer_state.json"))
    if (local / "trainer_state.json").exists():
        return local
    if not candidates:
        raise ValueError(f"Hub repo {resume_from} holds no training checkpoint")
    return candidates[-1].parent


def resume_notice(resume_from: str | None, output_dir: str | Path, checkpoint: Path | None) -> str | None:
    """What `resume_from='latest'` did, in words, when that is not simply 'resumed from the newest checkpoint'."""
    if resume_from != "latest":
        return None
    incomplete = [p for p in incomplete_checkpoints(output_dir) if checkpoint is None or p.name > checkpoint.name]
    skipped = f"incomplete checkpoint(s) {', '.join(str(p) for p in incomplete)} skipped (interrupted saves)"
    if checkpoint is None:
        where = checkpoint_root(output_dir)
        if incomplete:
            return (
                f"WARNING: resume_from=latest found no complete checkpoint in {where}; {skipped}; "
                "training starts from step 0"
            )
        return f"resume_from=latest: no checkpoint in {where} yet; training starts from step 0"
    if incomplete:
        return f"WARNING: resume_from=latest: {skipped}; resuming from the newest complete one, {checkpoint}"
    return None


def read_trainer_state(checkpoint: Path) -> dict:
    return json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))


def read_run_config_of(checkpoint: Path) -> dict:
    """The resolved run config saved with a checkpoint ({} if it has none or it is unreadable)."""
    try:
        loaded = yaml.safe_load((checkpoint / "run_config.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return loaded if isinstance(loaded, dict) else {}
