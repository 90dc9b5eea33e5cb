"""Per-task training metrics, named by each family's `DataContract.metrics`.

A metrics function takes `(model, batch, outputs)` (the unwrapped model, the batch `model(**batch)` read, its
output) and returns `{name: 0-d tensor}`; the trainer averages them over the logged steps (prefix `train/`) and
over the validation batches (prefix `val/`). The trainer calls them without gradients. Nothing heavy is imported
here, so a family's `training_<family>.py` may name them (see `contract.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def _field(outputs, name: str):
    return outputs.get(name) if hasattr(outputs, "get") else getattr(outputs, name, None)


def next_token_accuracy(model, batch: dict, outputs) -> dict[str, torch.Tensor]:
    """Fraction of next tokens the argmax of the logits gets right (position p scores token p + block, as the
    loss does; `-100` labels are skipped). The labels are the batch's, or the codes the model read from a signal
    (`outputs.input_ids`)."""
    logits = _field(outputs, "logits")
    labels = batch.get("labels")
    if labels is None:
        labels = _field(outputs, "input_ids")
    if logits is None or labels is None or logits.shape[:-1] != labels.shape:
        return {}
    block = getattr(model, "prediction_block", 1)
    predicted = logits[:, :-block].argmax(-1)
    targets = labels[:, block:]
    scored = targets != -100
    correct = (predicted == targets) & scored
    return {"token_accuracy": correct.sum().float() / scored.sum().clamp_min(1)}


# A brain tokenizer's objective terms (pipeline spec 3.7): mae = the L1 time loss, pcc = Pearson correlation of
# reconstruction and input, amp / phi = the amplitude and phase spectrum losses, commit = RVQ commitment, ppl = code
# perplexity.
_TOKENIZER_TERMS = {"mae": "l1", "pcc": "pcc", "amp": "amp", "phi": "phi", "commit": "commit", "ppl": "ppl"}


def reconstruction_metrics(model, batch: dict, outputs) -> dict[str, torch.Tensor]:
    """The reconstruction terms a brain tokenizer's forward reports (those it returns)."""
    found = {name: _field(outputs, field) for name, field in _TOKENIZER_TERMS.items()}
    return {name: value.detach().float().mean() for name, value in found.items() if value is not None}


def classification_accuracy(model, batch: dict, outputs) -> dict[str, torch.Tensor]:
    """Fraction of windows whose argmax class is the label."""
    logits, labels = _field(outputs, "logits"), batch.get("labels")
    if logits is None or labels is None:
        return {}
    return {"accuracy": (logits.argmax(-1) == labels).float().mean()}


class MetricAverager:
    """Running means of metric dicts (tensors stay on their device until `means()`)."""

    def __init__(self):
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}

    def add(self, metrics: dict[str, torch.Tensor]) -> None:
        for name, value in metrics.items():
            value = value.detach().float()
            self.sums[name] = self.sums[name] + value if name in self.sums else value
            self.counts[name] = self.counts.get(name, 0) + 1

    def means(self, accelerator=None) -> dict[str, float]:
        out = {}
        for name in sorted(self.sums):
            mean = self.sums[name] / self.counts[name]
            if accelerator is not None:
                mean = accelerator.reduce(mean, "mean")
            out[name] = float(mean)
        return out
