"""The KPU's limits and layout rules: what one K210_CONV layer can hold and how its maps sit in KPU RAM.

Sources: the SDK's kpu.h / kpu_upload_core and nncase v0.1's K210 target (../shared/docs/kmodel-v3-facts.md).
Plain functions of shapes; the register fields they fill belong to the registers module.
"""
from dataclasses import dataclass

from host_tools.k210.arith import POOL_TYPES

RAM_BYTES = 2 * 1024 * 1024          # 2 MiB of KPU SRAM, addressed in 64-byte rows
ROW_BYTES = 64
RAM_ROWS = RAM_BYTES // ROW_BYTES

KERNELS = (1, 3)                     # square kernels only; 3x3 pads exactly 1 on every side, 1x1 none
STRIDES = (1, 2)                     # the conv runs at stride 1; stride 2 is the pool stage's left-top sampling
MIN_SIDE = 4                         # maps at least 4x4 (a vector runs as a 4x4 map: K210_ADD_PADDING)
MAX_W, MAX_H = 512, 256              # i_row_wid / i_col_high limits nncase enforces
MAX_CHANNELS = 1024                  # i_ch_num / o_ch_num are 10-bit fields
MAX_CHANNEL_PIXELS = 1 << 16         # dma channel_byte_num = OW*OH - 1 is a 16-bit field
WEIGHT_LOAD_BYTES = {8: 30 * 1024, 16: 60 * 1024}   # weights the KPU takes in one load
MAX_LOADS = 64                       # load_time is a 6-bit field (loads - 1)

SAMPLE_LT = 5                        # the pool type (left-top sampling) of a stride-2 conv


def pool_type(kind: str, window: int, stride: int):
    """The pool_type doing this pool, or None when the KPU has none."""
    for t, spec in POOL_TYPES.items():
        if spec == (kind, window, stride):
            return t
    return None


def pooled_size(h: int, w: int, pool_type: int):
    """(out_h, out_w) after the pooling stage: floor(in / stride)."""
    _, _, stride = POOL_TYPES[pool_type]
    return h // stride, w // stride


@dataclass(frozen=True)
class RowLayout:
    groups: int      # channels sharing one 64-byte row
    row_len: int     # 64-byte rows per image line
    pitch: int       # bytes between channels inside a row


def row_layout(width: int) -> RowLayout:
    """How a feature map of this width sits in KPU RAM (SDK kpu_upload_core / nncase GetRowLayout)."""
    if width <= 16:
        return RowLayout(4, 1, 16)
    if width <= 32:
        return RowLayout(2, 1, 32)
    return RowLayout(1, (width + 63) // 64, 64)


def ram_rows(c: int, h: int, w: int) -> int:
    """64-byte KPU RAM rows a (c, h, w) feature map occupies."""
    lay = row_layout(w)
    return -(-c // lay.groups) * lay.row_len * h


class WeightLoadError(ValueError):
    """Weights the KPU cannot take in its loads."""


def weight_loads(kernel: int, in_ch: int, out_ch: int, depthwise: bool, weight_bits: int = 8):
    """(output channels per load, bytes per load, number of loads) for one conv layer's weights."""
    if depthwise:
        return out_ch, kernel * kernel * out_ch * weight_bits // 8, 1
    one = kernel * kernel * in_ch * weight_bits // 8
    limit = WEIGHT_LOAD_BYTES[weight_bits]
    n = min(out_ch, limit // one)
    if n < 1:
        raise WeightLoadError("one output channel's weights (%d bytes) exceed a %d-byte load" % (one, limit))
    loads = -(-out_ch // n)
    if loads > MAX_LOADS:
        raise WeightLoadError("%d weight loads, the KPU takes at most %d" % (loads, MAX_LOADS))
    return n, one * n, loads


def weight_count(kernel: int, in_ch: int, out_ch: int, depthwise: bool) -> int:
    return kernel * kernel * (out_ch if depthwise else in_ch * out_ch)
