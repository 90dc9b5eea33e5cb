"""FlatGPT sensor-layout RoPE positions (brain-gen `layout_path`): loading, raster ids, the model, conversion."""

import json

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from brain_gen_hf.models.flatgpt.convert_flatgpt import config_from_reference
from brain_gen_hf.models.flatgpt.sensor_layout_positions import (
    layout_position_ids,
    load_sensor_positions,
    sensor_rows_cols,
)
from tests.flatgpt_configs import V, flatgpt_config, qwen_backbone, smollm3_backbone

# A 2 x 2 spatial grid; with a 2 x 2 raster these positions land exactly on the grid's own (h, w) ids.
ON_GRID = [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]


def _config(positions=ON_GRID, grid_size=2, **kwargs):
    return flatgpt_config(
        qwen_backbone(),
        input_shape=[6, 2, 2],
        rope_layout_positions=positions,
        rope_layout_grid_size=grid_size,
        **kwargs,
    )


def _ids(seed=0, length=24):
    return torch.randint(0, V, (2, length), generator=torch.Generator().manual_seed(seed))


def test_raster_ids_are_rounded_normalised_positions():
    # x spans [0, 2] -> cols round(x / 2 * 31); y spans [-1, 3] -> rows round((y + 1) / 4 * 31); half to even.
    positions = [[0.0, -1.0], [1.0, -1.0], [2.0, 3.0], [0.5, 1.0]]
    rows, cols = sensor_rows_cols(positions, 32)
    assert rows.tolist() == [0, 0, 31, 16]  # 15.5 -> 16
    assert cols.tolist() == [0, 16, 31, 8]  # 15.5 -> 16, 7.75 -> 8
    rows, cols = sensor_rows_cols([[0.0, 5.0], [3.0, 5.0]], 32)  # a constant axis maps to 0
    assert rows.tolist() == [0, 0] and cols.tolist() == [0, 31]


def test_position_ids_take_time_from_the_grid_and_h_w_from_the_sensor():
    rows, cols = torch.tensor([4, 7, 9, 1]), torch.tensor([2, 0, 5, 3])
    ids = layout_position_ids(rows, cols, (3, 2, 2), 2, 5, batch_size=2)
    assert ids.shape == (3, 2, 5)
    assert ids[0, 0].tolist() == [0, 0, 1, 1, 1]  # cells 2..6: time step = cell // 4
    assert ids[1, 0].tolist() == [9, 1, 4, 7, 9]  # rows of spatial cells 2, 3, 0, 1, 2
    assert ids[2, 0].tolist() == [5, 3, 2, 0, 5]
    with pytest.raises(ValueError, match="exceed the 12 cells"):
        layout_position_ids(rows, cols, (3, 2, 2), 10, 3, batch_size=1)


def test_on_grid_layout_equals_the_plain_grid_and_a_moved_layout_differs():
    torch.manual_seed(0)
    layout = AutoModelForCausalLM.from_config(_config()).eval()
    plain = AutoModelForCausalLM.from_config(flatgpt_config(qwen_backbone(), input_shape=[6, 2, 2])).eval()
    plain.load_state_dict(layout.state_dict())
    ids = _ids()
    torch.testing.assert_close(layout(ids).logits, plain(ids).logits, rtol=0, atol=0)
    swapped = AutoModelForCausalLM.from_config(_config([[y, x] for x, y in ON_GRID])).eval()
    swapped.load_state_dict(layout.state_dict())
    assert not torch.allclose(swapped(ids).logits, plain(ids).logits)


def test_layout_model_caches_generates_and_round_trips(tmp_path):
    torch.manual_seed(0)
    positions = [[0.1, 0.9], [0.7, 0.2], [0.3, 0.4], [0.9, 0.8]]
    model = AutoModelForCausalLM.from_config(_config(positions, grid_size=32)).eval()
    prompt = _ids(1, 7)
    cached = model.generate(prompt, max_new_tokens=9, do_sample=False, use_cache=True)
    uncached = model.generate(prompt, max_new_tokens=9, do_sample=False, use_cache=False)
    assert torch.equal(cached, uncached)
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["rope_layout_positions"] == positions and saved["rope_layout_grid_size"] == 32
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(loaded(_ids()).logits, model(_ids()).logits, rtol=0, atol=0)


def test_bad_layouts_raise():
    with pytest.raises(ValueError, match="has 3 entries but the RoPE grid has 4 spatial cells"):
        _config(ON_GRID[:3])
    with pytest.raises(ValueError, match=r"list of \[x, y\] pairs"):
        _config([[0.0, 1.0, 2.0]] * 4)
    with pytest.raises(ValueError, match="has other positions"):
        flatgpt_config(smollm3_backbone(), input_shape=[6, 2, 2], rope_layout_positions=ON_GRID)


def test_layout_files_load_without_unpickling(tmp_path):
    positions = np.array([[0.0, 1.0, 9.0], [2.0, 3.0, 9.0]])  # brain-gen keeps the first two columns
    np.save(tmp_path / "layout.npy", positions)
    assert load_sensor_positions(tmp_path / "layout.npy") == [[0.0, 1.0], [2.0, 3.0]]
    (tmp_path / "layout.json").write_text(json.dumps([[0.5, 1.5], [2.5, 3.5]]))
    assert load_sensor_positions(tmp_path / "layout.json") == [[0.5, 1.5], [2.5, 3.5]]
    np.save(tmp_path / "objects.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(OSError, match="never unpickled"):
        load_sensor_positions(tmp_path / "objects.npy")
    with pytest.raises(OSError, match="does not exist"):
        load_sensor_positions(tmp_path / "missing.npy")


def _reference_kwargs(trf_class, trf_args):
    return {
        "trf_class": trf_class,
        "trf_args": trf_args,
        "hidden_size": 24,
        "vocab_size": V,
        "input_shape": [6, 2, 2],
        "tok_class": "AmplitudeTokenizer",
    }


def test_reference_layout_path_is_read_into_the_config(tmp_path):
    positions = np.array([[0.1, 0.9], [0.7, 0.2], [0.3, 0.4], [0.9, 0.8]])
    np.save(tmp_path / "layout.npy", positions)
    trf_args = {**qwen_backbone(), "layout_path": str(tmp_path / "layout.npy")}
    trf_args.pop("model_type")
    config = config_from_reference("FlatGPT", _reference_kwargs("Qwen2_5_Video", trf_args))
    assert config.rope_layout_positions == positions.tolist()
    assert config.rope_layout_grid_size == 32
    (tmp_path / "layout.npy").unlink()  # the converted model needs no file
    AutoModelForCausalLM.from_config(config)(_ids())

    smol = {k: v for k, v in smollm3_backbone().items() if k != "model_type"}
    with pytest.warns(UserWarning, match="layout_path` had no effect"):
        config = config_from_reference("FlatGPT", _reference_kwargs("SmoLLM3", {**smol, "layout_path": "x.npy"}))
    assert config.rope_layout_positions is None
