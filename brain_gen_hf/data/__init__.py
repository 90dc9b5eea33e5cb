"""MEG/EEG data pipeline: mne readers -> preprocessing -> cleaning -> Parquet shards -> windows.

Submodules are imported lazily so `import brain_gen_hf.data` stays cheap (no mne/datasets/torch).
"""

from __future__ import annotations

from ..lazy import lazy_exports

_LAZY = {
    "BuildConfig": "config",
    "CardConfig": "config",
    "MuLawConfig": "config",
    "ShardConfig": "config",
    "PreprocessingConfig": "preprocessing",
    "preprocess_raw": "preprocessing",
    "gesd_outliers": "preprocessing",
    "NormalizationConfig": "normalization",
    "normalize_recording": "normalization",
    "CleaningConfig": "cleaning",
    "clean_recording": "cleaning",
    "ChannelMetadata": "channels",
    "channel_metadata": "channels",
    "RecordingSource": "readers",
    "discover_recordings": "readers",
    "read_recording": "readers",
    "process_recording": "pipeline",
    "ProcessedRecording": "pipeline",
    "DatasetBuilder": "shards",
    "build_dataset": "shards",
    "push_dataset_to_hub": "shards",
    "segment_features": "shards",
    "SplitConfig": "splits",
    "assign_splits": "splits",
    "WindowConfig": "windows",
    "WindowDataset": "windows",
    "WindowBatch": "windows",
    "StreamingWindowDataset": "windows",
    "build_window_index": "windows",
    "load_segments": "windows",
    "load_window_datasets": "windows",
    "ChannelLayout": "layouts",
    "build_canonical_layout": "layouts",
    "SENSOR_TYPE_IDS": "layouts",
    "ContinuousCollator": "collators",
    "MuLawCollator": "collators",
    "ImageCollator": "collators",
    "CodesCollator": "collators",
    "ClassLabelCollator": "collators",
    "grid_indices": "collators",
    "pretokenize_dataset": "pretokenize",
    "load_token_datasets": "pretokenize",
    "SourceSpaceConfig": "source_space",
    "project_to_parcels": "source_space",
    "check_template": "source_space",
    "coregister_to_template": "coregistration",
    "EventsConfig": "events",
    "layout_recordings": "discovery",
    "simulate_meg_raw": "simulate",
    "SimulationConfig": "simulate",
}


__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
