"""transformers' `ModelTesterMixin` and `ConfigTester` on the classifier heads (`classifier_continuous`,
`classifier_quantized`, `classifier_quantized_image`), each on a tiny base from its family's tester."""

from __future__ import annotations

import json
import tempfile
import unittest

import torch
from transformers import AutoConfig

from brain_gen_hf.models.classifier.configuration_classifier import (
    ClassifierContinuousConfig,
    ClassifierQuantizedConfig,
    ClassifierQuantizedImageConfig,
)
from brain_gen_hf.models.classifier.modeling_classifier import (
    ClassifierContinuousModel,
    ClassifierQuantizedImageModel,
    ClassifierQuantizedModel,
)
from tests.hf_common_checks import BrainGenConformanceChecks
from tests.test_hf_common_tasa3d_bendr import (
    CONTINUOUS_INPUT,
    STRICT_LOADING,
    BENDRForecastModelTester,
    TASA3DModelTester,
)
from tests.test_hf_common_wavenet import NO_RESIZE, WavenetFullChannelModelTester
from tests.transformers_common import load_common_tests

ModelTesterMixin, ConfigTester, _ = load_common_tests()

NUM_CLASSES = 3


class _ClassifierTester:
    """The base model's tester plus a head: the classifier reads the same inputs and returns the base's states."""

    base_tester_class: type
    is_training = True
    main_output = "logits"

    def __init__(self, parent):
        self.parent = parent
        self.base = self.base_tester_class(parent)
        for name in ("batch_size", "seq_length", "hidden_size", "num_hidden_layers", "num_attention_heads"):
            if hasattr(self.base, name):
                setattr(self, name, getattr(self.base, name))

    def head_config(self, base_config):
        raise NotImplementedError

    def base_config_json(self) -> dict:
        """The base config as the head's config.json nests it (ConfigTester compares the JSON with its input)."""
        nested = json.loads(self.base.get_config().to_json_string(use_diff=False))
        nested.pop("transformers_version")  # a nested config does not repeat it
        return nested

    def get_config(self):
        return self.head_config(self.base.get_config())

    def prepare_config_and_inputs_for_common(self):
        _, inputs = self.base.prepare_config_and_inputs_for_common()
        return self.get_config(), inputs

    def labels(self, inputs: dict) -> torch.Tensor:
        return torch.arange(self.batch_size) % NUM_CLASSES


class ClassifierContinuousModelTester(_ClassifierTester):
    base_tester_class = BENDRForecastModelTester

    def head_config(self, base_config):
        return ClassifierContinuousConfig(base_config=base_config, num_classes=NUM_CLASSES)


class ClassifierQuantizedModelTester(_ClassifierTester):
    base_tester_class = WavenetFullChannelModelTester

    def head_config(self, base_config):
        return ClassifierQuantizedConfig(base_config=base_config, num_classes=NUM_CLASSES, red_dim=4)


class ClassifierQuantizedImageModelTester(_ClassifierTester):
    base_tester_class = TASA3DModelTester
    row_idx, col_idx = [0, 1, 3], [0, 2, 3]

    def head_config(self, base_config):
        return ClassifierQuantizedImageConfig(
            base_config=base_config, num_classes=NUM_CLASSES, red_dim=4, row_idx=self.row_idx, col_idx=self.col_idx
        )


class _ClassifierCommonTest(BrainGenConformanceChecks, ModelTesterMixin):
    head_kwargs: dict = {}

    def _prepare_for_class(self, inputs_dict, model_class, return_labels=False):
        inputs = super()._prepare_for_class(inputs_dict, model_class, return_labels=return_labels)
        if return_labels:
            inputs["labels"] = self.model_tester.labels(inputs)
        return inputs

    def test_config(self):
        self.config_tester.run_common_tests()

    def test_auto_config_for_model(self):
        config_class = self.config_tester.config_class
        config = AutoConfig.for_model(config_class.model_type)
        self.assertIsInstance(config, config_class)
        self.assertEqual(config.base_config.model_type, config_class.base_model_types[0])

    def test_head_loads_from_its_base_checkpoint(self):
        """`HeadModel.from_pretrained(base_folder)`: base weights loaded, the new head initialised and reported."""
        model_class = self.all_model_classes[0]
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        base = model_class(config).base_model
        with tempfile.TemporaryDirectory() as folder:
            base.save_pretrained(folder)
            with self.assertLogs("brain_gen_hf.models.classifier.modeling_classifier", level="WARNING") as logs:
                model, info = model_class.from_pretrained(
                    folder, num_labels=NUM_CLASSES, output_loading_info=True, **self.head_kwargs
                )
        head_keys = {k for k in model.state_dict() if not k.startswith("base_model.")}
        self.assertEqual(info["missing_keys"], head_keys)
        self.assertEqual(info["unexpected_keys"], set())
        self.assertIn("the head is new", "".join(logs.output))
        self.assertEqual(model.config.num_classes, NUM_CLASSES)
        for key, value in base.state_dict().items():
            torch.testing.assert_close(model.base_model.state_dict()[key], value, rtol=0, atol=0)
        with torch.no_grad():
            self.assertEqual(model.eval()(**inputs).logits.shape, (self.model_tester.batch_size, NUM_CLASSES))

    @unittest.skip(reason=STRICT_LOADING)
    def test_model_weights_reload_no_missing_tied_weights(self):
        pass


class ClassifierContinuousCommonTest(_ClassifierCommonTest, unittest.TestCase):
    all_model_classes = (ClassifierContinuousModel,)
    # The head reads the base's contextualised features: BENDR's signal decoder (`project`) is not on its path.
    test_all_params_have_gradient = False
    test_resize_embeddings = False  # CONTINUOUS_INPUT

    def setUp(self):
        self.model_tester = ClassifierContinuousModelTester(self)
        base = self.model_tester.base_config_json()
        self.config_tester = ConfigTester(
            self, config_class=ClassifierContinuousConfig, has_text_modality=False, base_config=base
        )

    @unittest.skip(reason=CONTINUOUS_INPUT)
    def test_model_get_set_embeddings(self):
        pass

    @unittest.skip(reason=CONTINUOUS_INPUT)
    def test_resize_tokens_embeddings(self):
        pass

    @unittest.skip(reason=CONTINUOUS_INPUT)
    def test_resize_embeddings_untied(self):
        pass


class ClassifierQuantizedCommonTest(_ClassifierCommonTest, unittest.TestCase):
    all_model_classes = (ClassifierQuantizedModel,)
    has_attentions = False  # the WaveNet base is convolutional
    # The head reads the base's last hidden state: WaveNet's skip convs and logits head are not on its path.
    test_all_params_have_gradient = False
    test_resize_embeddings = False  # NO_RESIZE

    def setUp(self):
        self.model_tester = ClassifierQuantizedModelTester(self)
        base = self.model_tester.base_config_json()
        self.config_tester = ConfigTester(
            self, config_class=ClassifierQuantizedConfig, has_text_modality=False, base_config=base
        )

    @unittest.skip(reason=NO_RESIZE)
    def test_resize_tokens_embeddings(self):
        pass

    @unittest.skip(reason=NO_RESIZE)
    def test_resize_embeddings_untied(self):
        pass


class ClassifierQuantizedImageCommonTest(_ClassifierCommonTest, unittest.TestCase):
    all_model_classes = (ClassifierQuantizedImageModel,)
    test_resize_embeddings = False  # NO_RESIZE
    head_kwargs = {"row_idx": ClassifierQuantizedImageModelTester.row_idx, "col_idx": [0, 2, 3]}

    def setUp(self):
        self.model_tester = ClassifierQuantizedImageModelTester(self)
        base = self.model_tester.base_config_json()
        self.config_tester = ConfigTester(
            self,
            config_class=ClassifierQuantizedImageConfig,
            has_text_modality=False,
            base_config=base,
            row_idx=[0],
            col_idx=[0],
        )

    @unittest.skip(reason=NO_RESIZE)
    def test_resize_tokens_embeddings(self):
        pass

    @unittest.skip(reason=NO_RESIZE)
    def test_resize_embeddings_untied(self):
        pass
