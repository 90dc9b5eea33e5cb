"""What a run shows: per-task metrics and the gradient norm, the best-by-validation checkpoint, schedules by name,
test mode (macro-F1 and confusion matrix) and the batch-size finder. Tiny runs on SIMULATED MEG."""

import functools
import json
from types import SimpleNamespace

import pytest
import torch

from brain_gen_hf.training.arguments import parse_run_config
from brain_gen_hf.training.checkpointing import list_checkpoints, read_trainer_state, resolve_resume
from brain_gen_hf.training.metrics import next_token_accuracy, reconstruction_metrics
from brain_gen_hf.training.optim import build_scheduler
from brain_gen_hf.training.test_mode import macro_f1
from brain_gen_hf.training.trainer import train
from tests.test_training import run_config
from tests.test_training_tasks import BRAINTOKMIX


def test_next_token_accuracy_scores_position_p_against_token_p_plus_one():
    logits = torch.full((1, 4, 3), -1.0)
    for position, best in enumerate([1, 2, 0, 2]):
        logits[0, position, best] = 1.0  # predictions for tokens 1..3: 1, 2, 0 (the last position predicts nothing)
    labels = torch.tensor([[0, 1, 2, 2]])  # tokens 1..3 are 1, 2, 2: two of three right
    metrics = next_token_accuracy(SimpleNamespace(prediction_block=1), {"labels": labels}, {"logits": logits})
    assert metrics["token_accuracy"].item() == pytest.approx(2 / 3)
    labels[0, 3] = -100  # ignored positions are not scored
    metrics = next_token_accuracy(SimpleNamespace(prediction_block=1), {"labels": labels}, {"logits": logits})
    assert metrics["token_accuracy"].item() == 1.0


def test_macro_f1_by_hand():
    confusion = torch.tensor([[2, 1, 0], [0, 3, 0], [0, 0, 0]])  # class 2 never occurs: left out of the mean
    assert macro_f1(confusion) == pytest.approx((4 / 5 + 6 / 7) / 2)


def test_tokenizer_run_logs_reconstruction_metrics_grad_norm_and_keeps_the_best_checkpoint(tiny_meg_dataset, tmp_path):
    config = dict(
        task="brain_tokenizer",
        model_type="braintokmix",
        model_config=BRAINTOKMIX,
        dataset=str(tiny_meg_dataset),
        example_seconds=0.64,
        batch_size=2,
        eval_every=1,
        max_eval_batches=1,
        output_dir=str(tmp_path),
        max_steps=3,
        learning_rate=3e-2,
        log_every=1,
        keep_last=1,
        log_with="tensorboard",
        progress_bar=False,
    )
    result = train(*parse_run_config(config))
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "logs" / "brain_gen_hf"))
    events.Reload()
    for tag in ("train/grad_norm", "train/pcc", "val/pcc", "val/phi", "train/weight_decay"):
        assert [e.step for e in events.Scalars(tag)] == [1, 2, 3], tag
    assert events.Scalars("val/pcc")[0].value == pytest.approx(result.eval_metrics[1]["pcc"])
    for step in range(1, 4):
        logged = result.train_metrics[step]
        assert {"train/mae", "train/pcc", "train/amp", "train/phi", "train/commit", "train/grad_norm"} <= set(logged)
        assert -1.0 <= logged["train/pcc"] <= 1.0 and logged["train/grad_norm"] > 0
        assert {"loss", "mae", "pcc", "amp", "phi"} <= set(result.eval_metrics[step])
    best_step = min(result.eval_losses, key=result.eval_losses.get)
    best = tmp_path / "checkpoints" / "best"
    assert result.best_checkpoint == best and read_trainer_state(best)["step"] == best_step
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-000003"]  # the last N, besides the best
    assert resolve_resume(str(best), tmp_path) == best
    if best_step != 3:  # the best weights are the best step's, not the last
        from transformers import AutoModel

        kept, last = AutoModel.from_pretrained(best / "model"), AutoModel.from_pretrained(result.final_model_dir)
        assert any(not torch.equal(a, b) for a, b in zip(kept.parameters(), last.parameters(), strict=True))


def test_reconstruction_metrics_are_the_tokenizers_own_terms():
    outputs = {"l1": torch.tensor(0.5), "pcc": torch.tensor(0.25), "ppl": torch.tensor(3.0)}
    assert {k: v.item() for k, v in reconstruction_metrics(None, {}, outputs).items()} == {
        "mae": 0.5,
        "pcc": 0.25,
        "ppl": 3.0,
    }


def _lrs(schedule: str, steps: int, **settings) -> list[float]:
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    defaults = dict(lr_schedule=schedule, lr_scheduler_kwargs=None, warmup_steps=0, max_steps=10, min_lr_ratio=0.0)
    args = SimpleNamespace(**{**defaults, **settings})
    scheduler = build_scheduler(optimizer, args)
    out = []
    for _ in range(steps):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out


def test_schedules_by_name_torch_classes_and_transformers_names():
    # torch StepLR (halve every 2 steps) after the reference's 2-step warmup (1/2, then 1)
    step_lr = _lrs("StepLR", 6, warmup_steps=2, lr_scheduler_kwargs={"step_size": 2, "gamma": 0.5})
    assert step_lr == pytest.approx([0.5, 1.0, 1.0, 1.0, 0.5, 0.5])
    # transformers' "linear": warmup 0 -> 1 over 2 steps, then linear decay to 0 at max_steps (10)
    linear = _lrs("linear", 5, warmup_steps=2)
    assert linear == pytest.approx([0.0, 0.5, 1.0, 7 / 8, 6 / 8])
    # the reference's names keep their meaning: warmup min(1, (s + 1) / warmup), then constant
    assert _lrs("linear_warmup", 4, warmup_steps=2) == pytest.approx([0.5, 1.0, 1.0, 1.0])


@pytest.mark.parametrize(
    "name, kwargs, match",
    [
        ("NoSuchSchedule", None, "unknown lr_schedule"),
        ("ReduceLROnPlateau", None, "validation metric"),
        ("cosine", {"T_max": 3}, "takes no lr_scheduler_kwargs"),
    ],
)
def test_bad_schedule_names_fail_when_the_config_is_read(name, kwargs, match, tmp_path):
    config = {"task": "wavenet", "dataset": "x", "lr_schedule": name, "lr_scheduler_kwargs": kwargs}
    with pytest.raises(ValueError, match=match):
        parse_run_config({k: v for k, v in config.items() if v is not None})


def test_torch_schedule_resumes_exactly(tiny_meg_dataset, tmp_path):
    schedule = dict(lr_schedule="StepLR", lr_scheduler_kwargs={"step_size": 2, "gamma": 0.5}, max_steps=4)
    config = run_config(tiny_meg_dataset, tmp_path / "full", checkpoint_every=2, **schedule)
    full = train(*parse_run_config(config))
    config["output_dir"] = str(tmp_path / "split")
    train(*parse_run_config(config), stop_after_steps=2)
    resumed = train(*parse_run_config({**config, "resume_from": "latest"}))
    assert resumed.losses == full.losses


def test_test_mode_writes_macro_f1_and_the_confusion_matrix(tiny_meg_dataset, tmp_path):
    import yaml

    from training_scripts.train import main

    config = dict(
        task="classifier",
        model_type="classifier_quantized",
        model_config={
            "base_config": {
                "model_type": "wavenet_full_channel",
                "quant_levels": 64,
                "quant_emb": 8,
                "residual_channels": 8,
                "dilation_channels": 8,
                "skip_channels": 8,
                "head_channels": 8,
                "dilations": [1, 2],
            }
        },
        label_column="subject",
        dataset=str(tiny_meg_dataset),
        example_seconds=0.64,
        batch_size=4,
        eval_split=None,
        output_dir=str(tmp_path / "run"),
        max_steps=2,
        learning_rate=1e-3,
        log_with="none",
        progress_bar=False,
    )
    train(*parse_run_config(config))
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["--config", str(path), "--mode", "test", "--split", "validation", "--max_eval_batches=3"]) == 0
    report = json.loads((tmp_path / "run" / "test" / "metrics.json").read_text())
    confusion = torch.tensor(report["confusion_matrix"])
    assert confusion.shape == (3, 3) and int(confusion.sum()) == 3 * 4  # three batches of four windows
    assert report["labels"][0] == "sub-sim01" and 0.0 <= report["macro_f1"] <= 1.0
    assert report["macro_f1"] == pytest.approx(macro_f1(confusion))
    assert 0.0 <= report["accuracy"] <= 1.0
    assert (tmp_path / "run" / "test" / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_batch_size_finder_lowers_the_batch_until_a_step_fits(tiny_meg_dataset, tmp_path):
    from transformers import AutoConfig, AutoModel

    import brain_gen_hf  # noqa: F401
    from tests.test_training import WAVENET

    model = AutoModel.from_config(
        AutoConfig.for_model("wavenet_full_channel", in_channels=102, sampling_rate=100.0, **WAVENET)
    )
    forward, seen = model.forward, []

    @functools.wraps(forward)
    def limited_memory(*args, **kwargs):
        size = next(v for v in kwargs.values() if isinstance(v, torch.Tensor)).shape[0]
        seen.append(size)
        if size > 2:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")  # what accelerate looks for
        return forward(*args, **kwargs)

    model.forward = limited_memory
    config = run_config(tiny_meg_dataset, tmp_path, batch_size=4, max_steps=1, auto_find_batch_size=True)
    result = train(*parse_run_config(config), model=model)
    assert result.batch_size == 2 and sorted(set(seen), reverse=True) == [4, 3, 2]  # accelerate: x 0.9, rounded down
    assert read_trainer_state(list_checkpoints(tmp_path)[-1])["step"] == 1
