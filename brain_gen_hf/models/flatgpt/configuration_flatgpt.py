"""Configs of the FlatGPT family.

A FlatGPT config composes two sub-configs, the way transformers nests `text_config`:

* `backbone_config`: the transformers decoder (Qwen2.5-VL text, Qwen3-VL text, SmolLM3, Llama, Gemma 3, ...),
  stored as its own config so one `save_pretrained` folder rebuilds everything;
* `tokenizer_config`: the tokenizer that turns signals into the LM's `input_ids`. In every variant it is a nested
  config resolved by its `model_type`: a `FlatTokenizerConfig` (which HF flat tokenizer lays the mu-law bins
  out, see `tokenization_flatgpt.py`) here, the brain tokenizer's config for the RVQ variants.

The token grid is `input_shape = (T, H, W)` raw samples/channels/levels; the language model sees the
reduced grid `(T // temporal_reduction, H // spatial_reduction[0], W // spatial_reduction[1])`
flattened in (t, h, w) order.
"""

from __future__ import annotations

import math

from huggingface_hub.errors import StrictDataclassError
from transformers import CONFIG_MAPPING, AutoConfig, PreTrainedConfig

from ...configuration_utils import (
    SUB_CONFIG_CLASSES,
    BrainGenConfig,
    require,
    require_int_list,
    require_positive_int,
    sub_config_from,
)
from .decoder_kinds import VIDEO_ROPE_BACKBONES, decoder_kind
from .sensor_layout_positions import check_rope_layout_positions
from .sparse_attention import check_sparse_attention

FLAT_TOKENIZERS = ("AmplitudeTokenizer", "AmplitudeMixTokenizer", "DelimitedTokenizer")
FLAT_TOKENIZER_TYPE = "flat_signal_tokenizer"

# Backbone fields that FlatGPT owns (set from the top-level config, never independently).
_OWNED_BACKBONE_FIELDS = ("hidden_size", "vocab_size")
# Decoders that name their model width a second time (xLSTM's token table is `embedding_dim` wide).
_WIDTH_ALIASES = {"xlstm": ("embedding_dim",)}


def _backbone_config_from_dict(data: dict) -> PreTrainedConfig:
    data = dict(data)
    model_type = data.pop("model_type", None)
    require(
        isinstance(model_type, str) and model_type in CONFIG_MAPPING,
        f"`backbone_config.model_type` must name a transformers decoder registered with AutoConfig (e.g. "
        f"'qwen2_5_vl_text', 'smollm3', 'llama', 'qwen3', 'gemma3_text', 'minimax', 'falcon_h1', 'falcon_mamba', "
        f"'xlstm'), got {model_type!r}",
    )
    for alias in _WIDTH_ALIASES.get(model_type, ()):
        given = data.get(alias)
        require(
            given is None or given == data["hidden_size"],
            f"`backbone_config.{alias}` ({given}) is {model_type}'s name for the model width and disagrees with "
            f"`hidden_size` ({data['hidden_size']}); set the width once, as `hidden_size`",
        )
        data[alias] = data["hidden_size"]
    # Brain tokens have no text special tokens; transformers' text defaults would point outside the vocabulary.
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        data.setdefault(key, None)
    try:
        return AutoConfig.for_model(model_type, **data)
    except (TypeError, ValueError, StrictDataclassError) as error:
        raise ValueError(f"`backbone_config` is not a valid {model_type} config: {error}") from error


def _default_mrope_section(head_dim: int) -> list[int] | int:
    """Qwen2.5-VL's (t, h, w) split of the head's `head_dim / 2` frequencies in its proportions ([16, 24, 24] of
    64), or brain-gen's int form (2 frequencies per chunk) for heads too narrow for three sections."""
    half = head_dim // 2
    spatial = 3 * half // 8
    return [half - 2 * spatial, spatial, spatial] if spatial > 0 else 1


class FlatTokenizerConfig(PreTrainedConfig):
    r"""
    The flat tokenizer of an amplitude FlatGPT: which `brain_gen_hf.tokenizers` class lays a mu-law bin grid out
    as the LM's sequence. Its mu (`vocab_size - 1`, or `delimiter_id - 1`) and channel count (`input_shape`) come
    from the LM config, so the tokenizer never disagrees with the model.

    Args:
        tokenizer_class (`str`): `"AmplitudeTokenizer"`, `"AmplitudeMixTokenizer"` or `"DelimitedTokenizer"`.
        delimiter_id (`int`, *optional*): the DelimitedTokenizer's step delimiter; the last id of the vocabulary.
    """

    model_type = FLAT_TOKENIZER_TYPE

    tokenizer_class: str | None = None
    delimiter_id: int | None = None


SUB_CONFIG_CLASSES.setdefault(FLAT_TOKENIZER_TYPE, FlatTokenizerConfig)


class FlatGPTBaseConfig(BrainGenConfig):
    r"""
    What every FlatGPT variant shares: the backbone, the token grid and its reductions, block prediction and
    corruption. A variant adds its `tokenizer_config` (`_init_tokenizer_config`) and its own checks
    (`_validate_variant`).

    Args:
        backbone_config (`dict` or `PreTrainedConfig`): the decoder: any transformers decoder registered with
            `AutoModelForCausalLM` whose forward takes `inputs_embeds` (see `decoder_kinds.py`). `qwen2_5_vl_text`
            (3-D multimodal RoPE over the reduced grid) and `qwen3_vl_text` (interleaved 3-D RoPE) get grid
            positions; text decoders (`smollm3`, `llama`, `qwen3`, `gemma3_text`, `minimax`, `falcon_h1`, ...) 1-D
            positions; recurrent ones (`falcon_mamba`, `xlstm`) none. `hidden_size` / `vocab_size` are taken from
            this config. `block_size > 1` needs a decoder whose layers are all softmax attention.
        tokenizer_config (`dict` or `PreTrainedConfig`): the tokenizer's nested config (see the module docstring).
        vocab_size (`int`): token vocabulary V (256 mu-law bins, +1 for a delimiter).
        hidden_size (`int`): model width.
        input_shape (`list[int]`): raw grid `(T, H, W)` of one training example.
        spatial_reduction (`int` or `list[int]`): `(h, w)` reduction from raw to token grid.
        temporal_reduction (`int`): time reduction from raw samples to token steps.
        block_size (`int`): tokens predicted in parallel; > 1 uses a block-causal mask (full attention within a
            block) and position p predicts token p + block_size.
        token_corruption (`dict`, *optional*): training-time input corruption `{"p_start", "p_end",
            "block_len_steps", "tokens_per_step"}` (see `flatgpt_layers.corrupt_tokens`).
        rope_dtype (`str`, *optional*): dtype the 3-D RoPE cos/sin tables are rounded to before use. brain-gen's
            Qwen copies round them to `"bfloat16"` (checkpoints were trained that way); `None` keeps the
            activation dtype.
        sparse_attention (`dict`, *optional*): block-sparse causal attention (brain-gen's `sparse: true`, see
            `sparse_attention.py` for the keys and their defaults); `None` is dense causal attention.
        rope_layout_positions (`list[list[float]]`, *optional*): one [x, y] sensor position per spatial cell of the RoPE
            grid; the 3-D RoPE h/w ids then come from the positions rounded onto a `rope_layout_grid_size` raster
            (brain-gen's `layout_path`, see `sensor_layout_positions.py`).
        rope_layout_grid_size (`int`): side of that raster (32 in brain-gen).
    """

    # The backbone is declared as a sub-config the way transformers' composite configs declare theirs, so that
    # `attn_implementation` (from_pretrained, set_attn_implementation, the config setter) and `dtype` reach the
    # decoder. A plain class attribute: 5.17 reads `sub_configs` itself, 5.24 derives it from
    # `sub_configs_defaults`, whose automatic construction FlatGPT does not use (`_init_backbone_config` builds and
    # checks the decoder config).
    sub_configs = {"backbone_config": AutoConfig}

    backbone_config: dict | PreTrainedConfig | None = None
    tokenizer_config: dict | PreTrainedConfig | None = None
    vocab_size: int = 256
    hidden_size: int = 64
    input_shape: list[int] | None = None
    spatial_reduction: list[int] | int = 1
    temporal_reduction: int = 1
    block_size: int = 1
    token_corruption: dict | None = None
    rope_dtype: str | None = "bfloat16"
    sparse_attention: dict | None = None
    rope_layout_positions: list | None = None
    rope_layout_grid_size: int = 32

    def __post_init__(self, **kwargs):
        require_positive_int("vocab_size", self.vocab_size)
        require_positive_int("hidden_size", self.hidden_size)
        if self.input_shape is None:
            self.input_shape = [16, 4, 1]
        require_int_list("input_shape", self.input_shape, min_len=3)
        require(len(self.input_shape) == 3, f"`input_shape` must be (T, H, W), got {self.input_shape}")
        self.input_shape = list(self.input_shape)
        if isinstance(self.spatial_reduction, int):
            self.spatial_reduction = [self.spatial_reduction, self.spatial_reduction]
        require_int_list("spatial_reduction", self.spatial_reduction, min_len=2)
        require(len(self.spatial_reduction) == 2, f"`spatial_reduction` must be (h, w), got {self.spatial_reduction}")
        self.spatial_reduction = list(self.spatial_reduction)
        require_positive_int("temporal_reduction", self.temporal_reduction)
        require_positive_int("block_size", self.block_size)
        T, H, W = self.input_shape
        require(
            T % self.temporal_reduction == 0,
            f"`input_shape[0]` ({T}) must be a multiple of `temporal_reduction` ({self.temporal_reduction})",
        )
        require(
            H >= self.spatial_reduction[0] and W >= self.spatial_reduction[1],
            f"`spatial_reduction` {self.spatial_reduction} reduces `input_shape` {self.input_shape} to nothing",
        )
        require(
            self.rope_dtype in (None, "bfloat16", "float16", "float32"),
            f"`rope_dtype` must be None, 'bfloat16', 'float16' or 'float32', got {self.rope_dtype!r}",
        )
        self._init_tokenizer_config()
        self._init_backbone_config()
        self._init_token_corruption()
        self._init_attention_layout()
        self._validate_variant()
        super().__post_init__(**kwargs)

    # ------------------------------------------------------------------ derived shapes
    @property
    def reduced_shape(self) -> tuple[int, int, int]:
        T, H, W = self.input_shape
        return (T // self.temporal_reduction, H // self.spatial_reduction[0], W // self.spatial_reduction[1])

    @property
    def rope_grid(self) -> tuple[int, int, int]:
        """The (T', H', W') grid the 3-D RoPE positions enumerate: one cell per sequence position."""
        return self.reduced_shape

    @property
    def tokens_per_grid_step(self) -> int:
        """Sequence positions per reduced time step."""
        grid = self.rope_grid
        return grid[1] * grid[2]

    @property
    def max_context_tokens(self) -> int:
        return math.prod(self.rope_grid)

    @property
    def backbone_type(self) -> str:
        return self.backbone_config.model_type

    @property
    def uses_video_rope(self) -> bool:
        return self.backbone_type in VIDEO_ROPE_BACKBONES

    def get_text_config(self, decoder=None, encoder=None) -> PreTrainedConfig:
        # The backbone is the text decoder: caches and generation read layer types from it.
        if encoder:
            return super().get_text_config(decoder=decoder, encoder=encoder)
        return self.backbone_config

    # ------------------------------------------------------------------ validation pieces
    def _init_tokenizer_config(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} must resolve its tokenizer_config")

    def _validate_variant(self) -> None:
        """A variant's own checks (embedding widths, slot counts), run once the shared fields are valid."""

    def _init_backbone_config(self) -> None:
        backbone = self.backbone_config
        if backbone is None:
            heads = 4
            require(
                self.hidden_size % (2 * heads) == 0,
                f"the default backbone has {heads} heads of even width: `hidden_size` ({self.hidden_size}) must be a "
                f"multiple of {2 * heads}, or pass a `backbone_config`",
            )
            backbone = {
                "model_type": "qwen2_5_vl_text",
                "num_hidden_layers": 2,
                "num_attention_heads": heads,
                "num_key_value_heads": 2,
                "intermediate_size": 2 * self.hidden_size,
                "rope_scaling": {
                    "rope_type": "default",
                    "mrope_section": _default_mrope_section(self.hidden_size // heads),
                },
            }
        if isinstance(backbone, dict):
            for key in _OWNED_BACKBONE_FIELDS:
                given = backbone.get(key)
                require(
                    given is None or given == getattr(self, key),
                    f"`backbone_config.{key}` ({given}) disagrees with `{key}` ({getattr(self, key)}); set it "
                    "once on the FlatGPT config",
                )
            backbone = _backbone_config_from_dict(
                {**backbone, "hidden_size": self.hidden_size, "vocab_size": self.vocab_size, "use_cache": True}
            )
        require(
            isinstance(backbone, PreTrainedConfig),
            f"`backbone_config` must be a dict or a PreTrainedConfig, got {type(backbone).__name__}",
        )
        kind = decoder_kind(backbone)
        for key in _OWNED_BACKBONE_FIELDS + _WIDTH_ALIASES.get(backbone.model_type, ()):
            owned = self.hidden_size if key in _WIDTH_ALIASES.get(backbone.model_type, ()) else getattr(self, key)
            require(
                getattr(backbone, key) == owned,
                f"`backbone_config.{key}` ({getattr(backbone, key)}) disagrees with `{key}` ({owned})",
            )
        self._check_block_masks(backbone, kind)
        rope = dict(getattr(backbone, "rope_parameters", None) or {})
        require(
            rope.get("rope_type", "default") == "default",
            f"only default RoPE is supported for FlatGPT backbones, got rope_type {rope.get('rope_type')!r}",
        )
        if backbone.model_type in VIDEO_ROPE_BACKBONES:
            head_dim = getattr(backbone, "head_dim", None) or backbone.hidden_size // backbone.num_attention_heads
            section = rope.get("mrope_section")
            require(section is not None, "Qwen video backbones need `rope_parameters['mrope_section']` (int or list)")
            if isinstance(section, int):
                require(section > 0, f"`mrope_section` must be positive, got {section}")
            else:
                require_int_list("mrope_section", section, min_len=3)
                require(
                    len(section) == 3 and sum(section) == head_dim // 2,
                    f"list `mrope_section` {section} must have 3 entries summing to head_dim/2 = {head_dim // 2}",
                )
        self.backbone_config = backbone

    def _init_attention_layout(self) -> None:
        """brain-gen's `sparse` and `layout_path` options (`sparse_attention.py`, `sensor_layout_positions.py`)."""
        if self.sparse_attention is not None:
            kind = decoder_kind(self.backbone_config)
            require(
                kind.takes_attention_mask and set(kind.layer_types) == {"full_attention"},
                f"`sparse_attention` replaces the causal mask of every layer, so every layer must be full softmax "
                f"attention taking a mask; backbone {self.backbone_type!r} has layers {sorted(set(kind.layer_types))}",
            )
            heads = self.backbone_config.num_attention_heads
            self.sparse_attention = check_sparse_attention(self.sparse_attention, heads, self.block_size)
        require(
            self.rope_layout_positions is None or self.uses_video_rope,
            f"`rope_layout_positions` set the h/w ids of the 3-D RoPE; backbone {self.backbone_type!r} has other "
            "positions",
        )
        grid = self.rope_grid
        self.rope_layout_positions = check_rope_layout_positions(
            self.rope_layout_positions, grid[1] * grid[2], self.rope_layout_grid_size
        )

    def _check_block_masks(self, backbone: PreTrainedConfig, kind) -> None:
        """Block prediction needs a block-causal mask in every layer: refuse decoders that cannot take one."""
        if self.block_size == 1:
            return
        require(
            kind.accepts_block_masks,
            f"`block_size` {self.block_size} needs a block-causal attention mask in every layer, but backbone "
            f"{backbone.model_type!r} has layers of types {sorted(set(kind.layer_types))} (a recurrent or "
            "linear-attention state sees the whole past, and no mask reaches it); use block_size 1 or a decoder "
            "whose layers are all softmax attention (full_attention / sliding_attention)",
        )
        window = getattr(backbone, "sliding_window", None)
        require(
            "sliding_attention" not in kind.layer_types or window is None or self.block_size <= window,
            f"`block_size` ({self.block_size}) exceeds the backbone's sliding_window ({window}): a block would not "
            "fit in the window its tokens attend over",
        )

    def _init_token_corruption(self) -> None:
        cfg = self.token_corruption
        if not cfg:
            self.token_corruption = None
            return
        cfg = dict(cfg)
        unknown = set(cfg) - {"enabled", "p_start", "p_end", "block_len_steps", "tokens_per_step"}
        require(not unknown, f"unknown `token_corruption` keys {sorted(unknown)}")
        cfg.setdefault("enabled", True)
        for key in ("p_start", "p_end"):
            cfg[key] = float(cfg.get(key, 0.0))
            require(0.0 <= cfg[key] <= 1.0, f"`token_corruption.{key}` must be in [0, 1], got {cfg[key]}")
        cfg.setdefault("block_len_steps", 8)
        require_positive_int("token_corruption.block_len_steps", cfg["block_len_steps"])
        cfg.setdefault("tokens_per_step", self.tokens_per_grid_step)
        require_positive_int("token_corruption.tokens_per_step", cfg["tokens_per_step"])
        cfg["enabled"] = bool(cfg["enabled"]) and (cfg["p_start"] > 0 or cfg["p_end"] > 0)
        self.token_corruption = cfg


class _AmplitudeLMConfig(FlatGPTBaseConfig):
    """The amplitude variants: mu-law bins in, through a flat HF tokenizer (`tokenizer_config.tokenizer_class`)."""

    default_tokenizer_class = "AmplitudeTokenizer"
    tokenizer_classes = FLAT_TOKENIZERS

    @property
    def tokenizer_class(self) -> str:
        # Also what `AutoTokenizer.from_pretrained(folder)` reads when a folder has no tokenizer files.
        return self.tokenizer_config.tokenizer_class

    @property
    def grid_channels(self) -> int:
        """Channels per time step of the bin grid (`H * W` of `input_shape`): the tokenizer's `num_channels`."""
        return self.input_shape[1] * self.input_shape[2]

    @property
    def tokenizer_mu(self) -> int:
        """The flat tokenizer's mu: bins are ids `0 .. mu` (the DelimitedTokenizer's delimiter is `mu + 1`)."""
        tok = self.tokenizer_config
        return tok.delimiter_id - 1 if tok.tokenizer_class == "DelimitedTokenizer" else self.vocab_size - 1

    def _init_tokenizer_config(self) -> None:
        given = self.tokenizer_config
        if given is None:
            given = {"tokenizer_class": self.default_tokenizer_class}
        if isinstance(given, dict) and "model_type" not in given:
            # The short form a user writes; a saved config.json holds the nested config in full.
            unknown = set(given) - {"tokenizer_class", "delimiter_id"}
            require(not unknown, f"unknown `tokenizer_config` keys {sorted(unknown)}")
            given = {"model_type": FLAT_TOKENIZER_TYPE, **given}
        tok = sub_config_from(given)
        require(
            tok.model_type == FLAT_TOKENIZER_TYPE,
            f"{type(self).__name__} reads mu-law bins through a flat tokenizer; `tokenizer_config.model_type` "
            f"must be {FLAT_TOKENIZER_TYPE!r}, got {tok.model_type!r} (brain tokenizers belong to the RVQ "
            "variants)",
        )
        require(
            tok.tokenizer_class in self.tokenizer_classes,
            f"`tokenizer_config.tokenizer_class` must be one of {list(self.tokenizer_classes)}, got "
            f"{tok.tokenizer_class!r}",
        )
        if tok.tokenizer_class == "DelimitedTokenizer":
            if tok.delimiter_id is None:
                tok.delimiter_id = 256
            # The tokenizer's bins are the ids below the delimiter: it must be the last id of the vocabulary.
            require(
                isinstance(tok.delimiter_id, int) and tok.delimiter_id == self.vocab_size - 1,
                f"the DelimitedTokenizer's delimiter id {tok.delimiter_id} must be the last id of the vocabulary "
                f"(vocab_size - 1 = {self.vocab_size - 1}): set `vocab_size` to bins + 1 (256 bins + 1 delimiter "
                "= 257)",
            )
        else:
            require(
                tok.delimiter_id is None,
                f"`tokenizer_config.delimiter_id` belongs to the DelimitedTokenizer, not {tok.tokenizer_class}",
            )
        self.tokenizer_config = tok


class FlatGPTConfig(_AmplitudeLMConfig):
    r"""
    FlatGPT: one token per flattened (t, h, w) grid cell, embedded with the backbone's token table and scored
    with the tied head. `tokenizer_config`: `{"tokenizer_class": "AmplitudeTokenizer"}` (default) or
    `{"tokenizer_class": "DelimitedTokenizer", "delimiter_id": vocab_size - 1}`.
    """

    model_type = "flatgpt"
    tokenizer_classes = ("AmplitudeTokenizer", "DelimitedTokenizer")


class FlatGPTEmbedsConfig(_AmplitudeLMConfig):
    r"""
    FlatGPTEmbeds: like FlatGPT, but every channel slot `h` of the reduced grid has its own embedding table and
    the head scoring position p is tied to the table of the *next* slot (the slot of the token it predicts).
    Requires `W' = 1` (one token per channel slot and time step).
    """

    model_type = "flatgpt_embeds"
    tokenizer_classes = ("AmplitudeTokenizer",)

    @property
    def num_slots(self) -> int:
        return self.reduced_shape[1]

    def _validate_variant(self) -> None:
        require(
            self.reduced_shape[2] == 1,
            f"FlatGPTEmbeds assigns one table per channel slot and needs a reduced grid with W' = 1, got "
            f"{self.reduced_shape}",
        )


class FlatGPTMixConfig(_AmplitudeLMConfig):
    r"""
    FlatGPTMix: one sequence position per time step. The C channel tokens of a step are embedded (shared token
    table + channel embedding) and concatenated into one hidden vector (`mix_method="mix"`), or each channel is
    its own sequence through the shared backbone (`"none"`). The tied head un-mixes the hidden state.

    Args:
        mix_method (`str`): `"mix"` (hidden_size must be divisible by the channel count) or `"none"`.
    """

    model_type = "flatgpt_mix"
    default_tokenizer_class = "AmplitudeMixTokenizer"
    tokenizer_classes = ("AmplitudeMixTokenizer",)

    mix_method: str = "mix"

    @property
    def num_channels(self) -> int:
        return self.reduced_shape[1] * self.reduced_shape[2]

    @property
    def rope_grid(self) -> tuple[int, int, int]:
        return (self.reduced_shape[0], 1, 1)

    @property
    def channel_width(self) -> int:
        return self.hidden_size // self.num_channels if self.mix_method == "mix" else self.hidden_size

    def _validate_variant(self) -> None:
        require(self.mix_method in ("mix", "none"), f"`mix_method` must be 'mix' or 'none', got {self.mix_method!r}")
        if self.mix_method == "mix":
            require(
                self.hidden_size % self.num_channels == 0,
                f"`hidden_size` ({self.hidden_size}) must be divisible by the {self.num_channels} channels "
                "when mix_method='mix'",
            )
