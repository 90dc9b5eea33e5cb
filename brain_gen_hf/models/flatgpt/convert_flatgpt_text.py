"""Reference (brain-gen) text-path FlatGPT (`trf_class: Qwen2_5_VideoText`, `tok_class: BPETokenizer`) -> FlatGPTText.

brain-gen's `tok_args.tokenizer_path` names a folder with the HF tokenizer its `train_bpe` script trained. The
converted model reads the ids of a brain_gen_hf `BPETokenizer` (the same character layout); pass the one whose ids
the checkpoint was trained on as `bpe_tokenizer=`. Weights are FlatGPT's (`convert_flatgpt.state_dict_from_reference`).
"""

from __future__ import annotations

import math
import warnings

from .configuration_flatgpt_text import FlatGPTTextConfig, text_tokenizer_config
from .convert_flatgpt import backbone_config_from_reference

# Reference kwargs with no effect on the text path's weights or positions.
_IGNORED = ("input_type", "train_tokenizer", "spatial_reduction", "temporal_reduction", "tokenizer_path")


def config_from_reference(reference_name: str, kwargs: dict, bpe_tokenizer=None, **overrides) -> FlatGPTTextConfig:
    kwargs = {k: v for k, v in kwargs.items() if k not in _IGNORED}
    if reference_name != "FlatGPT":
        raise ValueError(f"brain-gen's text path is FlatGPT with a BPETokenizer, not {reference_name!r}")
    if kwargs.get("trf_class") != "Qwen2_5_VideoText" or kwargs.get("tok_class") != "BPETokenizer":
        raise ValueError(
            "brain-gen's text path pairs trf_class 'Qwen2_5_VideoText' (channel positions) with tok_class "
            f"'BPETokenizer'; got {kwargs.get('trf_class')!r} with {kwargs.get('tok_class')!r}"
        )
    if bpe_tokenizer is None:
        raise ValueError(
            "converting a brain-gen BPE FlatGPT needs the brain_gen_hf BPETokenizer whose ids it reads: pass "
            "bpe_tokenizer=BPETokenizer.from_pretrained(folder)"
        )
    trf_args = dict(kwargs.pop("trf_args"))
    if trf_args.pop("sparse", False):
        raise ValueError("reference `sparse: true` on the text path is not supported (BPE tokens have no frames)")
    if trf_args.pop("layout_path", None) is not None:
        warnings.warn("reference `layout_path` has no effect on Qwen2_5_VideoText; converted without it", stacklevel=2)
    backbone, block_size, _ = backbone_config_from_reference("Qwen2_5_Video", trf_args)
    if block_size != 1:
        raise ValueError(f"the text path predicts one token at a time; reference block_size {block_size}")
    backbone.pop("hidden_size", None)
    backbone.pop("vocab_size", None)
    tok_args = dict(kwargs.pop("tok_args", None) or {})
    group_size = int(tok_args.get("group_size", 1))
    if group_size != bpe_tokenizer.group_size:
        raise ValueError(
            f"reference tok_args.group_size {group_size} differs from the BPETokenizer's group_size "
            f"{bpe_tokenizer.group_size}"
        )
    channels = math.prod(kwargs.pop("input_shape")[1:])  # what brain-gen's BPETokenizer decodes with
    if bpe_tokenizer.resolve_num_channels(channels) != channels or (bpe_tokenizer.num_channels not in (None, channels)):
        raise ValueError(
            f"the reference reads {channels} channels; the BPETokenizer has num_channels={bpe_tokenizer.num_channels}"
        )
    tokenizer_config = text_tokenizer_config(bpe_tokenizer) | {"num_channels": channels}
    if kwargs.get("vocab_size") != len(bpe_tokenizer):
        raise ValueError(
            f"reference vocab_size {kwargs.get('vocab_size')} differs from the BPETokenizer's {len(bpe_tokenizer)}"
        )
    kwargs.pop("trf_class")
    kwargs.pop("tok_class")
    kwargs.pop("token_corruption_cfg", None)  # BPE ids have no time steps to corrupt in blocks of
    return FlatGPTTextConfig(backbone_config=backbone, tokenizer_config=tokenizer_config, **kwargs, **overrides)
