"""Evaluation of brain models: rollouts of the model and of baselines, per-window metrics, the divergence and
sliding-window analyses with statistics, the token summary, and the report (`evaluate`).

Imports are lazy: `import brain_gen_hf.evaluation` loads neither scipy nor matplotlib nor torch.
"""

from ..lazy import lazy_exports

_LAZY = {
    "EvaluationConfig": "config",
    "EvaluationReport": "report",
    "evaluate": "runner",
    "model_index": "report",
    "push_report_to_hub": "report",
    "to_json": "report",
}
__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
