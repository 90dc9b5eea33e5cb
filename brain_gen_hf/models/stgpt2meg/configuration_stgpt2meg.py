"""Config of STGPT2MEG, the spatio-temporal GPT over mu-law tokens of every channel `(B, C, T)`.

The reference nests the block options in `trf_args` dicts (`attn_args`, `mlp_args`, ...); here they are flat,
typed fields, and `convert_stgpt2meg.config_from_reference` maps a reference YAML onto them.
"""

from __future__ import annotations

import math

from ...configuration_utils import BrainGenConfig, is_real_number, require, require_positive_int
from ...layers.mulaw_token_config import check_mulaw_max_value

BLOCK_TYPES = ("STGPTBlock", "STGPTBlockParallel", "STBlock", "STConvBlock")
ATTENTION_TYPES = ("standard", "gpt_oss", "conditioned")
MLP_TYPES = ("standard", "moe")
# The MLP each block type builds when `mlp_type` is not given (the reference constructors' defaults).
DEFAULT_MLP_TYPE = {"STGPTBlock": "moe", "STGPTBlockParallel": "moe", "STBlock": "standard", "STConvBlock": "standard"}


class STGPT2MEGConfig(BrainGenConfig):
    r"""
    STGPT2MEG: every block attends causally over time within each channel and fully over channels within each
    time step; the logits at time t predict the tokens of every channel at t + 1.

    Args:
        num_channels (`int`): channels C of the token grid (one channel embedding each).
        vocab_size (`int`): mu-law bins Q.
        d_model (`int`): width of every token.
        layers (`int`): number of blocks.
        block_type (`str`): `STGPTBlock` (temporal attention + MLP, then spatial attention + MLP), `STGPTBlockParallel`
            (temporal and spatial attention side by side, one MLP), `STBlock` (TimeSformer-style divided attention)
            or `STConvBlock` (a causal 3-D convolution on the sensor grid, then an `STGPTBlock`).
        attn_type (`str`): `standard` (packed q/k/v, adjacent-pair RoPE), `gpt_oss` (grouped queries, attention
            sinks, YaRN RoPE, optional sliding window) or `conditioned` (standard plus a low-rank logit bias from
            the condition ids).
        mlp_type (`str`, *optional*): `standard` (GELU MLP) or `moe` (gpt-oss mixture of experts); `None` picks the
            block type's default (`moe` for the STGPT blocks, `standard` for STBlock / STConvBlock).
        num_heads (`int`): attention (query) heads of every attention type.
        attention_dropout (`float`): dropout on the attention output (and, for `standard`, on its weights).
        attention_bias (`bool`): biases in the q/k/v and output projections (`standard`, `conditioned`).
        rope (`bool`), rope_base (`float`): adjacent-pair RoPE in `standard` / `conditioned` attention; positions are
            time steps in the temporal attention and channel indices in the spatial attention.
        d_ff (`int`, *optional*): hidden width of the standard MLP (default `4 * d_model`).
        mlp_dropout (`float`): dropout of the standard MLP.
        num_experts, experts_per_token (`int`), swiglu_limit (`float`), moe_intermediate_size (`int`, *optional*):
            the MoE MLP (default intermediate size `d_model`).
        head_dim, num_key_value_heads (`int`): `gpt_oss` head width and key/value heads (grouped queries).
        sliding_window (`int`): `gpt_oss` window in steps (0: none); it applies only when `attention_layer_idx` is
            even (the reference passes one `layer_idx` to every block).
        attention_layer_idx (`int`): the reference's `layer_idx` of the gpt_oss attention.
        rope_theta, rope_scaling_factor, rope_ntk_alpha, rope_ntk_beta (`float`), initial_context_length (`int`):
            the `gpt_oss` YaRN RoPE.
        n_cond_tok, d_tok_emb, bias_rank (`int`): `conditioned` attention: condition vocabulary, its embedding width
            and the rank of the logit bias (`n_cond_tok = 0`: no bias).
        image_size (`int`), conv_kernel (`list[int]`), conv_dropout (`float`): `STConvBlock`'s square sensor grid,
            its `(kT, kH, kW)` kernel and dropout.
        row_idx, col_idx (`list[int]`, *optional*): grid row and column of every channel (`STConvBlock` needs them;
            `brain_gen_hf.data.grid_indices` computes them from a sensor layout). Channels sharing a cell all read
            it back; the later channel's token is the one written there.
        num_classes, class_emb (`int`): per-time-step condition embedding (`class_emb` is 0 or `d_model`); ids 0
            add nothing.
        subjects, sub_emb (`int`): per-example subject embedding (`sub_emb` is 0 or `d_model`).
        mulaw_max_value (`float`): the signal amplitude at the edge of the mu-law range: tokens are
            `mulaw_encode(signal / mulaw_max_value, mu=vocab_size - 1)`; `forecast` encodes and decodes with it.
    """

    model_type = "stgpt2meg"
    attribute_map = {"hidden_size": "d_model", "num_hidden_layers": "layers", "num_attention_heads": "num_heads"}

    num_channels: int = 4
    vocab_size: int = 256
    d_model: int = 32
    layers: int = 2
    block_type: str = "STGPTBlock"
    attn_type: str = "standard"
    mlp_type: str | None = None
    num_heads: int = 4
    attention_dropout: float = 0.0
    attention_bias: bool = True
    rope: bool = True
    rope_base: float = 10000.0
    d_ff: int | None = None
    mlp_dropout: float = 0.0
    num_experts: int = 4
    experts_per_token: int = 4
    swiglu_limit: float = 7.0
    moe_intermediate_size: int | None = None
    head_dim: int = 8
    num_key_value_heads: int = 4
    sliding_window: int = 0
    attention_layer_idx: int = 0
    rope_theta: float = 150000.0
    rope_scaling_factor: float = 32.0
    rope_ntk_alpha: float = 1.0
    rope_ntk_beta: float = 32.0
    initial_context_length: int = 1024
    n_cond_tok: int = 0
    d_tok_emb: int = 0
    bias_rank: int = 8
    image_size: int = 32
    conv_kernel: list[int] | None = None
    conv_dropout: float = 0.0
    row_idx: list[int] | None = None
    col_idx: list[int] | None = None
    num_classes: int = 0
    class_emb: int = 0
    subjects: int = 0
    sub_emb: int = 0
    mulaw_max_value: float = 5.0
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs):
        for name in ("num_channels", "vocab_size", "d_model", "layers", "num_heads", "num_experts"):
            require_positive_int(name, getattr(self, name))
        require(self.vocab_size >= 2, f"`vocab_size` must be at least 2 mu-law bins, got {self.vocab_size}")
        require(self.block_type in BLOCK_TYPES, f"`block_type` must be one of {BLOCK_TYPES}, got {self.block_type!r}")
        require(
            self.attn_type in ATTENTION_TYPES, f"`attn_type` must be one of {ATTENTION_TYPES}, got {self.attn_type!r}"
        )
        if self.mlp_type is None:
            self.mlp_type = DEFAULT_MLP_TYPE[self.block_type]
        require(self.mlp_type in MLP_TYPES, f"`mlp_type` must be one of {MLP_TYPES} (or None), got {self.mlp_type!r}")
        require(
            not (self.block_type == "STBlock" and self.attn_type == "conditioned"),
            "STBlock supports attn_type 'standard' or 'gpt_oss' (as the reference); use an STGPT block for "
            "'conditioned' attention",
        )
        require(not self.tie_word_embeddings, "STGPT2MEG's head is not tied to the token embedding")
        for name in ("attention_dropout", "mlp_dropout", "conv_dropout"):
            value = getattr(self, name)
            require(is_real_number(value) and 0.0 <= value < 1.0, f"`{name}` must be in [0, 1), got {value!r}")
        require(
            is_real_number(self.rope_base) and self.rope_base > 0,
            f"`rope_base` must be positive, got {self.rope_base!r}",
        )
        if self.attn_type in ("standard", "conditioned"):
            require(
                self.d_model % self.num_heads == 0,
                f"`d_model` ({self.d_model}) must be divisible by `num_heads` ({self.num_heads})",
            )
        if self.d_ff is not None:
            require_positive_int("d_ff", self.d_ff)
        self._validate_moe()
        if self.attn_type == "gpt_oss":
            self._validate_gpt_oss()
        if self.attn_type == "conditioned":
            require_positive_int("n_cond_tok", self.n_cond_tok, allow_zero=True)
            if self.n_cond_tok:
                require_positive_int("d_tok_emb", self.d_tok_emb)
                require_positive_int("bias_rank", self.bias_rank)
        self._validate_grid()
        for count, width in (("num_classes", "class_emb"), ("subjects", "sub_emb")):
            require_positive_int(count, getattr(self, count), allow_zero=True)
            require(
                getattr(self, width) in (0, self.d_model),
                f"`{width}` must be 0 (off) or d_model = {self.d_model} (the embeddings are summed), got "
                f"{getattr(self, width)!r}",
            )
            require(
                not getattr(self, width) or getattr(self, count) > 0,
                f"`{width}` > 0 needs `{count}` > 0 (the size of its table)",
            )
        check_mulaw_max_value(self.mulaw_max_value)
        self.mulaw_max_value = float(self.mulaw_max_value)
        super().__post_init__(**kwargs)
        n = self.contract_num_channels
        require(
            n is None or n == self.num_channels,
            f"the signal contract lists {n} channels but `num_channels` is {self.num_channels}",
        )

    def _validate_moe(self) -> None:
        require_positive_int("experts_per_token", self.experts_per_token)
        require(
            self.experts_per_token <= self.num_experts,
            f"`experts_per_token` ({self.experts_per_token}) cannot exceed `num_experts` ({self.num_experts})",
        )
        if self.moe_intermediate_size is not None:
            require_positive_int("moe_intermediate_size", self.moe_intermediate_size)
        require(
            is_real_number(self.swiglu_limit) and self.swiglu_limit > 0,
            f"`swiglu_limit` must be positive, got {self.swiglu_limit!r}",
        )

    def _validate_gpt_oss(self) -> None:
        for name in ("head_dim", "num_key_value_heads", "initial_context_length"):
            require_positive_int(name, getattr(self, name))
        require(
            self.head_dim % 2 == 0,
            f"gpt_oss RoPE rotates half of every head: `head_dim` must be even, got {self.head_dim}",
        )
        require(
            self.num_heads % self.num_key_value_heads == 0,
            f"`num_heads` ({self.num_heads}) must be a multiple of `num_key_value_heads` ({self.num_key_value_heads})",
        )
        require_positive_int("sliding_window", self.sliding_window, allow_zero=True)
        require_positive_int("attention_layer_idx", self.attention_layer_idx, allow_zero=True)
        for name in ("rope_theta", "rope_scaling_factor", "rope_ntk_alpha", "rope_ntk_beta"):
            value = getattr(self, name)
            require(is_real_number(value) and value > 0, f"`{name}` must be a positive number, got {value!r}")
        if self.rope_scaling_factor > 1.0:
            low, high = yarn_ramp_bounds(self)
            require(
                0 < low < high < self.head_dim / 2 - 1,
                f"YaRN needs 0 < low < high < head_dim/2 - 1, got low={low:.3f}, high={high:.3f} for head_dim "
                f"{self.head_dim}; raise head_dim or change initial_context_length / rope_ntk_alpha / rope_ntk_beta",
            )

    def _validate_grid(self) -> None:
        if self.conv_kernel is None:
            self.conv_kernel = [3, 3, 3]
        self.conv_kernel = list(self.conv_kernel)
        require(
            len(self.conv_kernel) == 3
            and all(isinstance(k, int) and not isinstance(k, bool) and k > 0 for k in self.conv_kernel),
            f"`conv_kernel` must be three positive ints (kT, kH, kW), got {self.conv_kernel!r}",
        )
        require_positive_int("image_size", self.image_size)
        if self.block_type == "STConvBlock":
            require(
                self.conv_kernel[1] % 2 == 1 and self.conv_kernel[2] % 2 == 1,
                f"the grid kernel (kH, kW) must be odd so the grid keeps its size, got {self.conv_kernel[1:]}",
            )
            require(
                self.d_model >= 8 and self.d_model % (self.d_model // 8) == 0,
                f"STConvBlock's GroupNorm uses d_model // 8 groups: d_model ({self.d_model}) must be at least 8 and "
                "divisible by them",
            )
        if self.row_idx is None and self.col_idx is None:
            require(
                self.block_type != "STConvBlock",
                "STConvBlock places every channel on a sensor grid: set `row_idx` and `col_idx` (one grid row and "
                "column per channel, e.g. from brain_gen_hf.data.grid_indices)",
            )
            return
        require(self.row_idx is not None and self.col_idx is not None, "`row_idx` and `col_idx` go together: pass both")
        rows, cols = (list(v.tolist() if hasattr(v, "tolist") else v) for v in (self.row_idx, self.col_idx))
        for name, values in (("row_idx", rows), ("col_idx", cols)):
            require(
                len(values) == self.num_channels
                and all(isinstance(v, int) and not isinstance(v, bool) for v in values),
                f"`{name}` must hold one integer per channel ({self.num_channels}), got {values!r:.80}",
            )
            bad = [v for v in values if not 0 <= v < self.image_size]
            require(not bad, f"`{name}` holds {bad[:5]} outside the {self.image_size}x{self.image_size} grid")
        self.row_idx, self.col_idx = rows, cols

    @property
    def tokens_per_grid_step(self) -> int:
        """Tokens one generation step emits: one per channel."""
        return self.num_channels

    @property
    def effective_sliding_window(self) -> int:
        """The gpt_oss window the attention applies: only for an even `attention_layer_idx` (as the reference)."""
        return self.sliding_window if self.attention_layer_idx % 2 == 0 else 0


def yarn_ramp_bounds(config: STGPT2MEGConfig) -> tuple[float, float]:
    """YaRN's NTK-by-parts ramp: the rotary dims below `low` are extrapolated, above `high` interpolated."""
    half = config.head_dim / 2
    low = (
        half
        * math.log(config.initial_context_length / (config.rope_ntk_beta * 2 * math.pi))
        / math.log(config.rope_theta)
    )
    high = (
        half
        * math.log(config.initial_context_length / (config.rope_ntk_alpha * 2 * math.pi))
        / math.log(config.rope_theta)
    )
    return low, high
