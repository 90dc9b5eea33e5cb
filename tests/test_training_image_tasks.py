"""The token-image models (TASA3D, Wavenet3D, the image classifier) train through the shared trainer on SIMULATED
MEG: each channel on its pixel of a small grid, a few steps, exact resume."""

from pathlib import Path

import numpy as np
import pytest
import torch

from brain_gen_hf.training.arguments import load_run_config, parse_run_config
from brain_gen_hf.training.trainer import train

REPO = Path(__file__).resolve().parents[1]
CHANNELS = 102  # magnetometers of the simulated helmet
TASA3D = {"input_hw": [8, 8], "emb_dim": 4, "depth": 1, "num_down": 1, "heads": 2, "quant_levels": 32}
WAVENET3D = {
    "image_size": [8, 8],
    "quant_levels": 32,
    "quant_emb": 4,
    "residual_channels": 4,
    "dilation_channels": 4,
    "skip_channels": 4,
    "head_channels": 4,
    "dilations": [1, 2],
    "spatial_kernel_size": 3,
}


def dataset_layout(dataset):
    from brain_gen_hf.data.windows import load_window_datasets

    return next(iter(load_window_datasets(str(dataset), 0.32, 0.0).values())).layout


def run_config(dataset, output_dir, **overrides) -> dict:
    config = dict(
        dataset=str(dataset),
        example_seconds=0.32,
        overlap_seconds=0.0,
        batch_size=2,
        eval_split="validation",
        eval_every=2,
        max_eval_batches=1,
        output_dir=str(output_dir),
        max_steps=4,
        learning_rate=1e-3,
        log_with="none",
        progress_bar=False,
        checkpoint_every=2,
    )
    config.update(overrides)
    return config


@pytest.mark.parametrize(("task", "model_config"), [("tasa3d", TASA3D), ("wavenet3d", WAVENET3D)])
def test_image_model_trains_and_resumes_exactly(task, model_config, tiny_meg_dataset, tmp_path):
    from transformers import AutoModel

    import brain_gen_hf  # noqa: F401
    from brain_gen_hf.data.collators import grid_indices

    config = run_config(tiny_meg_dataset, tmp_path / "full", task=task, model_config=model_config)
    full = train(*parse_run_config(config))
    assert sorted(full.losses) == [1, 2, 3, 4] and len(set(full.losses.values())) > 1
    assert all(np.isfinite(list(full.losses.values()))) and full.eval_losses

    split = {**config, "output_dir": str(tmp_path / "split")}
    first = train(*parse_run_config(split), stop_after_steps=2)
    assert sorted(first.losses) == [1, 2] and first.final_model_dir is None
    resumed = train(*parse_run_config({**split, "resume_from": "latest"}))
    assert resumed.losses == full.losses  # exact, the steps after the resume point included
    assert resumed.eval_losses == full.eval_losses

    model = AutoModel.from_pretrained(resumed.final_model_dir)
    assert model.config.model_type == task and model.config.sampling_rate == 100.0
    assert model.config.contract_num_channels == CHANNELS == len(model.config.row_idx)
    # The config records where the trainer put each channel: grid_indices of the layout's 2-D positions.
    layout = dataset_layout(tiny_meg_dataset)
    rows, cols = grid_indices(layout.pos_2d, 8)
    assert model.config.row_idx == rows.tolist() and model.config.col_idx == cols.tolist()


@pytest.mark.parametrize(("base", "image_size"), [({"model_type": "wavenet3d", **WAVENET3D}, None), (None, 8)])
def test_image_classifier_trains_on_labels_from_segment_metadata(base, image_size, tiny_meg_dataset, tmp_path):
    from transformers import AutoModelForSequenceClassification

    import brain_gen_hf  # noqa: F401

    if base is None:  # a Wavenet3D base that leaves its image size to the classifier
        base = {k: v for k, v in {"model_type": "wavenet3d", **WAVENET3D}.items() if k != "image_size"}
    model_config = {"base_config": base, "red_dim": 2, **({"image_size": image_size} if image_size else {})}
    config = run_config(
        tiny_meg_dataset,
        tmp_path,
        task="classifier",
        model_type="classifier_quantized_image",
        model_config=model_config,
        label_column="subject",
        max_steps=2,
        checkpoint_every=0,
    )
    result = train(*parse_run_config(config))
    assert result.step == 2 and all(np.isfinite(list(result.losses.values())))
    model = AutoModelForSequenceClassification.from_pretrained(result.final_model_dir)
    assert model.config.num_classes == 3 and model.config.image_size == [8, 8]
    # The head reads the pixels the base's config places the data's channels on.
    assert model.config.num_channels == CHANNELS and model.config.row_idx == model.config.base_config.row_idx


def test_tasa3d_classifier_base_is_placed_like_the_tasa3d_task(tiny_meg_dataset):
    """The classifier builder places the channels on a TASA3D base's `input_hw` grid (no training steps)."""
    from brain_gen_hf.data.collators import grid_indices
    from brain_gen_hf.models.classifier.training_classifier import build_classifier
    from brain_gen_hf.training.contract import DataInfo

    layout = dataset_layout(tiny_meg_dataset)
    model_args, _, _ = parse_run_config(
        {"task": "classifier", "model_type": "classifier_quantized_image", "dataset": "d"}
    )
    data = DataInfo(layout, 100.0, 32, classes=["a", "b"])
    model = build_classifier(model_args, data, {"base_config": {"model_type": "tasa3d", **TASA3D}})
    rows, cols = grid_indices(layout.pos_2d, 8)
    assert model.config.row_idx == rows.tolist() and model.config.col_idx == cols.tolist()
    assert model.config.image_size == [8, 8] and model.config.base_config.row_idx == rows.tolist()


def test_token_image_labels_are_the_next_frame_at_present_sensor_pixels():
    """Hand-built: 3 channels on a 2x3 image, channel 1 missing in item 0; mu = 2 so the bins are -1/0/1 -> 0/1/2."""
    from brain_gen_hf.data.collators import ImageCollator
    from brain_gen_hf.data.layouts import ChannelLayout

    layout = ChannelLayout(
        names=["a", "b", "c"],
        types=["mag"] * 3,
        pos_2d=np.zeros((3, 2), np.float32),
        pos_3d=np.zeros((3, 3)),
        ori_3d=np.zeros((3, 3)),
        sfreq=100.0,
    )
    collate = ImageCollator(
        layout, image_size=(2, 3), quantize=True, mu=2, max_value=1.0, pixels=([0, 1, 1], [2, 0, 2])
    )
    # signal +1 -> bin 2, -1 -> bin 0, 0 -> bin 1 (the fill of pixels without a sensor)
    signal = np.array([[1.0, -1.0, 1.0], [-1.0, -1.0, 1.0], [1.0, 1.0, -1.0]], np.float32)
    items = [
        {"signal": signal, "channel_mask": np.array([True, False, True])},
        {"signal": -signal, "channel_mask": np.ones(3, bool)},
    ]
    batch = collate(items)
    assert tuple(batch) == ("input_ids", "labels")
    tokens = torch.ones(2, 2, 3, 3, dtype=torch.long)  # (B, H, W, T), fill bin 1
    for b, sign in enumerate((1, -1)):
        for c, (r, col) in enumerate(((0, 2), (1, 0), (1, 2))):
            tokens[b, r, col] = torch.from_numpy(sign * signal[c] + 1).long()
    assert torch.equal(batch["input_ids"], tokens[..., :-1])
    labels = torch.full((2, 2, 3, 2), -100)
    labels[:, 0, 2], labels[:, 1, 2], labels[1, 1, 0] = tokens[:, 0, 2, 1:], tokens[:, 1, 2, 1:], tokens[1, 1, 0, 1:]
    assert torch.equal(batch["labels"], labels)  # the missing channel b of item 0 and every empty pixel: -100
    whole = ImageCollator(
        layout, (2, 3), quantize=True, mu=2, max_value=1.0, labels=False, pixels=([0, 1, 1], [2, 0, 2])
    )
    assert tuple(whole(items)) == ("input_ids",) and torch.equal(whole(items)["input_ids"], tokens)
    with pytest.raises(ValueError, match="square images only, got 2x3: pass `pixels`"):
        ImageCollator(layout, (2, 3), quantize=True)
    with pytest.raises(ValueError, match="outside the 2x3 image"):
        ImageCollator(layout, (2, 3), quantize=True, pixels=([0, 2, 1], [0, 0, 0]))


def test_a_model_of_another_family_names_the_task_that_trains_it(tiny_meg_dataset, tmp_path):
    """`task wavenet` used to reach the first step with a Wavenet3D and fail there on the input's dimensions."""
    from transformers import AutoConfig, AutoModel

    import brain_gen_hf  # noqa: F401
    from brain_gen_hf.training.tasks import resolve_contract

    AutoModel.from_config(AutoConfig.for_model("wavenet3d", **WAVENET3D)).save_pretrained(tmp_path / "w3d")
    config = run_config(tiny_meg_dataset, tmp_path / "run", task="wavenet", pretrained=str(tmp_path / "w3d"))
    with pytest.raises(ValueError, match=r"pretrained model is a wavenet3d, but task 'wavenet' .*use task 'wavenet3d'"):
        train(*parse_run_config(config))
    with pytest.raises(ValueError, match="wavenet3d is trained by task 'wavenet3d'"):
        resolve_contract("wavenet", "wavenet3d")
    assert resolve_contract(None, "tasa3d").task == "tasa3d"
    assert resolve_contract(None, "classifier_quantized_image").task == "classifier"


@pytest.mark.parametrize("name", ["tasa3d_small.yaml", "wavenet3d_small.yaml"])
def test_example_image_configs_build_their_model(name):
    from transformers import AutoConfig

    import brain_gen_hf  # noqa: F401
    from brain_gen_hf.training.model_building import check_config_keys

    model_args, _, _ = parse_run_config(load_run_config(REPO / "training_scripts" / "configs" / name))
    assert model_args.task == name.removesuffix("_small.yaml")
    check_config_keys(model_args.task, model_args.model_config)
    AutoConfig.for_model(model_args.task, **model_args.model_config)
