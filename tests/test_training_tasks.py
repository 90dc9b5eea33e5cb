"""Every trainable family goes through the same accelerate trainer: a few steps on SIMULATED MEG each."""

import pytest
import torch

from brain_gen_hf.training.arguments import parse_run_config
from brain_gen_hf.training.trainer import train

CHANNELS = 102  # magnetometers of the simulated helmet
QWEN = {"model_type": "qwen2_5_vl_text", "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
        "intermediate_size": 32, "rms_norm_eps": 1e-6, "rope_theta": 1e4, "max_position_embeddings": 256,
        "rope_scaling": {"rope_type": "default", "mrope_section": 1}}
BRAINTOKMIX = {"window_length": 32, "n_filters": 4, "ratios": [2, 2], "n_dim": 16, "n_neuro": 2, "codebook_dim": 8,
               "codebook_size": 32, "num_quantizers": 2, "lstm_layers": 0, "n_residual_layers": 1}

TASKS = {
    "bendr": dict(model_config={"encoder_h": 8, "enc_width": [3, 2], "enc_downsample": [2, 2],
                                "transformer_layers": 1, "attn_heads": 2, "position_groups": 4, "dropout": 0.0}),
    "braintokmix": dict(task="brain_tokenizer", model_type="braintokmix", model_config=BRAINTOKMIX),
    "brainomni": dict(task="brain_tokenizer", model_type="brainomni_causal_tokenizer",
                      model_config={**BRAINTOKMIX, "n_neuro": 3, "n_head": 2, "num_sensors": CHANNELS}),
    "flatgpt_mix_amplitude": dict(task="flatgpt", model_type="flatgpt_mix", model_config={
        "hidden_size": 16, "backbone_config": QWEN, "input_shape": [64, CHANNELS, 1], "mix_method": "none"}),
    "brainomni_forecast": dict(task="brainomni_forecast", model_config={
        "tokenizer_config": {**BRAINTOKMIX, "n_neuro": 3, "n_head": 2, "num_sensors": CHANNELS},
        "lm_dim": 16, "lm_head": 2, "lm_depth": 1}),
}


@pytest.mark.parametrize("name", sorted(TASKS))
def test_family_trains_through_the_shared_trainer(name, tiny_meg_dataset, tmp_path):
    settings = dict(TASKS[name])
    settings.setdefault("task", name)
    config = dict(dataset=str(tiny_meg_dataset), example_seconds=0.64, overlap_seconds=0.0, batch_size=2,
                  eval_split="validation", eval_every=2, max_eval_batches=2, output_dir=str(tmp_path),
                  max_steps=3, learning_rate=1e-3, log_with="none", progress_bar=False, **settings)
    result = train(*parse_run_config(config))
    assert result.step == 3 and all(torch.isfinite(torch.tensor(v)) for v in result.losses.values())
    assert result.eval_losses and result.final_model_dir is not None

    from transformers import AutoModel

    import brain_gen_hf  # noqa: F401

    model = AutoModel.from_pretrained(result.final_model_dir)
    assert model.config.sampling_rate == 100.0


def test_flatgpt_rvq_trains_with_the_tokenizer_in_the_loop_and_on_pretokenized_codes(tiny_meg_dataset, tmp_path):
    """The paper LM over a frozen tokenizer: signal windows on the fly, then pretokenized shards, same model."""
    from transformers import AutoModel

    import brain_gen_hf  # noqa: F401
    from brain_gen_hf.models.braintokmix.configuration_braintokmix import BrainTokMixConfig
    from brain_gen_hf.training.pretokenize import load_token_datasets, pretokenize_dataset

    torch.manual_seed(0)
    tokenizer = AutoModel.from_config(BrainTokMixConfig(num_sensors=CHANNELS, sampling_rate=100.0, **BRAINTOKMIX))
    tokenizer.init_codebooks(torch.randn(4, CHANNELS, 64), seed=1)
    tokenizer.save_pretrained(tmp_path / "tokenizer")
    lm_config = {"hidden_size": 16, "backbone_config": QWEN}
    common = dict(task="flatgpt", model_type="flatgpt_embeds_rvq", tokenizer=str(tmp_path / "tokenizer"),
                  model_config=lm_config, example_seconds=0.64, overlap_seconds=0.0, batch_size=2, eval_split=None,
                  max_steps=2, log_with="none", progress_bar=False)
    on_the_fly = train(*parse_run_config({**common, "dataset": str(tiny_meg_dataset),
                                          "output_dir": str(tmp_path / "lm_signal")}))

    counts = pretokenize_dataset(tokenizer, str(tiny_meg_dataset), tmp_path / "tokens", example_seconds=0.64,
                                 progress=False)
    tokens = load_token_datasets(tmp_path / "tokens")
    assert counts["train"] == len(tokens["train"])
    first = tokens["train"][0]["codes"]
    from brain_gen_hf.data.windows import load_window_datasets

    window = torch.from_numpy(load_window_datasets(str(tiny_meg_dataset), 0.64, 0.0)["train"].window_array([0]))
    assert torch.equal(first.long(), tokenizer.flatten_codes(tokenizer.encode(window).codes)[0])
    pretokenized = train(*parse_run_config({**common, "dataset": str(tmp_path / "tokens"),
                                            "output_dir": str(tmp_path / "lm_codes")}))
    assert on_the_fly.losses[1] == pytest.approx(pretokenized.losses[1], rel=1e-5)  # same batches, same model
    lm = AutoModel.from_pretrained(pretokenized.final_model_dir)
    assert type(lm).__name__ == "FlatGPTEmbedsRVQForCausalLM"


def test_mistyped_model_config_key_is_named_before_any_work(tmp_path):
    config = dict(task="wavenet", dataset=str(tmp_path / "never-read"), model_config={"dilatons": [1, 2]},
                  output_dir=str(tmp_path / "run"), log_with="none")
    from brain_gen_hf.training.tasks import check_config_keys

    with pytest.raises(ValueError, match="dilatons"):
        check_config_keys("wavenet_full_channel", config["model_config"])
    with pytest.raises(ValueError, match="dilatons"):
        train(*parse_run_config(config))  # fails on the key, not on the missing dataset
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("model_type, base", [
    ("classifier_continuous", {"model_type": "bendr_forecast", "encoder_h": 8, "enc_width": [3, 2],
                               "enc_downsample": [2, 2], "transformer_layers": 1, "attn_heads": 2,
                               "position_groups": 4, "dropout": 0.0}),
    ("classifier_quantized", {"model_type": "wavenet_full_channel", "quant_levels": 64, "quant_emb": 8,
                              "residual_channels": 8, "dilation_channels": 8, "skip_channels": 8,
                              "head_channels": 8, "dilations": [1, 2]}),
])
def test_classifier_trains_on_labels_from_segment_metadata(model_type, base, tiny_meg_dataset, tmp_path):
    """Subject identification: the class of a window is its segment's `subject`."""
    config = dict(task="classifier", model_type=model_type, model_config={"base_config": base},
                  label_column="subject", dataset=str(tiny_meg_dataset), example_seconds=0.64, overlap_seconds=0.0,
                  batch_size=4, eval_split="validation", eval_every=2, max_eval_batches=2, output_dir=str(tmp_path),
                  max_steps=3, learning_rate=1e-3, log_with="none", progress_bar=False)
    result = train(*parse_run_config(config))
    assert result.step == 3 and all(torch.isfinite(torch.tensor(v)) for v in result.losses.values())
    from transformers import AutoModelForSequenceClassification

    import brain_gen_hf  # noqa: F401

    model = AutoModelForSequenceClassification.from_pretrained(result.final_model_dir)
    assert model.config.num_classes == 3 and sorted(model.config.id2label.values())[0] == "sub-sim01"
    with pytest.raises(ValueError, match="not a column"):
        train(*parse_run_config({**config, "label_column": "no_such_column", "output_dir": str(tmp_path / "x")}))


def test_bf16_mixed_precision_smoke(tiny_meg_dataset, tmp_path):
    """accelerate's bf16 autocast on CPU (slow there, so two tiny steps): finite losses, fp32 weights saved."""
    config = dict(task="brain_tokenizer", model_type="braintokmix", model_config=BRAINTOKMIX,
                  dataset=str(tiny_meg_dataset), example_seconds=0.64, overlap_seconds=0.0, batch_size=2,
                  eval_split=None, output_dir=str(tmp_path), max_steps=2, mixed_precision="bf16", log_with="none",
                  progress_bar=False)
    result = train(*parse_run_config(config))
    assert result.step == 2 and all(torch.isfinite(torch.tensor(v)) for v in result.losses.values())
    from safetensors.torch import load_file

    weights = load_file(result.final_model_dir / "model.safetensors")
    assert {t.dtype for t in weights.values()} == {torch.float32}
