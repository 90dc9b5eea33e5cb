"""transformers' `ModelTesterMixin` and `ConfigTester`, plus our generation contract, on STGPT2MEG (`stgpt2meg`).

`generate()` emits whole time steps: the C tokens of a step come from one step's logits, so `max_new_tokens` must be
a multiple of C and beam search raises. The contract reads the flat time-major form `(B, T * C)` of the grid.
"""

from __future__ import annotations

import unittest

import torch
from einops import rearrange
from transformers import AutoConfig

from brain_gen_hf.models.stgpt2meg.configuration_stgpt2meg import STGPT2MEGConfig
from brain_gen_hf.models.stgpt2meg.modeling_stgpt2meg import STGPT2MEGForCausalLM
from tests.generation_contract import GenerationContract
from tests.hf_common_checks import BrainGenConformanceChecks
from tests.test_hf_common_wavenet import NO_RESIZE
from tests.transformers_common import load_common_tests

ModelTesterMixin, ConfigTester, _ = load_common_tests()

STRICT_LOADING = "strict loading: a checkpoint without the model's weights raises OSError (by design)"


class STGPT2MEGModelTester:
    batch_size = 2
    num_channels = 3
    seq_length = 5
    vocab_size = 32
    hidden_size = 16
    num_hidden_layers = 2
    num_attention_heads = 2
    is_training = True
    main_output = "logits"

    def __init__(self, parent):
        self.parent = parent

    def get_config(self) -> STGPT2MEGConfig:
        return STGPT2MEGConfig(
            num_channels=self.num_channels,
            vocab_size=self.vocab_size,
            d_model=self.hidden_size,
            layers=self.num_hidden_layers,
            num_heads=self.num_attention_heads,
            experts_per_token=2,
            moe_intermediate_size=8,
        )

    def prepare_config_and_inputs_for_common(self):
        ids = torch.randint(0, self.vocab_size, (self.batch_size, self.num_channels, self.seq_length))
        return self.get_config(), {"input_ids": ids}

    def labels(self, inputs: dict) -> torch.Tensor:
        return torch.roll(inputs["input_ids"], -1, dims=-1)


class STGPT2MEGCommonTest(BrainGenConformanceChecks, ModelTesterMixin, GenerationContract, unittest.TestCase):
    all_model_classes = (STGPT2MEGForCausalLM,)
    test_resize_embeddings = False  # NO_RESIZE
    generation_step_tokens = STGPT2MEGModelTester.num_channels  # one time step: a token per channel
    generation_any_max_new_tokens = False
    # A step's C tokens are drawn together from one step's logits; a beam step would rank Q**C continuations.
    supports_beam_search = False
    beam_search_error = "no beam search"

    def setUp(self):
        self.model_tester = STGPT2MEGModelTester(self)
        self.config_tester = ConfigTester(self, config_class=STGPT2MEGConfig, num_heads=2)

    def _prepare_for_class(self, inputs_dict, model_class, return_labels=False):
        inputs = super()._prepare_for_class(inputs_dict, model_class, return_labels=return_labels)
        if return_labels:
            inputs["labels"] = self.model_tester.labels(inputs)
        return inputs

    # ------------------------------------------------------------ generation contract hooks
    def generation_inputs(self, config, inputs: dict) -> dict:
        return {"input_ids": rearrange(inputs["input_ids"], "b c t -> b (t c)")}

    def next_step_logits(self, model, inputs: dict, sequence: torch.Tensor) -> torch.Tensor:
        grid = rearrange(sequence, "b (t c) -> b c t", c=self.model_tester.num_channels)
        with torch.no_grad():
            return model(grid).logits[:, :, -1]  # (B, C, Q): the next step, one token per channel

    # ------------------------------------------------------------ config and skips
    def test_config(self):
        self.config_tester.run_common_tests()

    def test_auto_config_for_model(self):
        self.assertIsInstance(AutoConfig.for_model("stgpt2meg"), STGPT2MEGConfig)

    @unittest.skip(reason=NO_RESIZE)
    def test_resize_tokens_embeddings(self):
        pass

    @unittest.skip(reason=NO_RESIZE)
    def test_resize_embeddings_untied(self):
        pass

    @unittest.skip(reason=STRICT_LOADING)
    def test_model_weights_reload_no_missing_tied_weights(self):
        pass

    @unittest.skip(
        reason="one module holds embeddings, blocks, norm and head under the reference's top-level names (no base "
        "model + LM head split), so brain-gen checkpoints load with their own keys"
    )
    def test_model_base_model_prefix(self):
        pass
