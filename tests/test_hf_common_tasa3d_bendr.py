"""transformers' `ModelTesterMixin` and `ConfigTester` on TASA3D (`tasa3d`) and BENDR (`bendr_forecast`).

Both forecast through `forecast()`, not `GenerationMixin.generate()` (`can_generate()` is False), so the test
classes do not take the generation contract.
"""

from __future__ import annotations

import unittest

import torch
from transformers import AutoConfig

from brain_gen_hf.models.bendr.configuration_bendr import BENDRForecastConfig
from brain_gen_hf.models.bendr.modeling_bendr import BENDRForecastModel
from brain_gen_hf.models.tasa3d.configuration_tasa3d import TASA3DConfig
from brain_gen_hf.models.tasa3d.modeling_tasa3d import TASA3DModel
from tests.hf_common_checks import BrainGenConformanceChecks
from tests.test_hf_common_wavenet import NO_RESIZE
from tests.transformers_common import load_common_tests

ModelTesterMixin, ConfigTester, _ = load_common_tests()

STRICT_LOADING = "strict loading: a checkpoint without the model's weights raises OSError (by design)"
CONTINUOUS_INPUT = "BENDR reads continuous signals through a convolutional encoder: there is no token table"


class TASA3DModelTester:
    batch_size = 2
    image_size = (4, 4)
    seq_length = 6
    vocab_size = 32
    hidden_size = 4  # emb_dim
    num_hidden_layers = 2
    num_attention_heads = 2
    is_training = True
    main_output = "logits"

    def __init__(self, parent):
        self.parent = parent

    def get_config(self) -> TASA3DConfig:
        return TASA3DConfig(
            input_hw=list(self.image_size),
            emb_dim=self.hidden_size,
            quant_levels=self.vocab_size,
            depth=self.num_hidden_layers,
            num_down=1,
            heads=self.num_attention_heads,
        )

    def prepare_config_and_inputs_for_common(self):
        ids = torch.randint(0, self.vocab_size, (self.batch_size, *self.image_size, self.seq_length))
        return self.get_config(), {"input_ids": ids}

    def labels(self, inputs: dict) -> torch.Tensor:
        return torch.roll(inputs["input_ids"], -1, dims=-1)


class BENDRForecastModelTester:
    batch_size = 2
    num_channels = 3
    samples = 32
    seq_length = 8  # the start token + samples // downsampling - 1 encoder steps
    hidden_size = 48  # d_model
    num_hidden_layers = 2
    num_attention_heads = 2
    is_training = True
    main_output = "prediction"

    def __init__(self, parent):
        self.parent = parent

    def get_config(self) -> BENDRForecastConfig:
        return BENDRForecastConfig(
            channels=self.num_channels,
            samples=self.samples,
            encoder_h=16,
            enc_width=[3, 2],
            enc_downsample=[2, 2],
            transformer_layers=self.num_hidden_layers,
            attn_heads=self.num_attention_heads,
            d_model=self.hidden_size,
            dropout=0.0,
            position_encoder=5,
        )

    def prepare_config_and_inputs_for_common(self):
        signal = torch.randn(self.batch_size, self.num_channels, self.samples)
        return self.get_config(), {"input_values": signal}

    def labels(self, inputs: dict) -> torch.Tensor:
        return inputs["input_values"]  # the prediction covers the whole window: (B, C, samples)


class _CommonTest(BrainGenConformanceChecks, ModelTesterMixin):
    def _prepare_for_class(self, inputs_dict, model_class, return_labels=False):
        inputs = super()._prepare_for_class(inputs_dict, model_class, return_labels=return_labels)
        if return_labels:
            inputs["labels"] = self.model_tester.labels(inputs)
        return inputs

    def test_config(self):
        self.config_tester.run_common_tests()

    def test_auto_config_for_model(self):
        config_class = self.config_tester.config_class
        self.assertIsInstance(AutoConfig.for_model(config_class.model_type), config_class)

    @unittest.skip(reason=STRICT_LOADING)
    def test_model_weights_reload_no_missing_tied_weights(self):
        pass


class TASA3DCommonTest(_CommonTest, unittest.TestCase):
    all_model_classes = (TASA3DModel,)
    test_resize_embeddings = False  # NO_RESIZE

    def setUp(self):
        self.model_tester = TASA3DModelTester(self)
        self.config_tester = ConfigTester(self, config_class=TASA3DConfig, input_hw=[4, 4], num_down=1, heads=2)

    @unittest.skip(reason=NO_RESIZE)
    def test_resize_tokens_embeddings(self):
        pass

    @unittest.skip(reason=NO_RESIZE)
    def test_resize_embeddings_untied(self):
        pass


class BENDRForecastCommonTest(_CommonTest, unittest.TestCase):
    all_model_classes = (BENDRForecastModel,)
    test_resize_embeddings = False  # CONTINUOUS_INPUT

    def setUp(self):
        self.model_tester = BENDRForecastModelTester(self)
        # A signal model: no vocabulary.
        self.config_tester = ConfigTester(self, config_class=BENDRForecastConfig, has_text_modality=False)

    @unittest.skip(reason=CONTINUOUS_INPUT)
    def test_model_get_set_embeddings(self):
        pass

    @unittest.skip(reason=CONTINUOUS_INPUT)
    def test_resize_tokens_embeddings(self):
        pass

    @unittest.skip(reason=CONTINUOUS_INPUT)
    def test_resize_embeddings_untied(self):
        pass

    def test_input_embeddings_do_not_exist(self):
        config, _ = self.model_tester.prepare_config_and_inputs_for_common()
        with self.assertRaisesRegex(NotImplementedError, "no token embedding table"):
            BENDRForecastModel(config).get_input_embeddings()
