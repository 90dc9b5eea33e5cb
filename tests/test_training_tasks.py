"""Every trainable family goes through the same accelerate trainer: a few steps on SIMULATED MEG each."""

import dataclasses

import pytest
import torch

from brain_gen_hf.training.arguments import parse_run_config
from brain_gen_hf.training.trainer import train
from tests.tiny_configs import CHANNELS
from tests.tiny_configs import TINY_BRAINTOKMIX as BRAINTOKMIX
from tests.tiny_configs import TINY_QWEN as QWEN

TASKS = {
    "bendr": dict(
        model_config={
            "encoder_h": 8,
            "enc_width": [3, 2],
            "enc_downsample": [2, 2],
            "transformer_layers": 1,
            "attn_heads": 2,
            "position_groups": 4,
            "dropout": 0.0,
        }
    ),
    "braintokmix": dict(task="brain_tokenizer", model_type="braintokmix", model_config=BRAINTOKMIX),
    "brainomni": dict(
        task="brain_tokenizer",
        model_type="brainomni_causal_tokenizer",
        model_config={**BRAINTOKMIX, "n_neuro": 3, "n_head": 2, "num_sensors": CHANNELS},
    ),
    "flatgpt_mix_amplitude": dict(
        task="flatgpt",
        model_type="flatgpt_mix",
        model_config={
            "hidden_size": 16,
            "backbone_config": QWEN,
            "input_shape": [64, CHANNELS, 1],
            "mix_method": "none",
        },
    ),
    "brainomni_forecast": dict(
        task="brainomni_forecast",
        model_config={
            "tokenizer_config": {**BRAINTOKMIX, "n_neuro": 3, "n_head": 2, "num_sensors": CHANNELS},
            "lm_dim": 16,
            "lm_head": 2,
            "lm_depth": 1,
        },
    ),
}


@pytest.mark.parametrize("name", sorted(TASKS))
def test_family_trains_through_the_shared_trainer(name, tiny_meg_dataset, tmp_path):
    settings = dict(TASKS[name])
    settings.setdefault("task", name)
    config = dict(
        dataset=str(tiny_meg_dataset),
        example_seconds=0.64,
        overlap_seconds=0.0,
        batch_size=2,
        eval_split="validation",
        eval_every=2,
        max_eval_batches=2,
        output_dir=str(tmp_path),
        max_steps=3,
        learning_rate=1e-3,
        log_with="none",
        progress_bar=False,
        **settings,
    )
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
    from brain_gen_hf.data.pretokenize import load_token_datasets, pretokenize_dataset
    from brain_gen_hf.models.braintokmix.configuration_braintokmix import (
        BrainTokMixConfig,
    )

    torch.manual_seed(0)
    tokenizer = AutoModel.from_config(BrainTokMixConfig(num_sensors=CHANNELS, sampling_rate=100.0, **BRAINTOKMIX))
    tokenizer.init_codebooks(torch.randn(4, CHANNELS, 64), seed=1)
    tokenizer.save_pretrained(tmp_path / "tokenizer")
    lm_config = {"hidden_size": 16, "backbone_config": QWEN}
    common = dict(
        task="flatgpt",
        model_type="flatgpt_embeds_rvq",
        tokenizer=str(tmp_path / "tokenizer"),
        model_config=lm_config,
        example_seconds=0.64,
        overlap_seconds=0.0,
        batch_size=2,
        eval_split=None,
        max_steps=2,
        log_with="none",
        progress_bar=False,
    )
    on_the_fly = train(
        *parse_run_config({**common, "dataset": str(tiny_meg_dataset), "output_dir": str(tmp_path / "lm_signal")})
    )

    counts = pretokenize_dataset(
        tokenizer, str(tiny_meg_dataset), tmp_path / "tokens", example_seconds=0.64, progress=False
    )
    tokens = load_token_datasets(tmp_path / "tokens")
    assert counts["train"] == len(tokens["train"])
    first = tokens["train"][0]["codes"]
    from brain_gen_hf.data.windows import load_window_datasets

    window = torch.from_numpy(load_window_datasets(str(tiny_meg_dataset), 0.64, 0.0)["train"].window_array([0]))
    assert torch.equal(first.long(), tokenizer.flatten_codes(tokenizer.encode(window).codes)[0])
    pretokenized = train(
        *parse_run_config({**common, "dataset": str(tmp_path / "tokens"), "output_dir": str(tmp_path / "lm_codes")})
    )
    assert on_the_fly.losses[1] == pytest.approx(pretokenized.losses[1], rel=1e-5)  # same batches, same model
    lm = AutoModel.from_pretrained(pretokenized.final_model_dir)
    assert type(lm).__name__ == "FlatGPTEmbedsRVQForCausalLM"


def test_mistyped_model_config_key_is_named_before_any_work(tmp_path):
    config = dict(
        task="wavenet",
        dataset=str(tmp_path / "never-read"),
        model_config={"dilatons": [1, 2]},
        output_dir=str(tmp_path / "run"),
        log_with="none",
    )
    from brain_gen_hf.training.model_building import check_config_keys

    with pytest.raises(ValueError, match="dilatons"):
        check_config_keys("wavenet_full_channel", config["model_config"])
    with pytest.raises(ValueError, match="dilatons"):
        train(*parse_run_config(config))  # fails on the key, not on the missing dataset
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "model_type, base",
    [
        (
            "classifier_continuous",
            {
                "model_type": "bendr_forecast",
                "encoder_h": 8,
                "enc_width": [3, 2],
                "enc_downsample": [2, 2],
                "transformer_layers": 1,
                "attn_heads": 2,
                "position_groups": 4,
                "dropout": 0.0,
            },
        ),
        (
            "classifier_quantized",
            {
                "model_type": "wavenet_full_channel",
                "quant_levels": 64,
                "quant_emb": 8,
                "residual_channels": 8,
                "dilation_channels": 8,
                "skip_channels": 8,
                "head_channels": 8,
                "dilations": [1, 2],
            },
        ),
    ],
)
def test_classifier_trains_on_labels_from_segment_metadata(model_type, base, tiny_meg_dataset, tmp_path):
    """Subject identification: the class of a window is its segment's `subject`."""
    config = dict(
        task="classifier",
        model_type=model_type,
        model_config={"base_config": base},
        label_column="subject",
        dataset=str(tiny_meg_dataset),
        example_seconds=0.64,
        overlap_seconds=0.0,
        batch_size=4,
        eval_split="validation",
        eval_every=2,
        max_eval_batches=2,
        output_dir=str(tmp_path),
        max_steps=3,
        learning_rate=1e-3,
        log_with="none",
        progress_bar=False,
    )
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
    config = dict(
        task="brain_tokenizer",
        model_type="braintokmix",
        model_config=BRAINTOKMIX,
        dataset=str(tiny_meg_dataset),
        example_seconds=0.64,
        overlap_seconds=0.0,
        batch_size=2,
        eval_split=None,
        output_dir=str(tmp_path),
        max_steps=2,
        mixed_precision="bf16",
        log_with="none",
        progress_bar=False,
    )
    result = train(*parse_run_config(config))
    assert result.step == 2 and all(torch.isfinite(torch.tensor(v)) for v in result.losses.values())
    from safetensors.torch import load_file

    weights = load_file(result.final_model_dir / "model.safetensors")
    assert {t.dtype for t in weights.values()} == {torch.float32}


# ------------------------------------------------------------------ data contracts
def test_every_contract_names_arguments_of_its_models_forward():
    """A batch goes to `model(**batch)` unchanged: every key a family's collators may emit is a forward argument
    of a model_type the contract trains (which collator serves which model is checked at every run, by
    `check_batch_reaches_forward`), and every model_type reads one of them as its main input."""
    import inspect

    from brain_gen_hf.registration import model_class_for
    from brain_gen_hf.training.tasks import TASKS, contract_for_model_type, get_task

    for task in TASKS:
        contract = get_task(task)
        assert contract.task == task and contract.model_types and contract.inputs
        taken = set()
        for model_type in contract.model_types:
            assert contract_for_model_type(model_type) is contract
            model_class = model_class_for(model_type)
            parameters = set(inspect.signature(model_class.forward).parameters)
            assert model_class.main_input_name in parameters & set(contract.inputs), model_type
            taken |= parameters
        assert set(contract.inputs) <= taken, (task, sorted(set(contract.inputs) - taken))


def test_collators_emit_what_they_declare_and_the_trainer_checks_it_against_forward():
    import numpy as np

    from brain_gen_hf.data.collators import (
        ClassLabelCollator,
        CodesCollator,
        ContinuousCollator,
        ImageCollator,
        MuLawCollator,
    )
    from brain_gen_hf.data.layouts import build_canonical_layout
    from brain_gen_hf.models.bendr.training_bendr import BENDR_TRAINING
    from brain_gen_hf.training.model_building import check_batch_reaches_forward

    names = ["a", "b", "c"]
    positions = np.array([[0.1, 0, 0.05], [0, 0.1, 0.05], [-0.1, 0, 0.05]], dtype=np.float32)
    layout = build_canonical_layout(
        [
            {
                "dataset": "A",
                "session": "s",
                "sfreq": 100.0,
                "ch_names": names,
                "ch_types": ["mag"] * 3,
                "pos_3d": positions,
                "ori_3d": np.zeros_like(positions),
                "pos_2d": positions[:, :2],
            }
        ]
    )
    signal = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
    items = [
        {"signal": signal, "channel_mask": np.ones(3, bool), "label": i, "codes": torch.arange(6)} for i in range(2)
    ]
    collators = [
        ContinuousCollator(layout),
        ContinuousCollator(layout, positions="3d"),
        ContinuousCollator(layout, positions=None, labels=True),
        MuLawCollator(),
        MuLawCollator(shift=False, labels=False),
        CodesCollator(),
        ImageCollator(layout, image_size=4),
        ImageCollator(layout, image_size=4, quantize=True),
        ClassLabelCollator(ContinuousCollator(layout, positions=None)),
    ]
    for collate in collators:
        batch = collate(items)
        assert tuple(batch) == collate.model_inputs, type(collate).__name__
    bendr_batch = collators[2](items)
    assert torch.equal(bendr_batch["labels"], bendr_batch["input_values"])
    assert ClassLabelCollator(MuLawCollator(shift=False, labels=False))(items)["labels"].tolist() == [0, 1]
    with pytest.raises(ValueError, match="already emits labels"):
        ClassLabelCollator(MuLawCollator())
    with pytest.raises(ValueError, match="needs labels=True"):
        MuLawCollator(shift=True, labels=False)

    from brain_gen_hf.models.bendr.configuration_bendr import BENDRForecastConfig
    from brain_gen_hf.models.bendr.modeling_bendr import BENDRForecastModel

    bendr = BENDRForecastModel(
        BENDRForecastConfig(
            channels=3,
            samples=8,
            encoder_h=8,
            enc_width=[3, 2],
            enc_downsample=[2, 2],
            transformer_layers=1,
            attn_heads=2,
            position_groups=4,
        )
    )
    check_batch_reaches_forward(bendr, collators[2], BENDR_TRAINING)
    with pytest.raises(ValueError, match=r"not in the contract's inputs \['input_values', 'labels'\]"):
        check_batch_reaches_forward(bendr, collators[0], BENDR_TRAINING)  # pos / sensor_type
    widened = dataclasses.replace(BENDR_TRAINING, inputs=("input_values", "labels", "pos", "sensor_type"))
    with pytest.raises(ValueError, match=r"BENDRForecastModel.forward takes no \['pos', 'sensor_type'\]"):
        check_batch_reaches_forward(bendr, collators[0], widened)


def test_contract_lookup_by_task_or_model_type():
    from brain_gen_hf.training.tasks import resolve_contract

    assert resolve_contract(None, "flatgpt_mix").task == "flatgpt"
    assert resolve_contract("brain_tokenizer", "brainomni_causal_tokenizer").task == "brain_tokenizer"
    assert resolve_contract("wavenet", None).default_model_type == "wavenet_full_channel"
    with pytest.raises(
        ValueError,
        match="task 'wavenet' trains .* not model_type 'braintokmix'; braintokmix is trained by task 'brain_tokenizer'",
    ):
        resolve_contract("wavenet", "braintokmix")
    with pytest.raises(ValueError, match="no training task trains model_type 'no_such_model'"):
        resolve_contract(None, "no_such_model")  # (TASA3D, the example here before, has its own task now)
    with pytest.raises(ValueError, match="needs `task`"):
        resolve_contract(None, None)
    # A run config may name the model alone: its family's task trains it.
    model_args, _, _ = parse_run_config({"model_type": "bendr_forecast", "dataset": "d"})
    assert model_args.task is None and resolve_contract(model_args.task, model_args.model_type).task == "bendr"


def test_contracts_import_without_datasets_or_mne():
    """Model folders must import where only torch/transformers/safetensors/tokenizers exist: their training
    contracts too (collators and data loading are imported when a run builds them)."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['datasets'] = None; sys.modules['mne'] = None\n"
        "from brain_gen_hf.training.tasks import TASKS, get_task\n"
        "print(sorted(get_task(t).task for t in TASKS))"
    )
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "'wavenet'" in result.stdout and "'flatgpt'" in result.stdout
