"""Canonical channel layout shared by several datasets (spec 2.4, keyed more safely).

Channels from different recordings are the same canonical channel when they have
- the same name, for parcels and for channels without a position (EEG without montage), or
- the same type and the same 3-D position rounded to 0.1 mm, for sensors (names differ between
  e.g. `MEG0111` and `MEG 0111`, positions do not). Without 3-D positions, the 2-D layout is used.
The layout is the union in order of first appearance; recordings lacking a channel get zeros
there and `channel_mask` False.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Fixed ids so that datasets built separately agree (BrainOmni embeds 3 types: mag, grad, eeg).
SENSOR_TYPE_IDS = {"mag": 0, "grad": 1, "eeg": 2, "parcel": 0, "seeg": 3, "ecog": 4, "dbs": 5}
METADATA_COLUMNS = ("dataset", "session", "sfreq", "ch_names", "ch_types", "pos_3d", "ori_3d", "pos_2d")
_DECIMALS = 4


def channel_key(name: str, ch_type: str, pos_3d, pos_2d) -> tuple:
    """Identity of one channel across recordings (see module docstring)."""
    if ch_type == "parcel":
        return ("name", name)
    pos_3d = np.asarray(pos_3d, dtype=np.float64)
    if np.abs(pos_3d).sum() > 0:
        return ("pos3d", ch_type, tuple(np.round(pos_3d, _DECIMALS).tolist()))
    pos_2d = np.asarray(pos_2d, dtype=np.float64)
    if np.abs(pos_2d).sum() > 0:
        return ("pos2d", ch_type, tuple(np.round(pos_2d, _DECIMALS).tolist()))
    return ("name", name)


def recording_keys(names, types, pos_3d, pos_2d) -> list[tuple]:
    """`channel_key` of every channel of a recording. Channels sharing a key (the two planar
    gradiometers of one Neuromag site sit at one position) are told apart by their cleaned name."""
    from .channels import _clean_name

    pos_3d = np.asarray(pos_3d, dtype=np.float64).reshape(-1, 3)
    pos_2d = np.asarray(pos_2d, dtype=np.float64).reshape(-1, 2)
    keys = [channel_key(str(n), str(t), pos_3d[i], pos_2d[i]) for i, (n, t) in enumerate(zip(names, types))]
    counts: dict[tuple, int] = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    return [key + (_clean_name(str(n)),) if counts[key] > 1 else key for key, n in zip(keys, names)]


@dataclass
class ChannelLayout:
    """The canonical channels: rows of every batch, in order."""

    names: list[str]
    types: list[str]
    pos_2d: np.ndarray  # (C, 2) float32
    pos_3d: np.ndarray  # (C, 3) float32
    ori_3d: np.ndarray  # (C, 3) float32
    sfreq: float
    # (dataset, session) -> int64 canonical index of each of the recording's channels
    recording_indices: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    keys: list[tuple] = field(default_factory=list)  # channel_key of each canonical channel

    def __len__(self) -> int:
        return len(self.names)

    @property
    def sensor_type_ids(self) -> np.ndarray:
        unknown = sorted({t for t in self.types if t not in SENSOR_TYPE_IDS})
        extra = {t: max(SENSOR_TYPE_IDS.values()) + 1 + i for i, t in enumerate(unknown)}
        return np.array([SENSOR_TYPE_IDS.get(t, extra.get(t)) for t in self.types], dtype=np.int64)

    @property
    def pos_ori(self) -> np.ndarray:
        """(C, 6) = 3-D position ++ orientation, the input of 3-D sensor embeddings."""
        return np.concatenate([self.pos_3d, self.ori_3d], axis=1).astype(np.float32)

    def indices_for(self, dataset: str, session: str) -> np.ndarray:
        try:
            return self.recording_indices[(dataset, session)]
        except KeyError:
            raise KeyError(
                f"recording {dataset}/{session} is not part of this layout; build the layout from "
                "the same rows you load windows from"
            ) from None

    def match_row(self, row) -> np.ndarray:
        """Canonical indices of a row's channels (known recording, else matched by channel key)."""
        known = self.recording_indices.get((str(row["dataset"]), str(row["session"])))
        if known is not None:
            return known
        lookup = {key: i for i, key in enumerate(self.keys)}
        found, missing = [], []
        keys = recording_keys(row["ch_names"], row["ch_types"], row["pos_3d"], row["pos_2d"])
        for name, key in zip(row["ch_names"], keys):
            j = lookup.get(key)
            (missing.append(str(name)) if j is None else found.append(j))
        if missing:
            raise ValueError(
                f"recording {row['dataset']}/{row['session']} has {len(missing)} channels outside the "
                f"layout ({', '.join(missing[:5])}...); build the layout over every dataset you load, "
                "e.g. build_canonical_layout(ds_a, ds_b)"
            )
        indices = np.array(found, dtype=np.int64)
        self.recording_indices[(str(row["dataset"]), str(row["session"]))] = indices
        return indices

    def to_dict(self) -> dict:
        return {
            "names": self.names,
            "types": self.types,
            "pos_2d": self.pos_2d.tolist(),
            "pos_3d": self.pos_3d.tolist(),
            "ori_3d": self.ori_3d.tolist(),
            "sfreq": self.sfreq,
        }


def _first_row_per_recording(segments):
    """Metadata of one row per recording, without decoding the `data` column."""
    import datasets

    if isinstance(segments, datasets.Dataset):
        table = segments.select_columns(["dataset", "session"]).with_format("arrow")[:]
        keys = [f"{d}\x00{s}" for d, s in zip(table.column("dataset").to_pylist(), table.column("session").to_pylist())]
        _, first = np.unique(np.array(keys, dtype=object), return_index=True)
        meta = segments.select_columns(list(METADATA_COLUMNS))
        for row in np.sort(first):
            yield meta[int(row)]
        return
    if hasattr(segments, "select_columns"):  # datasets.IterableDataset: reads only these columns
        segments = segments.select_columns(list(METADATA_COLUMNS))
    seen = set()
    for row in segments:
        key = (row["dataset"], row["session"])
        if key not in seen:
            seen.add(key)
            yield row


def build_canonical_layout(*sources) -> ChannelLayout:
    """Union layout over every recording in `sources` (datasets.Dataset / IterableDataset /
    iterables of row dicts with the metadata columns). All recordings must share one `sfreq`."""
    entries: dict[tuple, int] = {}
    names: list[set] = []
    types: list[str] = []
    sums = {"pos_2d": [], "pos_3d": [], "ori_3d": []}
    counts: list[int] = []
    recording_indices = {}
    sfreq = None
    for source in sources:
        for row in _first_row_per_recording(source):
            row_sfreq = float(row["sfreq"])
            if sfreq is None:
                sfreq = row_sfreq
            elif not np.isclose(row_sfreq, sfreq, atol=1e-6):
                raise ValueError(
                    f"recording {row['dataset']}/{row['session']} has sfreq {row_sfreq:g} Hz, others "
                    f"{sfreq:g} Hz; every recording of a layout must share one sampling rate"
                )
            pos_2d, pos_3d, ori_3d = (
                np.asarray(row[k], dtype=np.float64).reshape(-1, w)
                for k, w in (("pos_2d", 2), ("pos_3d", 3), ("ori_3d", 3))
            )
            indices = np.empty(len(row["ch_names"]), dtype=np.int64)
            keys = recording_keys(row["ch_names"], row["ch_types"], pos_3d, pos_2d)
            for i, (name, ch_type, key) in enumerate(zip(row["ch_names"], row["ch_types"], keys)):
                name, ch_type = str(name), str(ch_type)
                if key not in entries:
                    entries[key] = len(types)
                    names.append(set())
                    types.append(ch_type)
                    counts.append(0)
                    for k in sums:
                        sums[k].append(np.zeros(2 if k == "pos_2d" else 3))
                j = entries[key]
                names[j].add(name)
                counts[j] += 1
                sums["pos_2d"][j] += pos_2d[i]
                sums["pos_3d"][j] += pos_3d[i]
                sums["ori_3d"][j] += ori_3d[i]
                indices[i] = j
            if len(set(indices.tolist())) != len(indices):
                raise ValueError(
                    f"recording {row['dataset']}/{row['session']} has two channels at the same "
                    "canonical key (same type and position); positions must be distinct"
                )
            recording_indices[(row["dataset"], row["session"])] = indices
    if sfreq is None:
        raise ValueError("cannot build a channel layout from zero recordings")
    count = np.array(counts, dtype=np.float64)[:, None]
    ori = np.array(sums["ori_3d"]) / count
    norm = np.linalg.norm(ori, axis=1, keepdims=True)
    ori = np.divide(ori, norm, out=np.zeros_like(ori), where=norm > 0)
    return ChannelLayout(
        names=[min(n) for n in names],
        types=types,
        pos_2d=(np.array(sums["pos_2d"]) / count).astype(np.float32),
        pos_3d=(np.array(sums["pos_3d"]) / count).astype(np.float32),
        ori_3d=ori.astype(np.float32),
        sfreq=sfreq,
        recording_indices=recording_indices,
        keys=list(entries),
    )
