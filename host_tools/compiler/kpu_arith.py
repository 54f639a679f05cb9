"""TFLite int8 arithmetic expressed in the KPU's terms (conv arguments, BN table, activation table).

A TFLite int8 conv computes, per output channel c,
    acc = sum((x - zx) * (w - zw))                           (int32, zw = 0 for per-channel int8 weights)
    q   = clamp(round((acc + bias_c) * M_c) + zo, lo, hi)    with M_c = sx * sw_c / so.
The KPU sees bytes: x_u8 = x + 128 (so the camera byte is the model's int8 input + 128) and w_u8 = w + 128.
Its conv sums S = sum(x_u8 * w_u8), SX = sum(x_u8), SW = sum(w_u8) and adds arg_x*SX + arg_w*SW + arg_add*IC;
with arg_x = -W0, arg_w = -X0, arg_add = X0*W0*k*k and padding bytes equal to X0 this is exactly TFLite's acc
(X0 = zx + 128 and W0 = zw + 128 are the zero points as bytes). The per-channel rescale M_c goes into the BN
table (norm_mul / 2^norm_shift, with the bias in norm_add) relative to one layer-wide factor M_ref; M_ref, the
output zero point and the clamp go into the activation table's segments. M_ref is made as small as the 36-bit BN
range allows, so the BN stage keeps thousands of units per output step and the one rounding (in the activation
stage) lands where TFLite's does: on the demo detector 1.6% of outputs differ from LiteRT, each by one step
(near-ties flipped in early layers and carried forward; LiteRT's own reference kernels differ far more).
"""
import math
from dataclasses import dataclass

import numpy as np

from host_tools.k210 import arith as A

NORM_SHIFT = 15                 # the largest shift the 4-bit norm_shift field holds
NORM_MUL_MAX = (1 << 23) - 1    # norm_mul is signed 24 bits
NORM_ADD_MAX = (1 << 31) - 1    # norm_add is signed 32 bits
BN_LIMIT = 1 << 34              # keep BN results well inside the 36-bit signed range the activation reads
X_START_MIN = -(1 << 35)        # segment 0 starts at the smallest 36-bit value
Y_MUL_MAX = (1 << 15) - 1       # y_mul is signed 16 bits
ACT_SHIFT_MAX = 34
SEGMENTS = 16


@dataclass
class ConvArgs:
    arg_x: int
    shr_x: int
    arg_w: int
    shr_w: int
    arg_add: int
    pad_value: int


@dataclass
class Segment:
    x_start: int
    y_mul: int
    shift: int
    bias: int


def conv_args(x0: int, w0: int, kernel: int) -> ConvArgs:
    """Zero points (as bytes) -> conv arguments. The KPU multiplies arg_add by IC itself (by 1 for depthwise)."""
    return ConvArgs(arg_x=-int(w0), shr_x=0, arg_w=-int(x0), shr_w=0, arg_add=int(x0) * int(w0) * kernel * kernel,
                    pad_value=int(x0))


def bn_table(multipliers, biases, acc_bounds):
    """Per-channel (norm_mul, norm_shift, norm_add) and the layer factor m_ref.

    multipliers: M_c = sx*sw_c/so (float); biases: int32 bias_c; acc_bounds: max |acc| per channel.
    The BN stage computes bn = floor(acc*norm_mul / 2^norm_shift) + norm_add ~= (acc + bias_c) * M_c / m_ref;
    the activation stage multiplies by m_ref. m_ref is as small as the field widths allow (most precision).
    """
    m = np.asarray(multipliers, np.float64)
    b = np.asarray(biases, np.float64)
    bound = np.asarray(acc_bounds, np.float64)
    m_max = float(m.max())
    if not m_max > 0:
        raise ValueError("output scale makes every channel's multiplier zero")
    rel = m / m_max                                   # in (0, 1]
    # r = BN units per output step of the strongest channel: as many as the 36-bit BN range allows for the
    # largest possible sum (and norm_add's 32 bits for the bias), so the BN stage's floor costs nothing.
    r = BN_LIMIT / max(1.0, float(np.max((bound + np.abs(b)) * rel)))
    if np.any(b):
        r = min(r, NORM_ADD_MAX * 0.999 / float(np.max(np.abs(b) * rel)))
    r = min(r, NORM_MUL_MAX * 0.998)                  # norm_mul with shift 0
    # the activation shift stays <= 34: (bn - x_start) * y_mul then stays below 2^42 over the output range (an
    # upper constant segment always ends it), within a few bits of what hardware-checked files use (2^36)
    r = min(r, m_max * (1 << ACT_SHIFT_MAX) / Y_MUL_MAX)
    # m_ref exactly as the activation table will hold it (y_mul / 2^shift, 15 bits): its rounding is then
    # absorbed by the 23-bit norm_mul of each channel instead of adding to the error of every output.
    y_mul, shift = _slope(m_max / r)
    m_ref = y_mul / float(1 << shift)
    ratio = m / m_ref
    # per channel the largest norm_shift (<= 15) that keeps norm_mul in 23 bits: the most precision
    norm_shift = np.clip(np.floor(np.log2(NORM_MUL_MAX / np.maximum(ratio, 1e-30))), 0, NORM_SHIFT).astype(np.int64)
    norm_mul = np.round(ratio * np.exp2(norm_shift)).astype(np.int64)
    over = norm_mul > NORM_MUL_MAX
    norm_shift[over] -= 1
    norm_mul[over] = np.round(ratio[over] * np.exp2(norm_shift[over])).astype(np.int64)
    norm_add = np.round(b * norm_mul / np.exp2(norm_shift)).astype(np.int64)
    return norm_mul, norm_shift, norm_add, m_ref


def _slope(slope):
    """slope (output units per BN unit, >= 0) -> (y_mul, shift) with y_mul / 2^shift ~= slope."""
    if slope <= 0:
        return 0, 0
    shift = max(0, math.floor(math.log2(Y_MUL_MAX / slope)))
    shift = min(shift, 255)
    y_mul = int(round(slope * (1 << shift)))
    while y_mul > Y_MUL_MAX:
        shift -= 1
        y_mul = int(round(slope * (1 << shift)))
    return y_mul, shift


def activation_table(pieces):
    """A continuous non-decreasing piecewise-linear function of the BN value -> 16 KPU segments.

    pieces: [(start, slope, value_at_start)] in increasing start order, the first starting at -inf (use None);
    value is in output-byte units before rounding. Each segment is out = round((bn - x_start)*y_mul >> shift)
    + bias with an integer bias in 0..255, so a rising piece starts where its line crosses an integer.
    """
    segs = []
    for i, (start, slope, value) in enumerate(pieces):
        end = pieces[i + 1][0] if i + 1 < len(pieces) else None
        if start is None:
            # The first piece can only be represented as a constant (its bias is a byte).
            if slope != 0:
                raise ValueError("the first activation piece must be constant")
            segs.append(Segment(X_START_MIN, 0, 0, int(min(255, max(0, round(value))))))
            continue
        if slope == 0 or value >= 255:
            segs.append(Segment(int(math.ceil(start)), 0, 0, int(min(255, max(0, round(value))))))
            continue
        level = min(255, max(0, math.ceil(value)))
        x = start + (level - value) / slope
        if end is not None and x >= end:
            continue  # the piece never reaches a new output level: the previous segment covers it
        y_mul, shift = _slope(slope)
        # the BN stage floors: the real value lies in [bn, bn + 1), so the line is anchored half a unit lower
        segs.append(Segment(int(round(x - 0.5)), y_mul, shift, int(level)))
    # x_start must fit 36 signed bits (a start beyond every reachable BN value is as good as the limit) and
    # must not decrease; a later constant piece wins over a rising one at the same start.
    for s in segs:
        s.x_start = min(max(s.x_start, X_START_MIN), -X_START_MIN - 1)
    for i in range(1, len(segs)):
        if segs[i].x_start < segs[i - 1].x_start:
            segs[i].x_start = segs[i - 1].x_start
    if len(segs) > SEGMENTS:
        raise ValueError("activation needs %d segments, the KPU has %d" % (len(segs), SEGMENTS))
    while len(segs) < SEGMENTS:
        last = segs[-1]
        segs.append(Segment(last.x_start, last.y_mul, last.shift, last.bias))
    return segs


def output_pieces(m_ref, zo, lo, hi, leaky=None):
    """Pieces for out = clamp(round(bn*m_ref) + zo, lo, hi) (bytes), optionally followed by TFLite's LEAKY_RELU.

    leaky: (alpha, ratio, z_out[, hi_out]): the conv's own output (zo, lo, hi) is requantized by a (leaky) ReLU
    op with ratio = s_conv / s_out and output zero point z_out (bytes), as TFLite does in a separate op;
    hi_out is that op's upper clamp (ReLU6).
    """
    tl, th = lo - zo, hi - zo          # the clamp, in conv output steps relative to the zero point
    if leaky is None:
        knots = [(tl, 1.0, float(lo)), (th, 0.0, float(hi))]
        first = float(lo)
    else:
        alpha, ratio, z2 = leaky[:3]
        def u(d):
            return z2 + ratio * (d if d >= 0 else alpha * d)
        knots = [(tl, ratio * (alpha if tl < 0 else 1.0), u(tl))]
        if tl < 0 < th:
            knots.append((0.0, ratio, float(z2)))
        knots.append((th, 0.0, u(th)))
        first = u(tl)
    pieces = [(None, 0.0, first)] + [(t / m_ref, s * m_ref, v) for t, s, v in knots]
    return pieces if leaky is None or len(leaky) < 4 else cap_pieces(pieces, leaky[3])


def cap_pieces(pieces, hi):
    """The pieces clamped from above at `hi` (ReLU6 after a requantizing activation op)."""
    out = []
    for i, (start, slope, value) in enumerate(pieces):
        if value >= hi:
            out.append((start, 0.0, float(hi)))
            return out
        out.append((start, slope, value))
        end = pieces[i + 1][0] if i + 1 < len(pieces) else None
        if slope > 0:
            cross = start + (hi - value) / slope
            if end is None or cross < end:
                out.append((cross, 0.0, float(hi)))
                return out
    return out


def eval_segments(segs, bn):
    """What the KPU's activation stage (k210.arith) gives for BN values bn (int64 array)."""
    table = [np.array([getattr(s, f) for s in segs], np.int64) for f in ("x_start", "y_mul", "shift", "bias")]
    return A.activate(np.asarray(bn, np.int64), *table)
