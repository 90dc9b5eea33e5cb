"""Deterministic train/validation/test assignment of recordings (spec 2.6).

Reproduces the reference: Python's `random.Random(seed)` shuffles, consumed sequentially over the
datasets in order, banker's rounding of the split sizes, and a lone item goes to train.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from dataclasses import dataclass

SPLIT_NAMES = ("train", "validation", "test")


@dataclass
class SplitConfig:
    """`strategy`: "session" (per recording), "subject" (all of a subject's recordings together)
    or "dataset" (every other dataset trains; `heldout_dataset`'s subjects split val/test 50/50)."""

    strategy: str = "session"
    val_ratio: float = 0.1
    test_ratio: float = 0.1
    seed: int = 42
    heldout_dataset: str | None = None

    def __post_init__(self):
        self.strategy = self.strategy.lower()
        if self.strategy not in ("session", "subject", "dataset"):
            raise ValueError(f"split strategy must be session/subject/dataset, got {self.strategy!r}")
        if not (0 <= self.val_ratio <= 1 and 0 <= self.test_ratio <= 1 and self.val_ratio + self.test_ratio <= 1):
            raise ValueError(
                f"val_ratio ({self.val_ratio}) and test_ratio ({self.test_ratio}) must be in [0, 1] "
                "and sum to at most 1"
            )
        if self.strategy == "dataset" and not self.heldout_dataset:
            raise ValueError("split strategy 'dataset' needs heldout_dataset")


def split_items(items: list, val_ratio: float, test_ratio: float, rng: random.Random):
    """Shuffle `items` with `rng` and cut into (train, val, test) lists (reference `_split_sessions`)."""
    items = list(items)
    rng.shuffle(items)
    n = len(items)
    n_val = min(round(n * val_ratio), n)
    n_test = min(round(n * test_ratio), n - n_val)
    if n - n_val - n_test <= 0 and n > 0:
        if n_val > 0:
            n_val -= 1
        else:
            n_test -= 1
    n_train = n - n_val - n_test
    return items[:n_train], items[n_train : n_train + n_val], items[n_train + n_val :]


def assign_splits(recordings, config: SplitConfig) -> dict[tuple[str, str], str]:
    """Map each `(dataset, session)` to "train" / "validation" / "test".

    `recordings`: iterable of `(dataset, session, subject)`; dataset order is the order of first
    appearance, sessions are sorted within a dataset, so the result depends only on the set of
    recordings and the seed.
    """
    by_dataset: OrderedDict[str, dict[str, str]] = OrderedDict()
    for dataset, session, subject in recordings:
        by_dataset.setdefault(dataset, {})[session] = subject or session
    rng = random.Random(config.seed)
    assignment: dict[tuple[str, str], str] = {}

    def by_subject(dataset: str, sessions: dict[str, str], subjects: list[str], split: str):
        chosen = set(subjects)
        for session in sorted(sessions):
            if sessions[session] in chosen:
                assignment[(dataset, session)] = split

    if config.strategy == "dataset":
        if config.heldout_dataset not in by_dataset:
            raise KeyError(f"heldout_dataset {config.heldout_dataset!r} is not among the datasets {list(by_dataset)}")
        if len(by_dataset) < 2:
            raise ValueError("split strategy 'dataset' needs at least two datasets")
    for dataset, sessions in by_dataset.items():
        if config.strategy == "session":
            parts = split_items(sorted(sessions), config.val_ratio, config.test_ratio, rng)
            for split, names in zip(SPLIT_NAMES, parts):
                for name in names:
                    assignment[(dataset, name)] = split
        elif config.strategy == "subject":
            subjects = sorted(set(sessions.values()))
            for split, names in zip(SPLIT_NAMES, split_items(subjects, config.val_ratio, config.test_ratio, rng)):
                by_subject(dataset, sessions, names, split)
        elif dataset != config.heldout_dataset:
            for name in sessions:
                assignment[(dataset, name)] = "train"
    if config.strategy == "dataset":
        sessions = by_dataset[config.heldout_dataset]
        subjects = sorted(set(sessions.values()))
        rng.shuffle(subjects)
        half = len(subjects) // 2
        by_subject(config.heldout_dataset, sessions, subjects[:half], "validation")
        by_subject(config.heldout_dataset, sessions, subjects[half:], "test")
    expected = {(d, s) for d, sessions in by_dataset.items() for s in sessions}
    assert set(assignment) == expected, "split assignment must cover every recording exactly once"
    return assignment
