"""transformers' `ModelTesterMixin` and `ConfigTester` on the WaveNet family (`wavenet_full_channel`, `wavenet3d`).

WaveNet forecasts through `forecast()` (a streaming convolution cache), not `GenerationMixin.generate()`, so
`can_generate()` is False and the test classes do not take the generation contract (transformers' mixin checks that).
"""

from __future__ import annotations

import unittest

import torch
from transformers import AutoConfig

from brain_gen_hf.models.wavenet.configuration_wavenet import Wavenet3DConfig, WavenetFullChannelConfig
from brain_gen_hf.models.wavenet.modeling_wavenet import Wavenet3DModel, WavenetFullChannelModel
from tests.hf_common_checks import BrainGenConformanceChecks
from tests.transformers_common import load_common_tests

ModelTesterMixin, ConfigTester, _ = load_common_tests()

# Why transformers' resize tests do not apply to a mu-law token model.
NO_RESIZE = (
    "the vocabulary is the mu-law quantiser's bins (quant_levels = mu + 1): encoding, decoding and the logits head "
    "all follow quant_levels, so the token table is not resized on its own"
)


class _TokenTester:
    batch_size = 2
    vocab_size = 32
    is_training = True
    main_output = "logits"

    def __init__(self, parent):
        self.parent = parent

    def prepare_config_and_inputs_for_common(self):
        ids = torch.randint(0, self.vocab_size, (self.batch_size, *self.input_shape))
        return self.get_config(), {"input_ids": ids}

    def labels(self, inputs: dict) -> torch.Tensor:
        return torch.roll(inputs["input_ids"], -1, dims=-1)


class WavenetFullChannelModelTester(_TokenTester):
    num_channels = 3
    seq_length = 24
    input_shape = (num_channels, seq_length)
    hidden_size = 16  # residual width; the embedding width matches, so every hidden state has it
    num_hidden_layers = 2  # the 1x1 input layer + one dilated layer

    def get_config(self) -> WavenetFullChannelConfig:
        return WavenetFullChannelConfig(
            in_channels=self.num_channels,
            quant_levels=self.vocab_size,
            quant_emb=self.hidden_size,
            residual_channels=self.hidden_size,
            dilation_channels=8,
            skip_channels=8,
            head_channels=8,
            dilations=[2],
        )


class Wavenet3DModelTester(_TokenTester):
    image_size = (3, 4)
    seq_length = 10
    input_shape = (*image_size, seq_length)
    hidden_size = 8
    num_hidden_layers = 2

    def get_config(self) -> Wavenet3DConfig:
        return Wavenet3DConfig(
            quant_levels=self.vocab_size,
            quant_emb=self.hidden_size,
            residual_channels=self.hidden_size,
            dilation_channels=8,
            skip_channels=8,
            head_channels=8,
            dilations=[2],
            spatial_kernel_size=3,
            image_size=list(self.image_size),
        )


class _WavenetCommonTest(BrainGenConformanceChecks, ModelTesterMixin):
    has_attentions = False  # a convolutional model: no attention to return or to swap implementations of
    # The last layer's residual 1x1 conv feeds no later layer (the logits head reads the skips); its output is the
    # last hidden state, which heads on top read (ClassifierQuantized trains it). Kept as in the reference.
    test_all_params_have_gradient = False
    test_resize_embeddings = False  # NO_RESIZE

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

    @unittest.skip(reason=NO_RESIZE)
    def test_resize_tokens_embeddings(self):
        pass

    @unittest.skip(reason=NO_RESIZE)
    def test_resize_embeddings_untied(self):
        pass

    @unittest.skip(reason="strict loading: a checkpoint without the model's weights raises OSError (by design)")
    def test_model_weights_reload_no_missing_tied_weights(self):
        pass


class WavenetFullChannelCommonTest(_WavenetCommonTest, unittest.TestCase):
    all_model_classes = (WavenetFullChannelModel,)

    def setUp(self):
        self.model_tester = WavenetFullChannelModelTester(self)
        # A conv model: width and depth, no attention heads.
        self.config_tester = ConfigTester(
            self, config_class=WavenetFullChannelConfig, common_properties=["hidden_size", "num_hidden_layers"]
        )

    def test_input_embeddings_are_the_per_channel_tables(self):
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        model = WavenetFullChannelModel(config).eval()
        tables = model.get_input_embeddings().weight.view(config.in_channels, config.quant_levels, -1)
        ids = inputs["input_ids"]
        expected = tables[torch.arange(config.in_channels).view(1, -1, 1), ids]  # (B, C, T, E)
        with torch.no_grad():
            hidden = model(**inputs, output_hidden_states=True).hidden_states[0]
        torch.testing.assert_close(hidden, expected, rtol=0, atol=0)


class Wavenet3DCommonTest(_WavenetCommonTest, unittest.TestCase):
    all_model_classes = (Wavenet3DModel,)

    def setUp(self):
        self.model_tester = Wavenet3DModelTester(self)
        self.config_tester = ConfigTester(
            self, config_class=Wavenet3DConfig, common_properties=["hidden_size", "num_hidden_layers"]
        )
