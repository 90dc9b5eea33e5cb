"""Config of TASA3D. Field names follow the reference constructor so brain-gen YAMLs load unchanged."""

from __future__ import annotations

from ...configuration_utils import BrainGenConfig, require, require_int_list, require_positive_int
from ...layers.mulaw_token_config import check_fill_token, check_mulaw_max_value, check_sensor_pixels


class TASA3DConfig(BrainGenConfig):
    r"""
    TASA3D ("Temporal-only Attention with Spatial Autoencoder") over token images `(B, H, W, T)`.

    Every block encodes each frame spatially with strided convolutions (no time mixing), runs causal
    attention over time on the flattened bottleneck, and decodes back to full resolution.

    Args:
        input_hw (`list[int]`): `(H, W)` of the token image; both must be divisible by `2 ** num_down` (default
            `[8, 8]`, the smallest image the default three down-sampling stages reduce to one pixel).
        emb_dim (`int`): token embedding width E (the full-resolution channel count).
        quant_levels (`int`): vocabulary size Q (mu-law bins).
        depth (`int`): number of TASA3D blocks.
        num_down (`int`): spatial down-sampling stages per block (each halves H and W).
        channel_grow (`int`): channel multiplier of every down-sampling stage.
        heads (`int`): attention heads of the bottleneck attention (width `E * grow**num_down * H/2**n * W/2**n`).
        drop (`float`): dropout in the attention, token MLP and full-resolution MLP.
        rope (`bool`): rotary position embedding (adjacent pairs) in the temporal attention.
        n_cond_tok (`int`): >0 adds an embedding of a per-time-step condition id `(B, 1, 1, T)`.
        spatial_emb (`bool`): learned bias per bottleneck position, shared over batch and time.
        token_mlp_ratio (`float`): hidden width of the bottleneck MLP relative to the attention width.
        mulaw_max_value (`float`): the signal amplitude at the edge of the mu-law range: the tokens are
            `mulaw_encode(signal / mulaw_max_value, mu=quant_levels - 1)` (`ImageCollator`'s 5.0). `forecast`
            encodes its input and decodes its output with it.
        row_idx, col_idx (`list[int]`, *optional*): image row and column of every channel (C entries each, as
            `brain_gen_hf.data.grid_indices` places them); `forecast` maps signals to images with them unless
            it is given its own.
        fill_token (`int`, *optional*): token of the pixels without a sensor; `None` means the bin of a zero
            signal (what `ImageCollator` writes there).
    """

    model_type = "tasa3d"
    # transformers' common names for the width, depth and heads.
    attribute_map = {"hidden_size": "emb_dim", "num_hidden_layers": "depth", "num_attention_heads": "heads"}

    input_hw: list[int] | None = None
    emb_dim: int = 16
    quant_levels: int = 256
    depth: int = 4
    num_down: int = 3
    channel_grow: int = 2
    heads: int = 8
    drop: float = 0.0
    rope: bool = True
    n_cond_tok: int = 0
    spatial_emb: bool = False
    token_mlp_ratio: float = 4.0
    mulaw_max_value: float = 5.0
    row_idx: list[int] | None = None
    col_idx: list[int] | None = None
    fill_token: int | None = None

    def __post_init__(self, **kwargs):
        if self.input_hw is None:
            self.input_hw = [8, 8]
        require_int_list("input_hw", self.input_hw, min_len=2)
        require(len(self.input_hw) == 2, f"`input_hw` must be (H, W), got {self.input_hw!r}")
        self.input_hw = list(self.input_hw)
        for name in ("emb_dim", "quant_levels", "depth", "channel_grow", "heads"):
            require_positive_int(name, getattr(self, name))
        require_positive_int("num_down", self.num_down, allow_zero=True)
        require_positive_int("n_cond_tok", self.n_cond_tok, allow_zero=True)
        require(0.0 <= float(self.drop) < 1.0, f"`drop` must be in [0, 1), got {self.drop}")
        require(float(self.token_mlp_ratio) > 0, f"`token_mlp_ratio` must be positive, got {self.token_mlp_ratio}")
        scale = 2**self.num_down
        require(
            all(side % scale == 0 for side in self.input_hw),
            f"`input_hw` {self.input_hw} must be divisible by 2**num_down = {scale}",
        )
        require(
            self.attention_dim % self.heads == 0,
            f"the bottleneck attention width {self.attention_dim} (emb_dim * channel_grow**num_down * "
            f"bottleneck H * W) is not divisible by `heads` = {self.heads}",
        )
        check_mulaw_max_value(self.mulaw_max_value)
        self.mulaw_max_value = float(self.mulaw_max_value)
        if self.row_idx is not None or self.col_idx is not None:
            self.row_idx, self.col_idx = check_sensor_pixels(self.row_idx, self.col_idx, self.input_hw)
        check_fill_token(self.fill_token, self.quant_levels)
        super().__post_init__(**kwargs)
        n = self.contract_num_channels
        require(
            n is None or self.row_idx is None or n == len(self.row_idx),
            f"the signal contract lists {n} channels but `row_idx` places {len(self.row_idx or [])}",
        )

    @property
    def vocab_size(self) -> int:
        return self.quant_levels

    @property
    def bottleneck_channels(self) -> int:
        return self.emb_dim * self.channel_grow**self.num_down

    @property
    def bottleneck_hw(self) -> tuple[int, int]:
        scale = 2**self.num_down
        return self.input_hw[0] // scale, self.input_hw[1] // scale

    @property
    def attention_dim(self) -> int:
        """Width of one time step's token: the whole bottleneck frame, flattened channel-major."""
        height, width = self.bottleneck_hw
        return self.bottleneck_channels * height * width
