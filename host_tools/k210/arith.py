"""The KPU's integer arithmetic for one K210_CONV layer, one function per stage, written once.

The compiler predicts its layers' outputs with these stages and the emulator's reference runs them, so both hold
one integer model. The stages follow the K210 SDK (kpu.c) and nncase v0.1's K210Conv2d emulator
(../shared/docs/kmodel-v3-facts.md, "One KPU conv layer"):
1. conv sums at stride 1 over the input map, 3x3 padded by 1 with pad_value: S = sum(x*w), SX = sum(x) over the
   window (padding included), SW = sum(w) over the channel's whole kernel;
2. acc = S + ((arg_x*SX) >> shr_x) + ((arg_w*SW) >> shr_w) + arg_add*IC (depthwise: + arg_add), floor shifts;
3. bn = ((acc*norm_mul) >> norm_shift) + norm_add, floor;
4. the activation segment is the last of the 16 whose x_start <= bn (segment 0 below them all);
   out = clamp(carry_shift((bn - x_start)*y_mul, shift) + bias, 0, 255), carry_shift being the SDK's
   kpu_carry_shift as written (half up for values >= 0);
5. pooling (POOL_TYPES), output floor(in / stride).
Chosen where nothing public settles it: acc and bn wrap to 36 signed bits (nncase asserts they fit), a shift
past 63 acts as 63, mean pools round down (nncase v0.1's emulator).

`wrap`, `accumulate`, `bn_value`, `batchnorm`, `segment`, `carry_shift` and `activate` take numpy int64 arrays
or plain integers and compile in numba (register_jitable): the emulator's compiled kernels call these very functions.
"""
from dataclasses import dataclass
from functools import reduce

import numpy as np
from numba.extending import register_jitable

ACC_BITS = 36          # the accumulator and BN registers: values wrap at 36 signed bits
SEGMENTS = 16          # activation table entries
SHIFT_MAX = 63         # larger shift_number values act as 63 (int64 arithmetic)

# pool_type -> (kind, window, stride); kinds: max, mean, sample_lt (left-top), sample_rt (right-top)
POOL_TYPES = {
    0: ("none", 1, 1),
    1: ("max", 2, 2),
    2: ("mean", 2, 2),
    3: ("max", 4, 4),
    4: ("mean", 4, 4),
    5: ("sample_lt", 2, 2),
    6: ("sample_rt", 2, 2),
    7: ("sample_lt", 4, 4),
    8: ("mean", 2, 1),
    9: ("max", 2, 1),
}


@dataclass(frozen=True, eq=False)
class ConvArith:
    """Every number one K210_CONV layer's arithmetic reads: its weights, conv registers, BN and activation tables.

    arg_add is the register's value (the KPU multiplies it by IC, by 1 for depthwise); the BN arrays have one
    int64 per output channel, the activation arrays one per table entry (16)."""
    weights: np.ndarray          # (oc, ic, k, k), depthwise (c, k, k); uint8 (uint16 in 16-bit models)
    depthwise: bool
    pad_value: int
    arg_x: int
    shr_x: int
    arg_w: int
    shr_w: int
    arg_add: int
    norm_mul: np.ndarray
    norm_shift: np.ndarray
    norm_add: np.ndarray
    x_start: np.ndarray
    y_mul: np.ndarray
    shift: np.ndarray
    bias: np.ndarray
    pool_type: int = 0

    @property
    def kernel(self) -> int:
        return self.weights.shape[-1]

    @property
    def taps(self) -> int:
        """Inputs under one output: k*k*IC (depthwise k*k)."""
        w = self.weights
        return w.shape[-1] * w.shape[-2] * (1 if self.depthwise else w.shape[1])

    @property
    def arg_add_total(self) -> int:
        """arg_add as the KPU adds it: times IC, or once for depthwise."""
        return self.arg_add * (1 if self.depthwise else self.weights.shape[1])

    def weight_sums(self) -> np.ndarray:
        """SW per output channel (int64)."""
        return self.weights.astype(np.int64).reshape(self.weights.shape[0], -1).sum(axis=1)


def conv_arith(regs, weights, bn, act) -> ConvArith:
    """The ConvArith of a layer from its registers (k210.registers.LayerRegs), weights, BN table (mul, add,
    shift) and activation table (16 ActSegment)."""
    cv, kp = regs.conv_value, regs.kernel_pool_type_cfg
    mul, add, shift = (np.asarray(v, np.int64) for v in bn)

    def table(name):
        return np.array([getattr(s, name) for s in act], np.int64)
    return ConvArith(weights, regs.depthwise, kp.pad_value, cv.arg_x, cv.shr_x, cv.arg_w, cv.shr_w,
                     regs.conv_value2.arg_add, mul, shift, add, table("x_start"), table("y_mul"), table("shift"),
                     table("bias"), kp.pool_type)


# ---- stages on plain integers or int64 arrays (numba compiles them too) ----

@register_jitable
def wrap(v):
    """v wrapped to ACC_BITS signed bits, as the KPU's registers hold it."""
    half = 1 << (ACC_BITS - 1)
    return ((v + half) & ((1 << ACC_BITS) - 1)) - half


@register_jitable
def accumulate(s, sx, c_w, arg_x, shr_x):
    """Stage 2: acc = S + ((arg_x*SX) >> shr_x) + c_w, wrapped, with c_w = ((arg_w*SW) >> shr_w) + arg_add*IC of
    the channel (weight_term)."""
    return wrap(s + ((arg_x * sx) >> shr_x) + c_w)


def weight_term(a: ConvArith) -> np.ndarray:
    """((arg_w*SW) >> shr_w) + arg_add*IC per output channel: the part of acc that does not depend on x."""
    return ((a.arg_w * a.weight_sums()) >> a.shr_w) + a.arg_add_total


@register_jitable
def bn_value(acc, mul, shift, add):
    """Stage 3 before the wrap: ((acc*norm_mul) >> norm_shift) + norm_add."""
    return ((acc * mul) >> shift) + add


@register_jitable
def batchnorm(acc, mul, shift, add):
    """Stage 3: bn = ((acc*norm_mul) >> norm_shift) + norm_add, wrapped."""
    return wrap(bn_value(acc, mul, shift, add))


@register_jitable
def segment(bn, x_start):
    """The activation entry bn uses: the last whose x_start <= bn (SDK and nncase v0.1), entry 0 below them all."""
    i = bn * 0
    for k in range(1, len(x_start)):
        i = i + (k - i) * (x_start[k] <= bn)
    return i


@register_jitable
def carry_shift(v, shift):
    """The SDK's kpu_carry_shift: v >> (shift - 1), then halved rounding up where odd and >= 0, down one further
    where odd and negative (as written); shift 0 leaves v."""
    s = np.minimum(shift, SHIFT_MAX)
    pos = s > 0
    t = v >> (s - pos)
    r = (t >> 1) + (t & 1) * (1 - 2 * (t < 0))
    return r * pos + v * (1 - pos)


@register_jitable
def activate(bn, x_start, y_mul, shift, bias):
    """Stage 4: the output byte (as int64) of BN value bn through the activation table."""
    i = segment(bn, x_start)
    out = carry_shift((bn - x_start[i]) * y_mul[i], shift[i]) + bias[i]
    return np.minimum(np.maximum(out, 0), 255)


# ---- whole maps (numpy) ----

def window_taps(a: ConvArith, x: np.ndarray) -> list:
    """The k*k shifted (c, h, w) views of the int64 map x under the kernel, 3x3 padded by 1 with pad_value."""
    c, h, w = x.shape
    if a.kernel == 1:
        return [x]
    xp = np.full((c, h + 2, w + 2), a.pad_value, np.int64)
    xp[:, 1:-1, 1:-1] = x
    return [xp[:, dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)]


def conv_sums(a: ConvArith, x: np.ndarray):
    """Stage 1 on a (ic, h, w) map: (S, SX) as int64, S (oc, h, w); SX (1, h, w), depthwise (c, h, w)."""
    ic, h, w = x.shape
    taps = window_taps(a, np.asarray(x, np.int64))
    oc = a.weights.shape[0]
    if a.depthwise:
        wd = a.weights.astype(np.int64).reshape(oc, -1)
        return sum(wd[:, t, None, None] * v for t, v in enumerate(taps)), sum(taps)
    cols = np.concatenate([v.reshape(ic, -1) for v in taps])                  # (taps*ic, h*w), taps-major
    wcols = a.weights.transpose(0, 2, 3, 1).reshape(oc, -1).astype(np.float64)
    s = wcols @ cols                  # every sum < 2^53: exact in float64
    return s.astype(np.int64).reshape(oc, h, w), cols.sum(axis=0).reshape(1, h, w)


def accumulators(a: ConvArith, x: np.ndarray) -> np.ndarray:
    """Stages 1-2: the (oc, h, w) accumulators of the input map x."""
    s, sx = conv_sums(a, x)
    return accumulate(s, sx, weight_term(a)[:, None, None], a.arg_x, a.shr_x)


def bn_map(a: ConvArith, acc: np.ndarray) -> np.ndarray:
    """Stage 3 on (oc, ...) accumulators."""
    col = (slice(None),) + (None,) * (acc.ndim - 1)
    return batchnorm(acc, a.norm_mul[col], a.norm_shift[col], a.norm_add[col])


def activation_map(a: ConvArith, bn: np.ndarray) -> np.ndarray:
    """Stage 4 on BN values of any shape: uint8 outputs."""
    return activate(bn, a.x_start, a.y_mul, a.shift, a.bias).astype(np.uint8)


def pool(y: np.ndarray, pool_type: int) -> np.ndarray:
    """Stage 5 on (c, h, w) values 0..255 (uint8, or integral floats): output floor(in / stride); mean rounds down.
    Pools 8 and 9 (2x2 window, stride 1) keep the size; at the last row and column they see only the map."""
    kind, win, stride = POOL_TYPES[pool_type]
    if kind == "none":
        return y
    c, h, w = y.shape
    oh, ow = h // stride, w // stride
    if kind == "sample_lt":
        return y[:, :oh * stride:stride, :ow * stride:stride].copy()
    if kind == "sample_rt":
        return y[:, :oh * stride:stride, stride - 1:ow * stride:stride].copy()
    if stride == win:
        if kind == "max":       # whole rows first, then the columns of a map `win` times smaller
            r = reduce(np.maximum, [y[:, dy:oh * win:win, :ow * win] for dy in range(win)])
            return reduce(np.maximum, [r[:, :, dx::win] for dx in range(win)])
        parts = [y[:, dy:oh * win:win, dx:ow * win:win].astype(np.int64) for dy in range(win) for dx in range(win)]
        return (sum(parts) // (win * win)).astype(y.dtype)
    if kind == "max":       # rows, then columns; the last row and column keep what lies inside the map
        m = y.copy()
        np.maximum(m[:, :, :-1], y[:, :, 1:], out=m[:, :, :-1])
        np.maximum(m[:, :-1, :], m[:, 1:, :].copy(), out=m[:, :-1, :])
        return m
    yp = np.pad(y.astype(np.int64), ((0, 0), (0, 1), (0, 1)))
    inside = np.full((h, w), 4, np.int64)
    inside[-1, :] = 2
    inside[:, -1] = 2
    inside[-1, -1] = 1
    return (sum(yp[:, dy:dy + h, dx:dx + w] for dy in range(2) for dx in range(2)) // inside).astype(y.dtype)


def forward(a: ConvArith, x: np.ndarray) -> np.ndarray:
    """The layer's uint8 output map from its (ic, h, w) input map: every stage in order."""
    return pool(activation_map(a, bn_map(a, accumulators(a, x))), a.pool_type)
