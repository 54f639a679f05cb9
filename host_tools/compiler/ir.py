"""The compiler's intermediate form: values (feature maps in KPU RAM and/or main memory) and kmodel layers.

Lowering fills these from the tflite graph; the planner gives each value its addresses; the writer serialises.
"""
from dataclasses import dataclass, field

import numpy as np

# kmodel V3 layer type codes the compiler emits: all run by the stock K210 SDK runtime
GLOBAL_AVERAGE_POOL2D = 5
QUANTIZED_MAX_POOL2D = 8
AVERAGE_POOL2D = 9
QUANTIZE = 11
DEQUANTIZE = 12
REQUANTIZE = 13
SOFTMAX = 15
CONCAT = 16
FULLY_CONNECTED = 18
TENSORFLOW_FLATTEN = 20
LOGISTIC = 25
K210_CONV = 10240
K210_ADD_PADDING = 10241
K210_REMOVE_PADDING = 10242
K210_UPLOAD = 10243
EMITTED_TYPES = frozenset((GLOBAL_AVERAGE_POOL2D, QUANTIZED_MAX_POOL2D, AVERAGE_POOL2D, QUANTIZE, DEQUANTIZE,
                           REQUANTIZE, SOFTMAX, CONCAT, FULLY_CONNECTED, TENSORFLOW_FLATTEN, LOGISTIC, K210_CONV,
                           K210_ADD_PADDING, K210_REMOVE_PADDING, K210_UPLOAD))


@dataclass(eq=False)
class Value:
    """One tensor as the kmodel holds it: planar (c, h, w), uint8 bytes or float32."""
    name: str
    shape: tuple                 # (c, h, w)
    dtype: str                   # "u8" | "f32"
    scale: float = 1.0           # u8: real = (byte - zero) * scale (TFLite's int8 quantization, zero = zp + 128)
    zero: int = 0
    in_kpu: bool = False         # lives in KPU RAM (64-byte rows, the KPU's layout)
    in_main: bool = False        # lives in main memory (contiguous CHW)
    kpu_row: int = None          # planner: first 64-byte row in KPU RAM
    main_addr: int = None        # planner: byte offset in main memory

    @property
    def count(self) -> int:
        c, h, w = self.shape
        return c * h * w

    @property
    def nbytes(self) -> int:
        return self.count * (4 if self.dtype == "f32" else 1)


@dataclass(eq=False)
class ConvLayer:
    """One K210_CONV: conv (1x1 or 3x3, stride 1, pad 1 for 3x3) + BN + activation + pooling."""
    op_index: int
    op: str
    inp: Value
    out: Value
    weights: np.ndarray          # uint8, (OC, IC, k, k) or depthwise (C, k, k)
    kernel: int
    depthwise: bool
    pool: int                    # KPU pool type 0-9
    x0: int                      # input zero point as a byte (also the padding byte)
    w0: int                      # weight zero point as a byte
    multipliers: np.ndarray      # M_c = sx * sw_c / s_conv_out
    bias: np.ndarray             # int32 bias per channel
    # output stage: the conv's own quantization and clamp, then optionally a requantizing activation op
    conv_zero: int = 0
    clamp: tuple = (0, 255)
    post: tuple = None           # (alpha, ratio s_conv/s_out, zero_out, lo_out, hi_out) for LEAKY_RELU/RELU ops
    main_out: bool = False       # also DMA the result to main memory
    type: int = K210_CONV

    @property
    def out_ch(self) -> int:
        return self.weights.shape[0]


@dataclass(eq=False)
class CpuLayer:
    """Any other kmodel layer: `type` is its V3 code, params its body fields beyond the memory addresses."""
    type: int
    op_index: int
    op: str
    inputs: list
    out: Value
    params: dict = field(default_factory=dict)


@dataclass
class Program:
    source: str
    input: Value
    layers: list
    outputs: list                # Values, in the tflite output order
