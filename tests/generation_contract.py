"""Generation behaviour every generative brain_gen_hf model must show (our stand-in for transformers'
`GenerationTesterMixin`, which its source distribution does not ship).

A test class mixing this in (next to `ModelTesterMixin`) provides `self.model_tester` with
`prepare_config_and_inputs_for_common()` and sets `all_model_classes`; every test runs on each class of
`all_generative_model_classes` (the classes whose `can_generate()` is true).

What is checked, each through `generate()` as a transformers user calls it:

* greedy decoding with the KV cache equals greedy decoding without it, and equals the argmax of `forward` logits
  on the growing sequence (computed step by step here, without `generate`);
* seeded sampling is reproducible, another seed gives another sample, and `top_k=1` sampling is greedy;
* `num_return_sequences=n` returns `B * n` rows, the n rows of input i next to each other, each starting with it;
  greedy decoding with `n > 1` raises `ValueError` (as transformers does without beams);
* a `transformers` `BaseStreamer` receives the prompt first, then every new token in order, then `end()` once;
* beam search returns `num_return_sequences` rows per input and is deterministic, or (for a model that cannot
  search beams) raises a `ValueError` that says so;
* `max_new_tokens` fixes the number of new tokens; a model that emits several tokens per step either honours any
  value or raises `ValueError` naming the valid multiples;
* the `GenerationConfig` is saved and loaded with the model, and `generate()` without arguments follows it;
* `return_dict_in_generate=True` returns the sequences in a `ModelOutput`; an unknown keyword raises.

Hooks (class attributes / methods a family's test class overrides):

* `generation_step_tokens` (int, default 1): tokens one generation step emits; the tests ask for multiples of it.
* `generation_any_max_new_tokens` (bool, default True): False when a `max_new_tokens` that is not a multiple of
  `generation_step_tokens` must raise `ValueError` mentioning "multiple" instead of being honoured exactly.
* `supports_beam_search` (bool, default True) and `beam_search_error` (regex the `ValueError` of
  `generate(num_beams=2)` must match when beams are not supported; say why in the test class).
* `generation_steps` (int, default 2): steps most tests generate (the prompt plus them must fit the model).
* `generation_inputs(config, inputs)`: the `generate()` keywords from the tester's inputs (default: without
  `labels`).
* `next_step_logits(model, inputs, sequence)`: logits `(rows, generation_step_tokens, V)` of the next step read
  from `forward` (default: the last `generation_step_tokens` positions of `model(**inputs).logits`, with the main
  input replaced by `sequence`).
"""

from __future__ import annotations

import copy
import tempfile

import torch
from transformers import GenerationConfig
from transformers.generation.streamers import BaseStreamer
from transformers.utils import ModelOutput


class RecordingStreamer(BaseStreamer):
    """Keeps every `put` (as a CPU tensor) and counts `end` calls."""

    def __init__(self):
        self.puts: list[torch.Tensor] = []
        self.ends = 0

    def put(self, value):
        if self.ends:
            raise AssertionError("put() after end()")
        self.puts.append(value.detach().cpu().clone())

    def end(self):
        self.ends += 1


class GenerationContract:
    """Generation tests shared by every family that can `generate()` (see the module docstring for the hooks)."""

    generation_step_tokens: int = 1
    generation_any_max_new_tokens: bool = True
    supports_beam_search: bool = True
    beam_search_error: str = "beam"
    generation_steps: int = 2

    # ------------------------------------------------------------------ hooks
    def generation_inputs(self, config, inputs: dict) -> dict:
        return {k: v for k, v in inputs.items() if k != "labels"}

    def next_step_logits(self, model, inputs: dict, sequence: torch.Tensor) -> torch.Tensor:
        step_inputs = dict(inputs, **{model.main_input_name: sequence})
        step_inputs.pop("attention_mask", None)
        with torch.no_grad():
            return model(**step_inputs).logits[:, -self.generation_step_tokens :]

    # ------------------------------------------------------------------ helpers
    def _generation_model(self, model_class, seed: int = 0):
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        torch.manual_seed(seed)
        model = model_class(config).eval()
        return model, self.generation_inputs(config, inputs)

    def _new_tokens(self, steps: int | None = None) -> int:
        return self.generation_step_tokens * (self.generation_steps if steps is None else steps)

    @staticmethod
    def _sequences(output) -> torch.Tensor:
        return output.sequences if isinstance(output, ModelOutput) else output

    def _prompt(self, model, inputs) -> torch.Tensor:
        return inputs[model.main_input_name]

    def _assert_continues(self, output: torch.Tensor, prompt: torch.Tensor, new: int, copies: int = 1) -> None:
        """`output` holds `copies` rows per prompt row (next to each other), each the prompt plus `new` tokens."""
        self.assertEqual(tuple(output.shape), (prompt.shape[0] * copies, prompt.shape[1] + new))
        expected = prompt.repeat_interleave(copies, dim=0)
        self.assertTrue(torch.equal(output[:, : prompt.shape[1]], expected), "the prompt is not kept in front")

    # ------------------------------------------------------------------ greedy
    def test_generate_greedy_cached_equals_uncached(self):
        new = self._new_tokens()
        for model_class in self.all_generative_model_classes:
            model, inputs = self._generation_model(model_class)
            cached = model.generate(**inputs, max_new_tokens=new, do_sample=False, use_cache=True)
            uncached = model.generate(**inputs, max_new_tokens=new, do_sample=False, use_cache=False)
            self._assert_continues(cached, self._prompt(model, inputs), new)
            self.assertTrue(torch.equal(cached, uncached), f"{model_class.__name__}: cache changes greedy ids")

    def test_generate_greedy_is_forward_argmax(self):
        steps = self.generation_steps
        for model_class in self.all_generative_model_classes:
            model, inputs = self._generation_model(model_class)
            sequence = self._prompt(model, inputs)
            for _ in range(steps):
                next_ids = self.next_step_logits(model, inputs, sequence).argmax(-1)
                sequence = torch.cat([sequence, next_ids], dim=1)
            generated = model.generate(**inputs, max_new_tokens=self._new_tokens(), do_sample=False, use_cache=False)
            self.assertTrue(torch.equal(generated, sequence), f"{model_class.__name__}: greedy != forward argmax")

    # ------------------------------------------------------------------ sampling
    def test_generate_sampling_is_seeded(self):
        new = self._new_tokens(4)
        for model_class in self.all_generative_model_classes:
            model, inputs = self._generation_model(model_class)
            runs = []
            for seed in (3, 3, 4):
                torch.manual_seed(seed)
                runs.append(model.generate(**inputs, max_new_tokens=new, do_sample=True, top_k=0))
            self._assert_continues(runs[0], self._prompt(model, inputs), new)
            self.assertTrue(torch.equal(runs[0], runs[1]), f"{model_class.__name__}: same seed, other sample")
            self.assertFalse(torch.equal(runs[0], runs[2]), f"{model_class.__name__}: another seed, same sample")

    def test_generate_top_k_1_sampling_is_greedy(self):
        new = self._new_tokens()
        for model_class in self.all_generative_model_classes:
            model, inputs = self._generation_model(model_class)
            greedy = model.generate(**inputs, max_new_tokens=new, do_sample=False)
            torch.manual_seed(0)
            sampled = model.generate(**inputs, max_new_tokens=new, do_sample=True, top_k=1)
            self.assertTrue(torch.equal(greedy, sampled), f"{model_class.__name__}: top_k=1 is not greedy")

    def test_generate_num_return_sequences(self):
        new, copies = self._new_tokens(), 3
        for model_class in self.all_generative_model_classes:
            model, inputs = self._generation_model(model_class)
            prompt = self._prompt(model, inputs)
            torch.manual_seed(0)
            out = model.generate(**inputs, max_new_tokens=new, do_sample=True, num_return_sequences=copies)
            self._assert_continues(out, prompt, new, copies)
            # The copies are independent draws: with the near-uniform logits of a fresh model they differ.
            first = out[:copies, prompt.shape[1] :]
            self.assertFalse(all(torch.equal(first[0], row) for row in first[1:]), "the copies are one sample")
            with self.assertRaisesRegex(ValueError, "num_return_sequences"):
                model.generate(**inputs, max_new_tokens=new, do_sample=False, num_return_sequences=copies)

    # ------------------------------------------------------------------ streaming
    def test_generate_streamer_receives_every_token(self):
        new = self._new_tokens()
        for model_class in self.all_generative_model_classes:
            model, inputs = self._generation_model(model_class)
            prompt = self._prompt(model, inputs)
            streamer = RecordingStreamer()
            out = model.generate(**inputs, max_new_tokens=new, do_sample=False, streamer=streamer)
            self.assertEqual(streamer.ends, 1, "end() must be called once")
            self.assertGreater(len(streamer.puts), 1, "the streamer got no new tokens")
            self.assertTrue(torch.equal(streamer.puts[0], prompt.cpu()), "the first put must be the prompt")
            streamed = torch.cat([p.reshape(prompt.shape[0], -1) for p in streamer.puts[1:]], dim=1)
            self.assertTrue(torch.equal(streamed, out[:, prompt.shape[1] :].cpu()), "streamed != generated tokens")

    # ------------------------------------------------------------------ beam search
    def test_generate_beam_search(self):
        new = self._new_tokens()
        for model_class in self.all_generative_model_classes:
            model, inputs = self._generation_model(model_class)
            if not self.supports_beam_search:
                with self.assertRaisesRegex(ValueError, self.beam_search_error):
                    model.generate(**inputs, max_new_tokens=new, num_beams=2, do_sample=False)
                continue
            prompt = self._prompt(model, inputs)
            kwargs = {"max_new_tokens": new, "num_beams": 3, "do_sample": False}
            first = model.generate(**inputs, **kwargs, num_return_sequences=2)
            self._assert_continues(first, prompt, new, 2)
            self.assertTrue(torch.equal(first, model.generate(**inputs, **kwargs, num_return_sequences=2)))
            best = model.generate(**inputs, **kwargs)
            self.assertTrue(torch.equal(best, first[::2]), "the best beam is not the first returned sequence")

    # ------------------------------------------------------------------ lengths and config
    def test_generate_max_new_tokens(self):
        for model_class in self.all_generative_model_classes:
            model, inputs = self._generation_model(model_class)
            prompt = self._prompt(model, inputs)
            for steps in (1, self.generation_steps):
                out = model.generate(**inputs, max_new_tokens=self._new_tokens(steps), do_sample=False)
                self._assert_continues(out, prompt, self._new_tokens(steps))
            if self.generation_step_tokens == 1:
                continue
            partial = self.generation_step_tokens + 1
            if self.generation_any_max_new_tokens:
                out = model.generate(**inputs, max_new_tokens=partial, do_sample=False)
                self._assert_continues(out, prompt, partial)
            else:
                with self.assertRaisesRegex(ValueError, f"multiple of {self.generation_step_tokens}"):
                    model.generate(**inputs, max_new_tokens=partial, do_sample=False)

    def test_generation_config_saved_and_loaded(self):
        new = self._new_tokens()
        for model_class in self.all_generative_model_classes:
            model, inputs = self._generation_model(model_class)
            # top_k=1 sampling draws the argmax: the loaded model must generate the greedy continuation.
            model.generation_config = GenerationConfig(max_new_tokens=new, do_sample=True, top_k=1)
            with tempfile.TemporaryDirectory() as folder:
                model.save_pretrained(folder)
                loaded = model_class.from_pretrained(folder).eval()
            self.assertEqual(loaded.generation_config.max_new_tokens, new)
            self.assertEqual((loaded.generation_config.do_sample, loaded.generation_config.top_k), (True, 1))
            out = loaded.generate(**inputs)
            self._assert_continues(out, self._prompt(model, inputs), new)
            self.assertTrue(torch.equal(out, model.generate(**inputs, do_sample=False)))

    def test_generate_return_dict_and_unknown_keyword(self):
        new = self._new_tokens()
        for model_class in self.all_generative_model_classes:
            model, inputs = self._generation_model(model_class)
            plain = model.generate(**inputs, max_new_tokens=new, do_sample=False)
            output = model.generate(**inputs, max_new_tokens=new, do_sample=False, return_dict_in_generate=True)
            self.assertIsInstance(output, ModelOutput)
            self.assertTrue(torch.equal(output.sequences, plain))
            with self.assertRaises((ValueError, TypeError)):
                model.generate(**copy.copy(inputs), max_new_tokens=new, not_a_generation_keyword=1)
