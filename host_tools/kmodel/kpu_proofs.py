"""What the emulator's fast path may assume about one K210_CONV layer, proved from the layer's numbers.

Each proof reads a k210.arith.ConvArith and states a fact about every uint8 input, which kpu_fast then uses to
skip work while giving the reference's integers (k210.arith.forward):
- bounds: the accumulator's extremes per channel (k210.envelope.acc_range, exact) and the BN value's; where both
  stay inside 36 bits, nothing wraps;
- live entries: the activation entries the segment rule can pick over that BN range, as a default entry then
  strictly increasing starts: the rule over them gives what it gives over all 16;
- lookup table: for tables of many live pieces, the activation's outputs over the BN values where it varies;
- float32 path: where the activation is one rising piece between constants, BN + activation as one float32
  multiply-add and a floor, with a per-channel error bound that flags the elements it cannot settle;
- monotone: BN + activation never decrease as acc grows, so max pooling may run first on acc.
"""
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from host_tools.k210 import arith as A
from host_tools.k210.envelope import acc_range

LUT_PIECES = 4     # activation tables with more live pieces than this are looked up
LUT_MAX = 1 << 20  # largest lookup table (entries) a layer builds
HALF = 1 << (A.ACC_BITS - 1)


@dataclass(frozen=True, eq=False)
class Affine:
    """The float32 path of a layer (see affine): per channel the accumulator A0 where the output is mid-range,
    alpha (outputs per acc unit), beta + E and the margin M, and the clip (lo, hi) as float32."""
    a0: np.ndarray
    alpha: np.ndarray
    beta_e: np.ndarray
    margin: np.ndarray
    clip: np.ndarray


@dataclass(frozen=True, eq=False)
class Proofs:
    acc_bounds: np.ndarray       # (2, oc): lowest, highest accumulator per channel over every input
    bn_range: tuple              # (lowest, highest) BN value over the layer, or None where acc or BN may wrap
    live: np.ndarray             # indices of the activation entries that can be picked (see live_entries)
    lut: np.ndarray              # uint8 outputs from bn = lut_lo on (empty: no table)
    lut_lo: int
    affine: Affine               # or None
    monotone: bool

    @property
    def may_wrap(self) -> bool:
        return self.bn_range is None


def prove(a: A.ConvArith) -> Proofs:
    acc = np.stack(acc_range(a))
    rng = bn_range(a, acc)
    live = live_entries(a, rng)
    lut, lut_lo = lookup_table(a, live, rng)
    aff = affine(a, live, rng, acc) if not lut.size else None
    return Proofs(acc, rng, live, lut, lut_lo, aff, rng is not None and monotone(a, live, rng))


def bn_range(a: A.ConvArith, acc: np.ndarray):
    """(lowest, highest) BN value over every input, or None if an accumulator or BN value may leave 36 bits."""
    if acc.min() < -HALF or acc.max() >= HALF:
        return None
    ends = np.stack([(v * a.norm_mul >> a.norm_shift) + a.norm_add for v in acc])
    if ends.min() < -HALF or ends.max() >= HALF:
        return None
    return int(ends.min()), int(ends.max())


def live_entries(a: A.ConvArith, rng) -> np.ndarray:
    """Indices of the activation entries the segment rule can pick, in the form the kernels take: a default entry,
    then strictly increasing starts. An entry never wins if a later one starts at or below it (nncase pads tables
    with copies of the last); with a BN range, entries past it go too, and the default becomes the one the range's
    lowest value picks."""
    xs = a.x_start
    keep = [0] + [i for i in range(1, len(xs)) if (xs[i + 1:] > xs[i]).all()]
    if rng is not None:
        starts = xs[keep]
        keep = keep[A.segment(rng[0], starts):A.segment(rng[1], starts) + 1]
    return np.array(keep)


def output(a: A.ConvArith, bn) -> np.ndarray:
    """The activation stage's outputs (uint8) for BN values bn."""
    return A.activation_map(a, np.asarray(bn, np.int64))


def lookup_table(a: A.ConvArith, live, rng):
    """(outputs, first bn) of the activation where it varies, for tables of many pieces (nncase's leaky ReLU has
    16: a pass per piece would cost more than one lookup); empty when not worth it or not provable.

    Below the second entry's start a constant first entry gives one value; past the point where a rising last
    piece reaches 255 (or past a constant last piece's start) the value stays; the table holds one point of each
    constant end, and the kernels clip the index into it."""
    none = (np.zeros(0, np.uint8), 0)
    if rng is None or len(live) <= LUT_PIECES:
        return none
    bl, bh = rng
    xs, ym = a.x_start[live], a.y_mul[live]
    lo = max(bl, int(xs[1]) - 1) if ym[0] == 0 else bl
    if ym[-1] == 0:
        hi = min(bh, int(xs[-1]))
    elif ym[-1] > 0 and output(a, [bh])[0] == 255:
        s, e = max(int(xs[-1]), lo), bh          # first bn reaching 255 in the rising last piece
        while s < e:
            mid = (s + e) // 2
            s, e = (s, mid) if output(a, [mid])[0] == 255 else (mid + 1, e)
        hi = s
    else:
        hi = bh
    if hi - lo >= LUT_MAX:
        return none
    return output(a, np.arange(lo, hi + 1)), lo


def affine(a: A.ConvArith, live, rng, acc) -> Affine:
    """The float32 path of the layer, or None where it does not apply.

    It applies when, over the reachable bn, the activation is one rising piece (x, y, s, b) between constant
    pieces: lo below it, hi above it (ReLU, ReLU6 with their zero points; with no piece above, the KPU's clamp at
    255). With acc = A, bn = floor(A*mul/2^sh) + add: the SDK's carry shift rounds half up for v = (bn - x)*y >= 0,
    so there out = clip(floor(Z), lo, hi) with Z = v/2^s + 1/2 + b; below x, Z < b + 1/2 gives lo too when
    b <= lo (the rising piece is the default entry: lo = 0 and b <= 0, as the carry shift of v < 0 is <= -1).
    Writing bn = A*mul/2^sh + add - f, f in [0, 1): Z lies in (z - delta, z], z = (A - A0)*alpha + beta,
    delta = y/2^s. The kernel computes t = fl32(fl32(A - A0) * alpha + fl32(beta + E)) (or, with the multiply
    and add fused, one rounding fewer); each float32 step adds a relative error <= u = 2^-24, so
    |t - (z + E)| <= 4.1u(|z| + |beta| + 1) <= E for |z| <= 258, with E = 5u(259 + |beta|). Then Z is in
    (t - 2E - delta, t], and floor(Z) = floor(t) unless t - floor(t) < M = 2E + delta + 2^-22 (the last term
    for the rounding of t - floor(t)): the kernels redo such elements with the integer stages. For |z| > 258
    the same relative bounds keep t and Z on one side of the clip.
    A0 is the acc where z = 128, so beta stays near 128; A - A0 must fit int32 for every reachable acc."""
    if rng is None:
        return None
    xs, ym, sh, bs = (v[live] for v in (a.x_start, a.y_mul, np.minimum(a.shift, A.SHIFT_MAX), a.bias))
    rising = np.flatnonzero(ym != 0)
    if len(rising) != 1 or ym[rising[0]] < 0:
        return None
    k = rising[0]
    x, y, s, b = (int(v[k]) for v in (xs, ym, sh, bs))
    bl, bh = rng
    const = np.clip(bs, 0, 255)
    lo = int(const[0]) if k > 0 else 0
    hi = int(const[k + 1]) if k + 1 < len(xs) else 255
    top = bh if k + 1 == len(xs) else min(bh, int(xs[k + 1]) - 1)     # last bn of the rising piece

    def f(bn):
        return int(np.clip(A.carry_shift(np.int64((bn - x) * y), s) + b, 0, 255))
    if (const[:k] != lo).any() or (const[k + 1:] != hi).any() or not lo <= hi:
        return None
    if (k == 0 and bl < x and b > 0) or (k > 0 and b != lo) or (top >= x and f(top) > hi):
        return None
    if k + 1 < len(xs) and f(int(xs[k + 1])) < hi:
        return None
    u = 2.0 ** -24
    delta = y / 2.0 ** s
    cols = []
    for c in range(len(a.norm_mul)):
        mul, shift, add = int(a.norm_mul[c]), int(a.norm_shift[c]), int(a.norm_add[c])
        a_lo, a_hi = (int(v) for v in acc[:, c])
        zc = Fraction(255 - 2 * b, 2) * 2 ** s / y - add + x          # bn where z = 128 ...
        a0 = int(min(max(round(zc * 2 ** shift / mul), a_lo), a_hi)) if mul else a_lo   # ... and its acc
        beta = (Fraction(a0 * mul, 2 ** shift) + add - x) * y / 2 ** s + Fraction(1, 2) + b
        e = 5 * u * (259 + abs(float(beta)))
        margin = 2 * e + delta + 2.0 ** -22
        if max(a_hi - a0, a0 - a_lo) >= 1 << 31 or abs(float(beta)) > 1 << 16 or margin > 2.0 ** -8:
            return None
        cols.append((a0, mul * y / 2.0 ** (shift + s), float(beta) + e, margin))
    a0, alpha, beta_e, margin = zip(*cols)
    return Affine(np.array(a0, np.int64), np.array(alpha, np.float32), np.array(beta_e, np.float32),
                  np.array(margin, np.float32), np.array([lo, hi], np.float32))


def monotone(a: A.ConvArith, live, rng) -> bool:
    """Whether BN + activation never decrease as acc grows, so max pooling may run first on acc (4x fewer
    elements to finish). Each piece is non-decreasing when its y_mul >= 0 and bn is at or above its start
    (the carry shift of negatives is not monotone); across pieces, checked at every reachable start."""
    bl, bh = rng
    xs, ym = a.x_start[live], a.y_mul[live]
    if (a.norm_mul < 0).any() or (ym < 0).any() or (bl < xs[0] and ym[0] != 0):
        return False
    pts = {bl, bh} | {v for x in xs if bl < x <= bh for v in (int(x) - 1, int(x))}
    f = output(a, sorted(pts)).astype(np.int64)
    return bool((np.diff(f) >= 0).all())
