"""One sub-package per model family (configuration_<family>.py + modeling_<family>.py)."""
