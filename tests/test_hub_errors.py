"""Hub failure modes: clear errors and never a partially random model."""

import json

import pytest
import torch

import brain_gen_hf  # noqa: F401
from brain_gen_hf.models.wavenet.configuration_wavenet import WavenetFullChannelConfig
from brain_gen_hf.models.wavenet.modeling_wavenet import WavenetFullChannelModel


def small_model():
    torch.manual_seed(0)
    return WavenetFullChannelModel(WavenetFullChannelConfig(in_channels=2, quant_levels=16, dilations=[1])).eval()


def test_missing_repo_raises_oserror(local_hub):
    from transformers import AutoModel

    with pytest.raises(OSError, match="does-not-exist"):
        AutoModel.from_pretrained("user/does-not-exist")


def test_repo_without_weights_raises_instead_of_random_init(local_hub, hub_repo_id, tmp_path):
    from transformers import AutoModel

    small_model().config.save_pretrained(tmp_path)
    local_hub.api.create_repo(hub_repo_id)
    local_hub.api.upload_folder(repo_id=hub_repo_id, folder_path=str(tmp_path))
    with local_hub.fresh_cache(), pytest.raises(OSError):
        AutoModel.from_pretrained(hub_repo_id)


def test_corrupt_weights_on_the_hub_raise_oserror(local_hub, hub_repo_id, tmp_path):
    from transformers import AutoModel

    small_model().save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-64])
    local_hub.api.create_repo(hub_repo_id)
    local_hub.api.upload_folder(repo_id=hub_repo_id, folder_path=str(tmp_path))
    with local_hub.fresh_cache(), pytest.raises(OSError, match="truncated or corrupted"):
        AutoModel.from_pretrained(hub_repo_id)


def test_unknown_model_type_is_a_clear_error(local_hub, hub_repo_id, tmp_path):
    from transformers import AutoConfig

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "brain_gen_hf_no_such_model"}))
    local_hub.api.create_repo(hub_repo_id)
    local_hub.api.upload_folder(repo_id=hub_repo_id, folder_path=str(tmp_path))
    with local_hub.fresh_cache(), pytest.raises(ValueError, match="brain_gen_hf_no_such_model"):
        AutoConfig.from_pretrained(hub_repo_id)


def test_interrupted_push_leaves_no_partial_model_and_retry_succeeds(local_hub, hub_repo_id):
    from transformers import AutoModel

    model = small_model()
    x = torch.randint(0, 16, (1, 2, 6))
    local_hub.server.fail_next("commit", mode="disconnect")
    with pytest.raises(Exception):  # noqa: B017 - the client's error type for a dropped connection varies by release
        model.push_to_hub(hub_repo_id)
    files = local_hub.api.list_repo_files(hub_repo_id)
    assert "config.json" not in files and "model.safetensors" not in files  # nothing half-written
    model.push_to_hub(hub_repo_id)
    assert {"config.json", "model.safetensors", "README.md"} <= set(local_hub.api.list_repo_files(hub_repo_id))
    with local_hub.fresh_cache():
        reloaded = AutoModel.from_pretrained(hub_repo_id).eval()
        torch.testing.assert_close(reloaded(x).logits, model(x).logits, rtol=0, atol=0)


def test_remote_code_push_declares_auto_map(local_hub, hub_repo_id):
    model = small_model()
    model.push_to_hub(hub_repo_id, remote_code=True)
    files = set(local_hub.api.list_repo_files(hub_repo_id))
    assert {"configuration_wavenet_full_channel.py", "modeling_wavenet_full_channel.py"} <= files
    with local_hub.fresh_cache():
        from huggingface_hub import hf_hub_download

        config = json.loads(open(hf_hub_download(hub_repo_id, "config.json")).read())
    assert config["auto_map"]["AutoModel"] == "modeling_wavenet_full_channel.WavenetFullChannelModel"
