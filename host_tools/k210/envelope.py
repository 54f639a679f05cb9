"""The arithmetic envelope of silicon-proven kmodels: field values and worst-case datapath widths of K210_CONV layers.

No public document gives the KPU's internal widths; what is known to compute right on real boards are the
vendor-made V3 files (nncase v0.1, Maix-EMC). ../shared/docs/kpu-arithmetic-envelope.md measured their 186 conv
layers: these limits are their maxima. A layer inside them asks nothing of the chip that those files did not.

Widths are signed bits over every uint8 input (all pixels and pad values in 0..255), from the registers alone
(arith.ConvArith): each tap's input goes to 0 or 255 by the sign of its weight in the accumulator, which is
exact for the extremes; BN is monotone in acc; each activation entry is measured over the BN values that pick
it. Entries with y_mul 0 multiply nothing, so their (bn - x_start) is not measured.
"""
from dataclasses import dataclass

import numpy as np

from host_tools.k210.arith import ConvArith, weight_term

# field -> (lowest, highest) over every channel / activation entry of the vendor files
FIELDS = {
    "norm_mul": (0, 2_782_024),
    "norm_add": (-3_233_071, 4_214_168),
    "norm_shift": (11, 15),
    "y_mul": (0, 27_544),
    "shift": (0, 29),
    "bias": (0, 238),
}
# worst-case datapath quantity -> the vendor files' widest, in signed bits
WIDTHS = {
    "accumulator": 25,
    "acc*norm_mul": 42,
    "bn": 28,
    "bn-x_start": 28,
    "(bn-x_start)*y_mul": 42,
}


@dataclass(frozen=True)
class Excess:
    """One field or width of a layer outside the envelope."""
    name: str
    value: int          # the field's value, or the width in bits
    allowed: str

    def __str__(self):
        what = "%d bits" % self.value if self.name in WIDTHS else "%d" % self.value
        return "%s %s (vendor envelope %s)" % (self.name, what, self.allowed)


def bits(v) -> int:
    """Signed bits that hold the integer v (0 and -1 need 1)."""
    v = int(v)
    return (v if v >= 0 else ~v).bit_length() + 1


def acc_range(a: ConvArith):
    """(lowest, highest) accumulator per output channel over every uint8 input: acc = floor(sum x_i*e_i / 2^shr_x)
    + the weight term, e_i = w_i*2^shr_x + arg_x, so each x_i is 0 or 255 by the sign of e_i."""
    oc = a.weights.shape[0]
    e = a.weights.astype(np.int64).reshape(oc, -1) * (1 << a.shr_x) + a.arg_x
    c = weight_term(a)
    hi = ((255 * np.where(e > 0, e, 0).sum(axis=1)) >> a.shr_x) + c
    lo = ((255 * np.where(e < 0, e, 0).sum(axis=1)) >> a.shr_x) + c
    return lo, hi


def measure(a: ConvArith, acc=None) -> dict:
    """Every field's (lowest, highest) and every width's bits for this layer (its worst channel and entry); acc:
    acc_range(a) if the caller has it."""
    acc_lo, acc_hi = acc_range(a) if acc is None else acc
    mul, shift, add = a.norm_mul, a.norm_shift, a.norm_add
    ends = [(v * mul >> shift) + add for v in (acc_lo, acc_hi)]
    bn_lo, bn_hi = np.minimum(*ends), np.maximum(*ends)
    out = {"norm_mul": (mul.min(), mul.max()), "norm_add": (add.min(), add.max()),
           "norm_shift": (shift.min(), shift.max())}
    for name, arr in (("y_mul", a.y_mul), ("shift", a.shift), ("bias", a.bias)):
        out[name] = (arr.min(), arr.max())
    out["accumulator"] = max(bits(acc_lo.min()), bits(acc_hi.max()))
    out["acc*norm_mul"] = max(bits(v) for v in np.concatenate([acc_lo * mul, acc_hi * mul]))
    out["bn"] = max(bits(bn_lo.min()), bits(bn_hi.max()))
    # entry k is picked for bn in [x_k, m_k - 1], m_k the lowest later start (entry 0: everything below m_0)
    xs, ym = a.x_start, a.y_mul
    n = len(xs)
    later_min = [int(xs[k + 1:].min()) if k + 1 < n else None for k in range(n)]
    diff = prod = 1
    for k in range(n):
        if ym[k] == 0:
            continue
        lo = bn_lo if k == 0 else np.maximum(bn_lo, xs[k])
        hi = bn_hi if later_min[k] is None else np.minimum(bn_hi, later_min[k] - 1)
        used = lo <= hi
        if not used.any():
            continue
        d = np.concatenate([lo[used], hi[used]]) - int(xs[k])
        diff = max(diff, max(bits(v) for v in d))
        prod = max(prod, max(bits(v * int(ym[k])) for v in d))
    out["bn-x_start"], out["(bn-x_start)*y_mul"] = diff, prod
    return {k: (tuple(int(v) for v in val) if isinstance(val, tuple) else int(val)) for k, val in out.items()}


def excesses(a: ConvArith, acc=None) -> list:
    """The fields and widths of this layer outside the envelope (empty: inside); acc as for measure."""
    m = measure(a, acc)
    out = []
    for name, (lo, hi) in FIELDS.items():
        v_lo, v_hi = m[name]
        if v_lo < lo or v_hi > hi:
            out.append(Excess(name, v_hi if v_hi > hi else v_lo, "%d..%d" % (lo, hi)))
    for name, limit in WIDTHS.items():
        if m[name] > limit:
            out.append(Excess(name, m[name], "<= %d bits" % limit))
    return out
