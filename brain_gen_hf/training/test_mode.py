"""Test mode: a trained model scored on a held-out split with its task's loss and metrics.

Classification outputs (`logits (B, K)` against integer `labels (B,)`) add the macro-F1 and the confusion matrix,
saved as `<output_dir>/test/metrics.json` and `<output_dir>/test/confusion_matrix.png`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .arguments import DataArguments, ModelArguments, RunArguments
from .checkpointing import resolve_resume
from .curriculum import final_model_folder
from .metrics import MetricAverager
from .tasks import resolve_contract
from .training_data import load_training_data


def trained_model_folder(model_args: ModelArguments, run_args: RunArguments) -> Path:
    """`pretrained`, else `resume_from` (a checkpoint's model or a final model folder), else the run's
    `final_model`."""
    if model_args.pretrained:
        return Path(model_args.pretrained)
    if run_args.resume_from:
        folder = final_model_folder(run_args.resume_from)
        return folder if folder is not None else resolve_resume(run_args.resume_from, run_args.output_dir) / "model"
    folder = Path(run_args.output_dir) / "final_model"
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"no trained model at {folder}: train first, or name one with `pretrained` or `resume_from`"
        )
    return folder


def macro_f1(confusion: torch.Tensor) -> float:
    """Mean F1 over the classes that occur as a label or a prediction (`confusion[label, prediction]`)."""
    tp = confusion.diag().double()
    fp = confusion.sum(0).double() - tp
    fn = confusion.sum(1).double() - tp
    present = (tp + fp + fn) > 0
    f1 = 2 * tp / (2 * tp + fp + fn).clamp_min(1)
    return float(f1[present].mean()) if present.any() else 0.0


def save_confusion_matrix_png(confusion: torch.Tensor, labels: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = max(3.0, 0.6 * len(labels) + 1.5)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(confusion.numpy(), cmap="Blues")
    ax.set(xticks=range(len(labels)), yticks=range(len(labels)), xlabel="predicted", ylabel="true")
    ax.set_xticklabels(labels, rotation=45, ha="right")
    ax.set_yticklabels(labels)
    peak = int(confusion.max()) if confusion.numel() else 0
    for i, row in enumerate(confusion.tolist()):
        for j, count in enumerate(row):
            ax.text(j, i, str(count), ha="center", va="center", color="white" if count > peak / 2 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


@torch.no_grad()
def run_test(
    model_args: ModelArguments, data_args: DataArguments, run_args: RunArguments, *, split: str = "test"
) -> dict:
    """Score the trained model on `split`; returns (and writes to `<output_dir>/test/metrics.json`) the mean loss,
    the task's metrics and, for classifiers, `macro_f1` and `confusion_matrix`."""
    from transformers import AutoConfig

    from ..registration import model_class_for

    contract = resolve_contract(model_args.task, model_args.model_type)
    folder = trained_model_folder(model_args, run_args)
    model = model_class_for(AutoConfig.from_pretrained(folder).model_type).from_pretrained(folder)
    splits, data = load_training_data(data_args, contract.task)
    if split not in splits:
        raise ValueError(f"dataset {data_args.dataset} has no split {split!r} (has {sorted(splits)})")
    collate = contract.make_collator(data, model)
    loader = torch.utils.data.DataLoader(
        splits[split], batch_size=data_args.eval_batch_size or data_args.batch_size, shuffle=False, collate_fn=collate
    )
    model.eval()
    total, batches, averager = 0.0, 0, MetricAverager()
    predictions, targets = [], []
    for i, batch in enumerate(loader):
        if data_args.max_eval_batches is not None and i >= data_args.max_eval_batches:
            break
        out = model(**batch)
        total, batches = total + float(out[contract.loss]), batches + 1
        if contract.metrics is not None:
            averager.add(contract.metrics(model, batch, out))
        logits, labels = out.get("logits"), batch.get("labels")
        if logits is not None and labels is not None and logits.ndim == 2 and labels.ndim == 1:
            predictions.append(logits.argmax(-1))
            targets.append(labels)
    report = {"split": split, "model": str(folder), "batches": batches, "loss": total / max(1, batches)}
    report.update(averager.means())
    out_dir = Path(run_args.output_dir) / "test"
    out_dir.mkdir(parents=True, exist_ok=True)
    if predictions:
        num_classes = model.config.num_labels
        predicted, true = torch.cat(predictions), torch.cat(targets)
        confusion = torch.zeros(num_classes, num_classes, dtype=torch.long)
        confusion.index_put_((true, predicted), torch.ones_like(true), accumulate=True)
        labels = [str(model.config.id2label[k]) for k in range(num_classes)]
        report.update(macro_f1=macro_f1(confusion), confusion_matrix=confusion.tolist(), labels=labels)
        save_confusion_matrix_png(confusion, labels, out_dir / "confusion_matrix.png")
    (out_dir / "metrics.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    return report
