"""The long-context curriculum through the trainer: the shipped tiny three-phase configs (1.28 s -> 2.56 s ->
5.12 s) on SIMULATED MEG. Phase 2 starts from phase 1's weights and optimiser state and continues exactly as a
hand-written AdamW continuation does; phase 3 switches on token corruption and validates before training.

Every phase trains on its whole training split in one batch, so a step's batch does not depend on the data order.
"""

from pathlib import Path

import pytest
import torch

from brain_gen_hf.training.arguments import load_run_config, parse_run_config
from brain_gen_hf.training.trainer import train

CONFIGS = Path(__file__).resolve().parents[1] / "training_scripts" / "configs"
CHANNELS = 102
TOKENIZER = {  # one 1.28 s window at 100 Hz, the context of phase 1
    "window_length": 128,
    "n_filters": 4,
    "ratios": [2, 2],
    "n_dim": 8,
    "n_neuro": 2,
    "codebook_dim": 4,
    "codebook_size": 16,
    "num_quantizers": 2,
    "lstm_layers": 0,
    "n_residual_layers": 1,
}


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    from transformers import AutoModel

    from brain_gen_hf.models.braintokmix.configuration_braintokmix import BrainTokMixConfig

    torch.manual_seed(0)
    tokenizer = AutoModel.from_config(BrainTokMixConfig(num_sensors=CHANNELS, sampling_rate=100.0, **TOKENIZER))
    tokenizer.init_codebooks(torch.randn(4, CHANNELS, 128), seed=1)
    folder = tmp_path_factory.mktemp("curriculum") / "tokenizer"
    tokenizer.save_pretrained(folder)
    return folder


def train_windows(dataset, seconds: float) -> torch.Tensor:
    from brain_gen_hf.data.windows import load_window_datasets

    train_split = load_window_datasets(str(dataset), seconds, 0.0)["train"]
    return torch.from_numpy(train_split.window_array(list(range(len(train_split)))))


def phase(number: int, dataset, tokenizer_dir, root: Path, **overrides):
    config = load_run_config(CONFIGS / f"curriculum_tiny_p{number}.yaml")
    config.update(
        dataset=str(dataset),
        tokenizer=str(tokenizer_dir),
        output_dir=str(root / f"p{number}"),
        batch_size=len(train_windows(dataset, config["example_seconds"])),
        progress_bar=False,
    )
    if number > 1:
        config["resume_from"] = str(root / f"p{number - 1}")
    config.update(overrides)
    return config


def test_three_phase_curriculum_continues_each_phase_from_the_last(tiny_meg_dataset, tokenizer_dir, tmp_path):
    from transformers import AutoModel

    from brain_gen_hf.training.optim import parameter_groups

    p1 = train(*parse_run_config(phase(1, tiny_meg_dataset, tokenizer_dir, tmp_path)))
    assert sorted(p1.losses) == [1, 2, 3, 4]

    config2 = phase(2, tiny_meg_dataset, tokenizer_dir, tmp_path, checkpoint_every=1, keep_last=0, log_every=1)
    p2 = train(*parse_run_config(config2))
    assert sorted(p2.losses) == list(range(1, 9))  # the step count continues; phase 1's history is kept
    assert all(p2.losses[s] == p1.losses[s] for s in p1.losses)

    # Manual continuation: phase 1's last weights, resized to 2.56 s, one AdamW step with phase 1's optimiser state,
    # phase 2's lr (1e-3; warmup is over) and weight decay (0.05), gradients clipped at 1.
    start = tmp_path / "p1" / "checkpoints" / "step-000004"
    model = AutoModel.from_pretrained(start / "model")
    model.resize_context(input_shape=[256, CHANNELS, 2], rope_theta=2e4, max_position_embeddings=256)
    model.train()
    optimizer = torch.optim.AdamW(parameter_groups(model, 0.05), lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    optimizer.load_state_dict(torch.load(start / "state" / "optimizer.bin", weights_only=True))
    assert optimizer.state_dict()["state"][0]["step"] == 4  # phase 1's moments, four steps old
    for group in optimizer.param_groups:
        group["lr"] = 1e-3
        group["weight_decay"] = 0.05 if group["weight_decay"] else 0.0
    windows = train_windows(tiny_meg_dataset, 2.56)
    out = model(input_values=windows)
    assert p2.losses[5] == pytest.approx(out.loss.item(), rel=1e-5)  # phase 2's first step: phase 1's weights
    # The logged metrics of that step: next-code accuracy of the logits and the gradient norm before clipping.
    hits = out.logits[:, :-1].argmax(-1) == out.input_ids[:, 1:]
    assert p2.train_metrics[5]["train/token_accuracy"] == pytest.approx(hits.float().mean().item(), abs=1e-6)
    out.loss.backward()
    norm = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]).norm()
    assert p2.train_metrics[5]["train/grad_norm"] == pytest.approx(norm.item(), rel=1e-4)
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    after = AutoModel.from_pretrained(tmp_path / "p2" / "checkpoints" / "step-000005" / "model")
    for (name, want), have in zip(model.state_dict().items(), after.state_dict().values(), strict=True):
        torch.testing.assert_close(have, want, rtol=1e-5, atol=1e-6, msg=name)

    resized = after.config
    assert resized.input_shape == [256, CHANNELS, 2] and resized.reduced_shape == (64, 2, 2)
    assert resized.backbone_config.rope_parameters["rope_theta"] == 2e4
    assert resized.backbone_config.max_position_embeddings == 256

    p3 = train(*parse_run_config(phase(3, tiny_meg_dataset, tokenizer_dir, tmp_path)))
    assert sorted(p3.losses)[-4:] == [9, 10, 11, 12] and sorted(p3.eval_losses) == [10, 12]
    assert p3.resume_eval_loss is not None and p3.resume_eval_loss > 0
    final = AutoModel.from_pretrained(p3.final_model_dir)
    assert final.config.input_shape == [512, CHANNELS, 2]
    assert final.config.token_corruption["enabled"] and final.config.token_corruption["p_end"] == 0.05
    assert final.config.backbone_config.rope_parameters["rope_theta"] == 4e4


def test_a_preempted_phase_continues_from_its_own_checkpoint(tiny_meg_dataset, tokenizer_dir, tmp_path, capsys):
    """Rerunning a phase config after preemption resumes that phase exactly, not from the earlier phase again."""
    from transformers import AutoModel

    train(*parse_run_config(phase(1, tiny_meg_dataset, tokenizer_dir, tmp_path, max_steps=2, checkpoint_every=0)))
    config2 = phase(2, tiny_meg_dataset, tokenizer_dir, tmp_path, max_steps=5)
    whole = train(*parse_run_config({**config2, "output_dir": str(tmp_path / "whole")}))
    train(*parse_run_config(config2), stop_after_steps=4)
    resumed = train(*parse_run_config(config2))
    assert sorted(resumed.losses) == [1, 2, 3, 4, 5]
    assert resumed.losses == whole.losses

    # Other trainable parameters (the tokenizer too): phase 1's optimiser state cannot fit; the weights carry over.
    capsys.readouterr()
    model_config = {**config2["model_config"], "train_tokenizer": True}
    fresh = phase(2, tiny_meg_dataset, tokenizer_dir, tmp_path, max_steps=3, model_config=model_config)
    result = train(*parse_run_config({**fresh, "output_dir": str(tmp_path / "fresh")}))
    assert "does not fit this run's trainable parameters" in capsys.readouterr().out
    model = AutoModel.from_pretrained(tmp_path / "p1" / "checkpoints" / "step-000002" / "model")
    model.resize_context(input_shape=[256, CHANNELS, 2], rope_theta=2e4, max_position_embeddings=256)
    model.train()
    loss = model(input_values=train_windows(tiny_meg_dataset, 2.56)).loss
    assert result.losses[3] == pytest.approx(loss.item(), rel=1e-5)


def test_resume_settings_are_checked(tmp_path):
    base = {"task": "wavenet", "dataset": "x", "output_dir": str(tmp_path)}
    with pytest.raises(ValueError, match="set resume_from"):
        parse_run_config({**base, "resume_lr": 1e-4})
    with pytest.raises(ValueError, match="resume_context keys"):
        parse_run_config({**base, "resume_from": "x", "resume_context": {"spatial_reduction": [2, 1]}})
    with pytest.raises(ValueError, match="resume_weight_decay"):
        parse_run_config({**base, "resume_from": "x", "resume_weight_decay": -1.0})


def test_resume_context_needs_a_model_that_can_resize(tiny_meg_dataset, tmp_path):
    from tests.test_training import run_config

    train(*parse_run_config(run_config(tiny_meg_dataset, tmp_path / "a", max_steps=1)))
    config = run_config(tiny_meg_dataset, tmp_path / "b", max_steps=2, example_seconds=1.0)
    config.update(resume_from=str(tmp_path / "a"), resume_context={"rope_theta": 1e5})
    with pytest.raises(ValueError, match="resize_context"):
        train(*parse_run_config(config))
