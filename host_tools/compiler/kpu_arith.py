"""TFLite int8 arithmetic expressed in the KPU's terms (conv arguments, BN table, activation table), inside the
arithmetic envelope of silicon-proven kmodels (k210.envelope).

A TFLite int8 conv computes, per output channel c,
    acc = sum((x - zx) * (w - zw))                           (int32, zw = 0 for per-channel int8 weights)
    q   = clamp(round((acc + bias_c) * M_c) + zo, lo, hi)    with M_c = sx * sw_c / so.
The KPU sees bytes: x_u8 = x + 128 (so the camera byte is the model's int8 input + 128) and w_u8 = w + 128.
Its conv sums S = sum(x_u8 * w_u8), SX = sum(x_u8), SW = sum(w_u8) and adds arg_x*SX + arg_w*SW + arg_add*IC;
with arg_x = -W0, arg_w = -X0, arg_add = X0*W0*k*k and padding bytes equal to X0 this is exactly TFLite's acc
(X0 = zx + 128 and W0 = zw + 128 are the zero points as bytes).
The BN stage scales it to R units per output step: bn = floor(acc*norm_mul / 2^norm_shift) + norm_add
~= (acc + bias_c)*M_c*R - K (norm_mul / 2^norm_shift = M_c*R per channel, K centres the layer's BN range); the
activation table multiplies by m_ref = 1/R = y_mul / 2^shift exactly, adds the output zero point, clamps, and
rounds once. R is as large as the envelope lets this layer have over every uint8 input (units_per_step): the
BN output, bn - x_start and norm_add stay within the vendor files' widths, norm_mul and acc*norm_mul too at
norm_shift >= 11. The more units per step, the rarer an output differs from TFLite's (a floor and the
norm_mul rounding move bn by about one unit).
"""
import math
from dataclasses import dataclass

import numpy as np

from host_tools.k210 import arith as A
from host_tools.k210.envelope import FIELDS, WIDTHS
from host_tools.k210.registers import ActSegment as Segment

X_START_MIN = -(1 << 35)        # segment 0 starts at the smallest 36-bit value
SEGMENTS = A.SEGMENTS
MARGIN = 8                      # BN units kept clear of each envelope limit (the floors and roundings move bn)
UNITS_PER_STEP_MAX = math.inf   # a cap on R, for comparing rules (bench/envelope.py --units-max)


@dataclass
class ConvArgs:
    arg_x: int
    shr_x: int
    arg_w: int
    shr_w: int
    arg_add: int
    pad_value: int


def conv_args(x0: int, w0: int, kernel: int) -> ConvArgs:
    """Zero points (as bytes) -> conv arguments. The KPU multiplies arg_add by IC itself (by 1 for depthwise)."""
    return ConvArgs(arg_x=-int(w0), shr_x=0, arg_w=-int(x0), shr_w=0, arg_add=int(x0) * int(w0) * kernel * kernel,
                    pad_value=int(x0))


def signed_max(bits_: int) -> int:
    """The largest magnitude a signed `bits_`-bit quantity reaches: values in [-2^(bits-1), 2^(bits-1))."""
    return (1 << (bits_ - 1)) - 1


def units_per_step(mults, biases, acc_lo, acc_hi, first_step):
    """(R, k): BN units per output step and the layer-wide offset k (in output steps, K = k*R) as large as the
    envelope allows over every input whose accumulators lie in [acc_lo, acc_hi] per channel.

    first_step: the output (in steps from the zero point) where the activation's first rising segment will start,
    so that bn - x_start stays within its width. k centres bn and norm_add, the two ranges it moves."""
    m = np.asarray(mults, np.float64)
    b = np.asarray(biases, np.float64)
    t_lo, t_hi, tb = (acc_lo + b) * m, (acc_hi + b) * m, b * m
    acc_abs = np.maximum(np.abs(acc_lo), np.abs(acc_hi)).astype(np.float64)
    shift_lo = FIELDS["norm_shift"][0]
    add_lo, add_hi = FIELDS["norm_add"]
    bn_max = signed_max(WIDTHS["bn"]) - MARGIN
    # 2^shift_max: the activation scales back by y_mul / 2^shift >= 2^-shift_max (y_mul >= 1)
    r_fixed = min(2.0 ** FIELDS["shift"][1], FIELDS["norm_mul"][1] / (max(float(m.max()), 1e-30) * 2 ** shift_lo),
                  signed_max(WIDTHS["acc*norm_mul"]) / float((acc_abs * m).max() * 2 ** shift_lo + 1e-300),
                  (signed_max(WIDTHS["bn-x_start"]) - MARGIN) / max(float(t_hi.max()) - first_step, 1.0))

    def r_at(k):
        r = min(r_fixed, UNITS_PER_STEP_MAX, bn_max / max(float(t_hi.max()) - k, k - float(t_lo.min()), 1e-9))
        up, down = float(tb.max()) - k, k - float(tb.min())
        if up > 0:
            r = min(r, (add_hi - MARGIN) / up)
        if down > 0:
            r = min(r, (-add_lo - MARGIN) / down)
        return r
    k_bn = (float(t_hi.max()) + float(t_lo.min())) / 2
    k_add = (float(tb.max()) * -add_lo + float(tb.min()) * add_hi) / (add_hi - add_lo)
    candidates = np.linspace(min(k_bn, k_add), max(k_bn, k_add), 33)
    k = max(candidates, key=r_at)
    return r_at(k), float(k)


def bn_fields(mults, biases, acc_abs, m_ref, offset):
    """Per channel (norm_mul, norm_shift, norm_add) for bn ~= (acc + bias_c)*M_c/m_ref - offset: the largest
    norm_shift (11..15) whose norm_mul and acc*norm_mul stay inside the envelope (the most precision); None if a
    channel fits at none (fewer units per step needed)."""
    ratio = np.asarray(mults, np.float64) / m_ref
    mul_max, (shift_lo, shift_hi) = FIELDS["norm_mul"][1], FIELDS["norm_shift"]
    prod_max = signed_max(WIDTHS["acc*norm_mul"])
    acc_abs = np.asarray(acc_abs, np.int64)
    mul = np.zeros(len(ratio), np.int64)
    shift = np.zeros(len(ratio), np.int64)
    for c, rc in enumerate(ratio):
        for s in range(shift_hi, shift_lo - 1, -1):
            n = int(round(rc * (1 << s)))
            if n <= mul_max and int(acc_abs[c]) * n <= prod_max:
                mul[c], shift[c] = n, s
                break
        else:
            return None
    add = np.round(np.asarray(biases, np.float64) * mul / np.exp2(shift)).astype(np.int64) - int(offset)
    return mul, shift, add


def slope_fields(slope, y_max, shift_max):
    """slope (output units per BN unit, >= 0) -> (y_mul, shift) with y_mul / 2^shift ~= slope, y_mul <= y_max and
    shift <= shift_max, as precise as they allow."""
    if slope <= 0:
        return 0, 0
    shift = int(max(0, min(shift_max, math.floor(math.log2(y_max / slope)))))
    y_mul = int(round(slope * (1 << shift)))
    while y_mul > y_max and shift > 0:
        shift -= 1
        y_mul = int(round(slope * (1 << shift)))
    return y_mul, shift


def activation_table(pieces, reach=None, y_max=None, shift_max=None):
    """A continuous non-decreasing piecewise-linear function of the BN value -> 16 KPU segments.

    pieces: [(start, slope, value_at_start)] in increasing start order, the first starting at -inf (use None);
    value is in output-byte units before rounding. Each segment is out = round((bn - x_start)*y_mul >> shift)
    + bias with an integer bias in 0..255, so a rising piece starts where its line crosses an integer.
    reach: (lowest, highest) BN value the layer produces. Pieces beyond it are left out, and a rising piece that
    starts below the lowest starts at the last output level at or below it instead, so bn - x_start stays
    within the BN range. A top constant 255 is left to the KPU's clamp of the rising segment before it (a result
    bias of 255 is past what vendor files use). y_max, shift_max: the largest y_mul and shift to use.
    """
    y_max = FIELDS["y_mul"][1] if y_max is None else y_max
    shift_max = FIELDS["shift"][1] if shift_max is None else shift_max
    lo_bn, hi_bn = reach if reach is not None else (-math.inf, math.inf)
    segs = []
    for i, (start, slope, value) in enumerate(pieces):
        end = pieces[i + 1][0] if i + 1 < len(pieces) else None
        if start is None:
            # The first piece can only be represented as a constant (its bias is a byte).
            if slope != 0:
                raise ValueError("the first activation piece must be constant")
            segs.append(Segment(X_START_MIN, 0, 0, int(min(255, max(0, round(value))))))
            continue
        if start > hi_bn or (end is not None and end <= lo_bn):
            continue        # never picked
        if slope == 0 or value >= 255:
            if value >= 255 and segs and segs[-1].y_mul > 0:
                continue    # the rising segment before reaches 255 here; the KPU's clamp holds it
            segs.append(Segment(int(math.ceil(start)), 0, 0, int(min(255, max(0, round(value))))))
            continue
        level = min(255, max(0, math.ceil(value)))
        if start < lo_bn:
            level = min(255, max(level, math.floor(value + (lo_bn - start) * slope)))
        x = start + (level - value) / slope
        if end is not None and x >= end:
            continue  # the piece never reaches a new output level: the previous segment covers it
        y_mul, shift = slope_fields(slope, y_max, shift_max)
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


def output_pieces(m_ref, zo, lo, hi, leaky=None, offset=0):
    """Pieces for out = clamp(round((bn + offset)*m_ref) + zo, lo, hi) (bytes), optionally followed by TFLite's
    LEAKY_RELU.

    leaky: (alpha, ratio, z_out[, hi_out]): the conv's own output (zo, lo, hi) is requantized by a (leaky) ReLU
    op with ratio = s_conv / s_out and output zero point z_out (bytes), as TFLite does in a separate op;
    hi_out is that op's upper clamp (ReLU6). Where the conv's own int8 saturation lands on a byte above the
    largest result bias vendor files use, no table inside the envelope holds it: the rising piece runs on to the
    KPU's 0..255 clamp instead, as the float model does (outputs past the conv's calibrated range come out up to
    255 - that byte steps higher than TFLite's).
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
        if u(th) <= FIELDS["bias"][1]:
            knots.append((th, 0.0, u(th)))
        first = u(tl)
    pieces = [(None, 0.0, first)] + [(t / m_ref - offset, s * m_ref, v) for t, s, v in knots]
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
