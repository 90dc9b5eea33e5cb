"""End to end: the README's first command with reduced steps (SIMULATED data, CPU, offline)."""

import json
import subprocess
import sys

import torch


def test_quickstart_outputs_exist_load_and_are_finite(tmp_path):
    output = tmp_path / "qs"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "brain_gen_hf.cli",
            "quickstart",
            "--output",
            str(output),
            "--tokenizer-steps",
            "3",
            "--lm-steps",
            "3",
            "--batch-size",
            "4",
            "--eval-config",
            "tiny",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "SIMULATED" in result.stdout

    summary = json.loads((output / "summary.json").read_text())
    assert summary["data"] == "SIMULATED MEG"
    for key in ("tokenizer_final_train_loss", "lm_final_train_loss", "forecast_mse"):
        assert torch.isfinite(torch.tensor(summary[key])), key
    for plot in ("forecast.png", "psd.png"):
        assert (output / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the evaluation on the held-out test split: one verdict line per baseline, printed and in report.md
    assert summary["evaluation"]["split"] == "test" and summary["evaluation"]["contexts"] == 6
    for baseline in ("zero", "mean", "persistence", "ar"):
        assert f"vs {baseline}: " in result.stdout
        assert f"- vs {baseline}: " in (output / "evaluation" / "report.md").read_text()

    from datasets import load_dataset
    from transformers import AutoModel

    import brain_gen_hf  # noqa: F401

    rows = load_dataset(str(output / "dataset"), split="train")
    assert len(rows) > 0 and "SIMULATED" in (output / "dataset" / "README.md").read_text().upper()

    tokenizer = AutoModel.from_pretrained(output / "tokenizer" / "final_model").eval()
    lm = AutoModel.from_pretrained(output / "lm" / "final_model").eval()
    assert type(lm).__name__ == "FlatGPTEmbedsRVQForCausalLM"
    for folder in ("tokenizer", "lm"):
        card = (output / folder / "final_model" / "README.md").read_text()
        assert "library_name: brain_gen_hf" in card and "Training data" in card
    channels = tokenizer.config.num_sensors
    signal = torch.randn(1, channels, lm.config.input_shape[0])
    with torch.no_grad():
        codes = tokenizer.encode(signal).codes
        out = lm(input_values=signal)
    assert codes.dtype == torch.int64 and torch.isfinite(out.logits).all() and torch.isfinite(out.loss)
    assert torch.equal(lm.tokenizer.encode(signal).codes, codes)  # the LM holds the trained tokenizer
