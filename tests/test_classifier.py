"""Classifier family: model contract, composition through `base_config`, `from_base_pretrained`, parity."""

import pytest
import torch
from transformers import AutoModel, AutoModelForSequenceClassification

from brain_gen_hf.conversion import convert_reference_checkpoint
from brain_gen_hf.models.bendr.configuration_bendr import BENDRForecastConfig
from brain_gen_hf.models.classifier.configuration_classifier import (
    ClassifierContinuousConfig,
    ClassifierQuantizedConfig,
    ClassifierQuantizedImageConfig,
)
from brain_gen_hf.models.classifier.modeling_classifier import (
    ClassifierQuantizedImageModel,
    ClassifierQuantizedModel,
)
from brain_gen_hf.models.tasa3d.configuration_tasa3d import TASA3DConfig
from brain_gen_hf.models.wavenet.configuration_wavenet import Wavenet3DConfig, WavenetFullChannelConfig
from tests.model_contract import ModelContract
from tests.refvec import assert_float_close, discover_cases, require_case
from tests.test_bendr import reference_wiring

Q = 16
NUM_CLASSES = 3


def _fields(config) -> dict:
    """A config's hyper-parameters, without loading bookkeeping (`_name_or_path`, `dtype`)."""
    return {k: v for k, v in config.to_dict().items() if k not in ("_name_or_path", "dtype", "transformers_version")}


def _labels():
    return torch.tensor([0, 2])


def _label_errors(inputs: dict) -> list[tuple[dict, str]]:
    return [
        ({**inputs, "labels": torch.tensor([0, 1, 2])}, r"labels must have shape \(2,\)"),
        ({**inputs, "labels": torch.tensor([0, NUM_CLASSES])}, "class ids in"),
        ({**inputs, "labels": torch.tensor([0.0, 1.0])}, "integer tensor of class ids"),
    ]


def _wavenet_full_channel_config(**overrides):
    return WavenetFullChannelConfig(
        **{
            "in_channels": 3,
            "quant_levels": Q,
            "quant_emb": 8,
            "residual_channels": 12,
            "dilation_channels": 8,
            "skip_channels": 8,
            "head_channels": 8,
            "dilations": [1, 2],
            **overrides,
        }
    )


def _tasa3d_config():
    return TASA3DConfig(input_hw=[4, 4], emb_dim=4, quant_levels=Q, depth=1, num_down=1, heads=2)


def _bendr_config():
    return BENDRForecastConfig(
        channels=3,
        samples=32,
        encoder_h=16,
        enc_width=[3, 2],
        enc_downsample=[2, 2],
        transformer_layers=2,
        attn_heads=2,
        dropout=0.0,
        position_encoder=5,
    )


def _signal(batch=2, seed=1):
    return torch.randn(batch, 3, 32, generator=torch.Generator().manual_seed(seed))


class TestClassifierContinuousContract(ModelContract):
    auto_class = "AutoModelForSequenceClassification"
    main_input = "input_values"

    def make_config(self):
        return ClassifierContinuousConfig(base_config=_bendr_config(), num_classes=NUM_CLASSES)

    def make_inputs(self):
        return {"input_values": _signal(), "labels": _labels()}

    def bad_inputs(self):
        x = _signal()
        return [
            ({"input_values": x[:, :2]}, "2 channels"),
            ({"input_values": x.long()}, "floating-point"),
            ({"input_values": x.masked_fill(x > 1.5, float("nan"))}, "NaN/inf"),
            ({"input_values": x[..., :0]}, "empty"),
            *_label_errors({"input_values": x}),
        ]


def test_continuous_classifier_keeps_batch_items_independent():
    """The reference inherited BENDR's attention across the batch (item 1's logits depended on item 0)."""
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(TestClassifierContinuousContract().make_config()).eval()
    x = _signal()
    changed = x.clone()
    changed[0] += 1.0
    with torch.no_grad():
        logits, logits_changed = model(x).logits, model(changed).logits
    torch.testing.assert_close(logits_changed[1], logits[1], rtol=1e-5, atol=1e-6)  # up to kernel rounding
    assert (logits_changed[0] - logits[0]).abs().max() > 1e-4


class TestClassifierQuantizedContract(ModelContract):
    auto_class = "AutoModelForSequenceClassification"

    def make_config(self):
        return ClassifierQuantizedConfig(base_config=_wavenet_full_channel_config(), num_classes=NUM_CLASSES, red_dim=4)

    def make_inputs(self):
        g = torch.Generator().manual_seed(1)
        return {"input_ids": torch.randint(0, Q, (2, 3, 10), generator=g), "labels": _labels()}

    def bad_inputs(self):
        x = self.make_inputs()["input_ids"]
        return [
            ({"input_ids": x[:, :2]}, "2 channels"),
            ({"input_ids": x.float()}, "integer token ids"),
            ({"input_ids": x + Q}, "outside the vocabulary"),
            ({"input_ids": x[:, :, :0]}, "empty"),
            *_label_errors({"input_ids": x}),
        ]


class TestClassifierQuantizedImageWavenet3DContract(ModelContract):
    auto_class = "AutoModelForSequenceClassification"

    def make_config(self):
        base = Wavenet3DConfig(quant_levels=Q, quant_emb=8, dilations=[1, 2], spatial_kernel_size=3)
        return ClassifierQuantizedImageConfig(
            base_config=base,
            row_idx=[0, 3, 2, 3],
            col_idx=[1, 1, 4, 0],
            image_size=[4, 5],
            num_classes=NUM_CLASSES,
            red_dim=4,
        )

    def make_inputs(self):
        g = torch.Generator().manual_seed(1)
        return {"input_ids": torch.randint(0, Q, (2, 4, 5, 6), generator=g), "labels": _labels()}

    def bad_inputs(self):
        x = self.make_inputs()["input_ids"]
        return [
            ({"input_ids": x[:, :3]}, "token image must be 4x5"),
            ({"input_ids": x.float()}, "integer token ids"),
            ({"input_ids": x[..., 0]}, "4 dimensions"),
            *_label_errors({"input_ids": x}),
        ]


class TestClassifierQuantizedImageTASA3DContract(TestClassifierQuantizedImageWavenet3DContract):
    def make_config(self):
        return ClassifierQuantizedImageConfig(
            base_config=_tasa3d_config(), row_idx=[0, 3, 2], col_idx=[1, 1, 3], num_classes=NUM_CLASSES, red_dim=4
        )

    def make_inputs(self):
        g = torch.Generator().manual_seed(1)
        return {"input_ids": torch.randint(0, Q, (2, 4, 4, 5), generator=g), "labels": _labels()}

    def bad_inputs(self):
        x = self.make_inputs()["input_ids"]
        return [
            ({"input_ids": x.float()}, "integer token ids"),
            ({"input_ids": x + Q}, "outside the vocabulary"),
            *_label_errors({"input_ids": x}),
        ]


# ------------------------------------------------------------------------------------ composition


def test_auto_model_and_sequence_classification_resolve_to_the_same_class(tmp_path):
    torch.manual_seed(0)
    config = TestClassifierQuantizedContract().make_config()
    model = AutoModelForSequenceClassification.from_config(config).eval()
    model.save_pretrained(tmp_path)
    for auto in (AutoModel, AutoModelForSequenceClassification):
        reloaded = auto.from_pretrained(tmp_path).eval()
        assert type(reloaded) is ClassifierQuantizedModel
        assert type(reloaded.base_model).__name__ == "WavenetFullChannelModel"
        assert _fields(reloaded.config.base_config) == _fields(config.base_config)
        x = TestClassifierQuantizedContract().make_inputs()["input_ids"]
        with torch.no_grad():
            torch.testing.assert_close(reloaded(x).logits, model(x).logits, rtol=0, atol=0)


def test_base_config_accepts_a_dict_with_model_type():
    config = ClassifierQuantizedConfig(base_config=_wavenet_full_channel_config().to_dict(), num_classes=4)
    assert isinstance(config.base_config, WavenetFullChannelConfig)
    assert (config.num_channels, config.hidden_size, config.num_labels) == (3, 12, 4)
    assert config.id2label == {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2", 3: "LABEL_3"}


def test_num_labels_and_id2label_set_num_classes():
    base = _wavenet_full_channel_config()
    assert ClassifierQuantizedConfig(base_config=base, num_labels=5).num_classes == 5
    assert ClassifierQuantizedConfig(base_config=base, id2label={0: "rest", 1: "task"}).num_classes == 2


@pytest.mark.parametrize("freeze", [False, True])
def test_from_base_pretrained(tmp_path, freeze):
    torch.manual_seed(0)
    base = AutoModel.from_config(_wavenet_full_channel_config()).eval()
    base.save_pretrained(tmp_path / "base")
    model = ClassifierQuantizedModel.from_base_pretrained(
        tmp_path / "base", num_classes=4, red_dim=2, freeze_base=freeze
    )
    assert _fields(model.config.base_config) == _fields(base.config)
    base_state = base.state_dict()
    got = model.base_model.state_dict()
    assert got.keys() == base_state.keys()
    for key, value in base_state.items():
        torch.testing.assert_close(got[key], value, rtol=0, atol=0)
    assert model.classifier.out_features == 4 and model.reducer.out_features == 2
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    head = {"reducer.weight", "reducer.bias", "classifier.weight", "classifier.bias"}
    assert trainable == (head if freeze else set(dict(model.named_parameters())))
    # The choice is part of the config, so a saved and reloaded classifier keeps training the same parameters.
    model.save_pretrained(tmp_path / "classifier")
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "classifier")
    assert {name for name, p in reloaded.named_parameters() if p.requires_grad} == trainable


def test_from_base_pretrained_image_classifier(tmp_path):
    torch.manual_seed(0)
    base = AutoModel.from_config(_tasa3d_config()).eval()
    base.save_pretrained(tmp_path)
    model = ClassifierQuantizedImageModel.from_base_pretrained(tmp_path, num_classes=2, row_idx=[0, 1], col_idx=[2, 3])
    x = torch.randint(0, Q, (1, 4, 4, 3))
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x).base_output, base(x).logits, rtol=0, atol=0)


def test_config_validation_errors():
    base = _wavenet_full_channel_config()
    # Without a base config the head sits on the default config of its (first) base type.
    assert ClassifierQuantizedConfig(num_classes=3).base_config.to_dict() == WavenetFullChannelConfig().to_dict()
    with pytest.raises(ValueError, match="needs a base of type \\['wavenet_full_channel'\\]"):
        ClassifierQuantizedConfig(base_config=_tasa3d_config())
    with pytest.raises(ValueError, match="dict needs a `model_type`"):
        ClassifierQuantizedConfig(base_config={"in_channels": 3})
    with pytest.raises(ValueError, match="at least 2"):
        ClassifierQuantizedConfig(base_config=base, num_classes=1)
    with pytest.raises(ValueError, match="disagree"):
        ClassifierQuantizedConfig(base_config=base, num_classes=3, num_labels=4)
    with pytest.raises(ValueError, match="red_dim"):
        ClassifierQuantizedConfig(base_config=base, red_dim=0)
    tasa = _tasa3d_config()
    with pytest.raises(ValueError, match="one entry per sensor"):
        ClassifierQuantizedImageConfig(base_config=tasa, row_idx=[0, 1], col_idx=[0])
    with pytest.raises(ValueError, match=r"`row_idx` has \[4\] outside the image \(4x4\)"):
        ClassifierQuantizedImageConfig(base_config=tasa, row_idx=[0, 4], col_idx=[0, 0])
    with pytest.raises(ValueError, match="non-empty list of pixel indices"):
        ClassifierQuantizedImageConfig(base_config=tasa, row_idx=[], col_idx=[])
    with pytest.raises(ValueError, match="disagrees with the base model's image size"):
        ClassifierQuantizedImageConfig(base_config=tasa, row_idx=[0], col_idx=[0], image_size=8)
    with pytest.raises(ValueError, match="image size is unknown"):
        ClassifierQuantizedImageConfig(base_config=Wavenet3DConfig(), row_idx=[0], col_idx=[0])


# ------------------------------------------------------------------------------------ parity


@pytest.mark.parametrize("case", discover_cases({"ClassifierQuantizedImage"}))
def test_parity_classifier_quantized_image(case):
    case = require_case(case)
    model = convert_reference_checkpoint(case.registry_name, case.model_kwargs, case.state_dict)
    with torch.no_grad():
        out = model(input_ids=case.inputs["x"], labels=case.inputs["labels"])
    assert_float_close(out.base_output, case.outputs["base_logits"], "base_logits")
    assert_float_close(out.logits, case.outputs["logits"], "logits")
    assert_float_close(out.loss, case.outputs["loss_CrossEntropy"], "loss_CrossEntropy")


@pytest.mark.parametrize("case", discover_cases({"ClassifierQuantized"}))
def test_parity_classifier_quantized(case):
    """The reference forward raises (no base accepts `return_logits`), so there are no outputs to match:
    the converted weights must load strictly and drive the intended head (last hidden state -> reducer ->
    flatten -> classifier) to finite logits."""
    case = require_case(case)
    model = convert_reference_checkpoint(case.registry_name, case.model_kwargs, case.state_dict)
    x = case.inputs["x"]
    with torch.no_grad():
        out = model(input_ids=x)
    batch, channels = x.shape[:2]
    assert out.logits.shape == (batch, case.model_kwargs["num_classes"])
    assert torch.isfinite(out.logits).all()
    assert out.base_output.shape == (batch, channels, x.shape[-1], case.model_kwargs["d_model"])
    # The head applies the reference's own `reducer` / `classifier` weights to the last time step.
    state = case.state_dict
    reduced = out.base_output[:, :, -1] @ state["reducer.weight"].T + state["reducer.bias"]
    expected = reduced.flatten(1) @ state["classifier.weight"].T + state["classifier.bias"]
    assert_float_close(out.logits, expected, "logits from the reference head weights")


@pytest.mark.parametrize("case", discover_cases({"ClassifierContinuous"}))
def test_parity_classifier_continuous(case):
    """BENDR's fixes (batch-independent causal attention, causal position conv and encoder norm) change its
    features, so the recorded logits are reproduced through the reference wiring rebuilt from our modules
    (`tests.test_bendr.reference_wiring`) followed by our head: that checks the conversion of every weight
    and the head (last encoder step -> Linear). The fixed model loads the same weights strictly."""
    case = require_case(case)
    model = convert_reference_checkpoint(
        case.registry_name, case.model_kwargs, case.state_dict, base_overrides={"encoder_norm": "reference"}
    )
    x, labels = case.inputs["x"], case.inputs["labels"]
    with torch.no_grad():
        features, _ = reference_wiring(model.base_model, x)
        logits = model.classifier(features[..., -1])
        loss = model._loss(logits, labels)
        fixed = convert_reference_checkpoint(case.registry_name, case.model_kwargs, case.state_dict)(x, labels=labels)
    assert_float_close(logits, case.outputs["logits"], "logits (reference wiring)")
    assert_float_close(loss, case.outputs["loss_CrossEntropy"], "loss_CrossEntropy (reference wiring)")
    assert fixed.logits.shape == logits.shape and torch.isfinite(fixed.logits).all()
    assert (fixed.logits - case.outputs["logits"]).abs().max() > 1e-4  # the fixes do change the outputs
