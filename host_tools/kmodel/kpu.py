"""One K210_CONV layer on the emulated KPU: KPU RAM layout, conv as a float64 GEMM, integer post-processing.

The conv sum S = sum(x*w) of uint8 x uint8 (or uint16 weights) products over at most 1024*9 terms stays below
2^53, so a float64 GEMM (BLAS) computes it exactly. Two paths give the same integers:
- fast: when bounds derived from the layer's registers at plan time prove that every intermediate value is an
  integer (or dyadic fraction) below 2^53 and that nothing wraps at 36 bits, the per-pixel correction rides in
  the GEMM as one extra row (or, when a = arg_x/2^shr_x is an integer as nncase writes it, in the weights as
  w + a), BN and activation run as float64 multiply-add-floor, and max pooling goes BEFORE BN/activation when
  both are monotone (4x fewer elements). Every floor is exact there. Depthwise layers have no GEMM: 9 shifted
  multiply-adds, in float32 when every partial sum is an integer below 2^24, channels-last for many channels.
- exact: the straightforward int64 stages (accumulate, batchnorm, activation with the SDK's carry shift),
  used when the bounds do not hold and as the reference the tests compare the fast path against.
"""
import numpy as np
from numpy.lib.stride_tricks import as_strided

from host_tools.kmodel import regs as R

ACC_BITS = 36     # nncase asserts the accumulator fits 36 signed bits; we wrap like a 36-bit register
EXACT = 2.0 ** 52  # below this every integer (and product we form) is exact in float64
LUT_MAX = 1 << 22  # largest activation lookup table (bytes) a layer may build


def _wrap(v: np.ndarray, bits: int) -> np.ndarray:
    half = np.int64(1 << (bits - 1))
    return ((v + half) & np.int64((1 << bits) - 1)) - half


# ---- KPU RAM placement ----

def ram_index(addr: int, shape, groups: int, row_len: int, ch_switch: int) -> np.ndarray:
    """Byte offsets in KPU RAM of a (c, h, w) map placed by the layout registers (addr in 64-byte rows)."""
    c, h, w = shape
    pitch = 64 // groups
    ch = np.arange(c)
    base = addr * 64 + (ch // groups) * ch_switch * 64 + (ch % groups) * pitch
    return (base[:, None, None] + (np.arange(h) * row_len * 64)[None, :, None] + np.arange(w)[None, None, :])


def rule_index(addr: int, shape) -> np.ndarray:
    """Byte offsets of a map uploaded by the runtime (SDK kpu_upload_core: layout from the width alone)."""
    c, h, w = shape
    lay = R.row_layout(w)
    return ram_index(addr, shape, lay.groups, lay.row_len, lay.row_len * h)


class RamMap:
    """A (c, h, w) map in KPU RAM as strided views (no index arrays); the reader has bounds-checked it."""

    def __init__(self, addr, shape, groups, row_len, ch_switch):
        c, h, w = shape
        self.shape, self.addr, self.g = shape, addr, groups
        self.pitch, self.line, self.cs = 64 // groups, row_len * 64, ch_switch * 64
        last = addr * 64 + (-(-c // groups) - 1) * self.cs + (min(c, groups) - 1) * self.pitch \
            + (h - 1) * self.line + w
        if last > R.KPU_RAM_BYTES:
            raise ValueError("map %s at row %d runs past KPU RAM" % (shape, addr))

    def _views(self, ram):
        c, h, w = self.shape
        base = ram[self.addr * 64:]
        full, rest = divmod(c, self.g)
        out = []
        if full:
            out.append((0, full * self.g, as_strided(base, (full, self.g, h, w), (self.cs, self.pitch, self.line, 1))))
        if rest:
            b = base[full * self.cs:]
            out.append((full * self.g, c, as_strided(b, (1, rest, h, w), (self.cs, self.pitch, self.line, 1))))
        return out

    def read(self, ram) -> np.ndarray:
        c, h, w = self.shape
        if self.g == 1:
            return as_strided(ram[self.addr * 64:], (c, h, w), (self.cs, self.line, 1))
        return np.concatenate([v.reshape(-1, h, w) for _, _, v in self._views(ram)])

    def write(self, ram, y):
        c, h, w = self.shape
        for a, b, v in self._views(ram):
            v[...] = y[a:b].reshape(v.shape)


# ---- the plan of one layer ----

class ConvPlan:
    """What one K210_CONV layer needs at run time, computed once per model."""

    def __init__(self, layer):
        regs = layer.regs
        self.layer = layer
        self.in_shape, self.out_shape = layer.in_shape, layer.out_shape
        ic, ih, iw = self.in_shape
        oc = self.out_shape[0]
        c = regs.kernel_calc_type_cfg
        wb = regs.write_back_cfg
        self.src = RamMap(regs.image_addr.image_src_addr, self.in_shape, c.coef_group, c.row_switch_addr,
                          c.channel_switch_addr)
        self.dst = RamMap(regs.image_addr.image_dst_addr, self.out_shape, wb.wb_group, wb.wb_row_switch_addr,
                          wb.wb_channel_switch_addr)
        self.k = regs.kernel
        self.taps = self.k * self.k
        self.depthwise = regs.depthwise
        self.pad_value = regs.kernel_pool_type_cfg.pad_value
        self.pool = regs.kernel_pool_type_cfg.pool_type
        cv = regs.conv_value
        self.arg_x, self.shr_x, self.arg_w, self.shr_w = cv.arg_x, cv.shr_x, cv.arg_w, cv.shr_w
        self.arg_add = regs.conv_value2.arg_add * (1 if self.depthwise else ic)
        w = layer.weights.astype(np.int64)
        self.sum_w = w.reshape(oc, -1).sum(axis=1)                      # SW per output channel
        self.c_w = (self.arg_w * self.sum_w) >> self.shr_w              # per-channel correction (exact int)
        if self.depthwise:
            self.wd = w.reshape(oc, self.taps).astype(np.float64)
        else:
            # taps-major columns (dy, dx, ic) to match the im2col rows; one more column of 1 for the
            # per-pixel correction row
            wm = w.transpose(0, 2, 3, 1).reshape(oc, -1).astype(np.float64)
            self.wm = np.ascontiguousarray(np.concatenate([wm, np.ones((oc, 1))], axis=1))
        self.bn_mul, self.bn_add, self.bn_shift = layer.bn
        act = layer.act
        self.x_start = np.array([s.x_start for s in act], np.int64)
        self.y_mul = np.array([s.y_mul for s in act], np.int64)
        self.a_shift = np.array([min(s.shift, 63) for s in act], np.int64)
        self.a_bias = np.array([s.bias for s in act], np.int64)
        self.sorted_starts = bool(np.all(np.diff(self.x_start) >= 0))
        self.macs = oc * (1 if self.depthwise else ic) * self.taps * ih * iw
        self.wide_weights = layer.weights.dtype.itemsize > 1
        self.dw32 = self.dw_last = False
        self.fast = self._plan_fast()
        self._plan_depthwise_last()

    # ---- bounds: when is the float64 path exact? ----

    def _plan_fast(self) -> bool:
        ic = self.in_shape[0]
        n_x = self.taps * (1 if self.depthwise else ic)      # inputs per window
        sx_max = 255 * n_x
        t_ends = sorted(((self.arg_x * s) >> self.shr_x) for s in (0, sx_max))
        t_lo, t_hi = t_ends[0] + self.arg_add, t_ends[1] + self.arg_add
        # GEMM + correction row stays exact: |S| + |t| < 2^52
        s_hi = 255 * self.sum_w
        if int(s_hi.max()) + max(abs(t_lo), abs(t_hi)) >= EXACT:
            return False
        acc_lo = t_lo + self.c_w                              # S >= 0 (unsigned x and w)
        acc_hi = s_hi + t_hi + self.c_w
        lim = 1 << (ACC_BITS - 1)
        if acc_lo.min() < -lim or acc_hi.max() >= lim:        # would wrap at 36 bits
            return False
        mul = self.bn_mul
        mag = np.maximum(np.abs(acc_lo), np.abs(acc_hi)) + np.abs(self.c_w)
        # (acc - c_w)*m, c_w*m and their sum + add are exact as multiples of 2^-shift
        if (mag * np.abs(mul) * 2 + (np.abs(self.bn_add) << self.bn_shift)).max() >= EXACT:
            return False
        bn_a = ((acc_lo * mul) >> self.bn_shift) + self.bn_add
        bn_b = ((acc_hi * mul) >> self.bn_shift) + self.bn_add
        bl, bh = int(np.minimum(bn_a, bn_b).min()), int(np.maximum(bn_a, bn_b).max())
        if bl < -lim or bh >= lim:
            return False
        # activation over the reachable bn range [bl, bh], evaluated exactly at every segment edge; with
        # y_mul >= 0 in every reachable segment (and bn never below the first start) f is non-decreasing
        # inside each segment (the carry shift of negatives is not monotone, hence the exact path for them)
        if not self.sorted_starts or bl < self.x_start[0]:
            return False
        edges = [bl, bh] + [e for x in self.x_start[1:] if bl < x <= bh for e in (int(x) - 1, int(x))]
        E = np.array(sorted(set(edges)), np.int64)
        fE = self.activation(E).astype(np.int64)
        reach = set(np.searchsorted(self.x_start, E, side="right") - 1)
        if any(self.y_mul[i] < 0 for i in reach):
            return False
        self.m = (mul.astype(np.float64) * np.ldexp(1.0, -self.bn_shift))[:, None]
        self.k2 = (self.c_w * self.m[:, 0] + self.bn_add)[:, None]
        self.monotone = bool((fE[1:] >= fE[:-1]).all()) and bool((mul >= 0).all())
        # f is monotone inside each segment, so it is constant below the first edge where it changes and
        # above the last: a lookup table over [L, H] with bn clipped to it gives f exactly
        change = np.nonzero(fE[1:] != fE[:-1])[0]
        if change.size == 0:
            L = H = bl                              # f is constant over the whole range
        else:
            # inside the segment piece where f leaves its first / reaches its last value, the exact point
            lo_i, hi_i = change[0], change[-1] + 1
            L = self._last_equal(int(E[lo_i]), int(E[lo_i + 1]), int(fE[0]))
            H = self._first_equal(int(E[hi_i - 1]), int(E[hi_i]), int(fE[-1]))
        if (mag * np.abs(mul) * 2 + ((np.abs(self.bn_add) + abs(L)) << self.bn_shift)).max() >= EXACT:
            return False
        self.lut = self.buckets = None
        if H - L < LUT_MAX:
            self.lut = self.activation(np.arange(L, H + 1, dtype=np.int64))
        else:
            # Compilers that keep many BN units per output step (ours) give ranges of 2^27 and more: too big
            # for one table, but the at most 255 steps of f lie far apart, so a table per bucket works.
            self.buckets = self._bucket_table(L, H, [int(e) for e in E])
            if self.buckets is None:
                return False
        self.k2 = self.k2 - L                     # index = clip(floor(acc*m + k2 - L), 0, H - L)
        self.lut_hi = float(H - L)
        self.idx32 = max(abs(bl - L), abs(bh - L)) + 1 < 2 ** 31     # every index fits int32
        self.chunks = self._plan_gemm(max(abs(t_lo), abs(t_hi)))
        return self.chunks is not None

    def _change_points(self, L: int, H: int, edges) -> np.ndarray:
        """Every bn in (L, H] where f(bn) != f(bn - 1).

        Between segment edges f is non-decreasing (checked by _plan_fast), so inside each piece the change
        points are the first bn reaching each level, found for all levels at once by vectorised bisection; a
        piece's first bn is added too, since f may jump there.
        """
        bounds = sorted({L, H + 1} | {e for e in edges if L < e <= H})
        found = []
        for p0, p1 in zip(bounds[:-1], bounds[1:]):
            p1 -= 1                                   # the piece is [p0, p1]
            v0, v1 = (int(v) for v in self.activation(np.array([p0, p1], np.int64)))
            if p0 > L:
                found.append(p0)
            if v1 > v0:
                target = np.arange(v0 + 1, v1 + 1, dtype=np.int64)
                lo = np.full(target.size, p0, np.int64)
                hi = np.full(target.size, p1, np.int64)
                while (lo < hi).any():
                    mid = (lo + hi) // 2
                    up = self.activation(mid).astype(np.int64) >= target
                    hi = np.where(up, mid, hi)
                    lo = np.where(up, lo, mid + 1)
                found.extend(int(v) for v in lo)
        pts = np.unique(np.array(found, np.int64))
        if pts.size:
            before = self.activation(pts - 1)
            pts = pts[self.activation(pts) != before]
        return pts

    def _bucket_table(self, L: int, H: int, edges):
        """(inverse bucket width, thresholds, values) so that f(L + r) = values[2*b + (r >= thr[b])], b = r >> s.

        Buckets are as wide as the closest two change points allow, so each holds at most one; None when
        that would need more than LUT_MAX buckets.
        """
        r = self._change_points(L, H, edges) - L
        gap = int(np.diff(r).min()) if r.size > 1 else H - L + 1
        s = min(gap.bit_length() - 1, 62)
        n = ((H - L) >> s) + 1
        if n > LUT_MAX:
            return None
        starts = L + (np.arange(n, dtype=np.int64) << s)
        lo = self.activation(starts)
        thr = np.full(n, np.inf)
        hi = lo.copy()
        b = r >> s
        thr[b] = r
        hi[b] = self.activation(r + L)
        return np.ldexp(1.0, -s), thr, np.stack([lo, hi], axis=1).reshape(-1)

    def _f(self, bn: int) -> int:
        return int(self.activation(np.array([bn], np.int64))[0])

    def _last_equal(self, lo: int, hi: int, v: int) -> int:
        """Largest bn in [lo, hi] with f(bn) == v, given f(lo) == v and f non-decreasing on [lo, hi]."""
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._f(mid) == v:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def _first_equal(self, lo: int, hi: int, v: int) -> int:
        """Smallest bn in [lo, hi] with f(bn) == v, given f(hi) == v and f non-decreasing on [lo, hi]."""
        while lo < hi:
            mid = (lo + hi) // 2
            if self._f(mid) == v:
                hi = mid
            else:
                lo = mid + 1
        return lo

    # ---- exact int64 stages (reference) ----

    def conv_sums(self, x: np.ndarray):
        """(S, SX) as int64: S per output channel and pixel, SX the window sum (padding included)."""
        ic, h, w = x.shape
        taps = self._taps(np.asarray(x, np.float64))
        if self.depthwise:
            s = np.zeros((ic, h, w), np.float64)
            sx = np.zeros((ic, h, w), np.float64)
            for t, v in enumerate(taps):
                s += self.wd[:, t, None, None] * v
                sx += v
            return s.astype(np.int64), sx.astype(np.int64)
        cols = np.empty((len(taps) * ic, h * w), np.float64)
        for t, v in enumerate(taps):
            cols[t * ic:(t + 1) * ic].reshape(ic, h, w)[...] = v
        s = self.wm[:, :-1] @ cols
        sx = cols.sum(axis=0)
        return s.reshape(-1, h, w).astype(np.int64), sx.reshape(1, h, w).astype(np.int64)

    def _taps(self, x):
        ic, h, w = x.shape
        if self.k == 1:
            return [x]
        xp = np.full((ic, h + 2, w + 2), self.pad_value, x.dtype)
        xp[:, 1:-1, 1:-1] = x
        return [xp[:, dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)]

    def accumulate(self, s, sx):
        """acc = S + ((arg_x*SX) >> shr_x) + ((arg_w*SW) >> shr_w) + arg_add*IC (floor shifts)."""
        acc = s + ((np.int64(self.arg_x) * sx) >> self.shr_x)
        acc += self.c_w[:, None, None]
        acc += self.arg_add
        return _wrap(acc, ACC_BITS)

    def batchnorm(self, acc):
        oc = acc.shape[0]
        a = acc.reshape(oc, -1)
        bn = ((a * self.bn_mul[:, None]) >> self.bn_shift[:, None]) + self.bn_add[:, None]
        return _wrap(bn, ACC_BITS).reshape(acc.shape)

    def activation(self, bn):
        """Segment = the last whose x_start <= bn (SDK, nncase v0.1); rounding as the SDK's kpu_carry_shift."""
        if self.sorted_starts:
            seg = np.searchsorted(self.x_start, bn, side="right") - 1
        else:
            seg = np.zeros(bn.shape, np.intp)
            for i in range(16):
                seg[self.x_start[i] <= bn] = i
        np.maximum(seg, 0, out=seg)     # below every start: segment 0 (its start is -2^35 in real tables)
        v = (bn - self.x_start[seg]) * self.y_mul[seg]
        out = carry_shift(v, self.a_shift[seg]) + self.a_bias[seg]
        return np.clip(out, 0, 255).astype(np.uint8)

    def forward_exact(self, x: np.ndarray) -> np.ndarray:
        s, sx = self.conv_sums(x)
        return pool(self.activation(self.batchnorm(self.accumulate(s, sx))), self.pool)

    # ---- fast float64 path ----

    def _acc_fast(self, x):
        """acc without the per-channel term c_w (it rides in k2), (oc, h, w) float64 or exact float32."""
        ic, h, w = x.shape
        if self.depthwise:
            # sum_t (w_t + a) x_t = S + a*SX exactly (dyadic, < 2^52), and floor(S + a*SX) = S + floor(a*SX);
            # with a an integer every partial sum is an integer below 2^24, exact in float32 (no floor)
            if self.k == 1:
                if self.dw32:
                    return x * self.wd32[0][:, None, None]
                acc = x * self.wdp[:, 0, None, None]
                np.floor(acc, out=acc)
                return acc
            if self.dw32:
                return _depthwise3x3(x, self.wd32.T, self.pad_value, np.float32)
            return _depthwise3x3(x, self.wdp, self.pad_value, np.float64)
        n = self.taps * ic
        cols = np.empty((self.wg.shape[1], h * w), np.float32 if self.chunks else np.float64)
        if self.k == 1:
            cols[:ic].reshape(ic, h, w)[...] = x
        else:
            for t, v in enumerate(self._taps(x)):
                cols[t * ic:(t + 1) * ic].reshape(ic, h, w)[...] = v
        if not self.fold_a:
            # SX: the 3x3 box sum of the channel sum (padding included) -> per-pixel correction row
            csum = x.sum(axis=0, dtype=np.float64)
            if self.k == 3:
                cp = np.full((h + 2, w + 2), float(self.pad_value) * ic)
                cp[1:-1, 1:-1] = csum
                csum = sum(cp[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3))
            cols[n] = (np.floor(csum * (self.arg_x * np.ldexp(1.0, -self.shr_x))) + self.arg_add).reshape(-1)
        if not self.chunks:
            return (self.wg @ cols).reshape(-1, h, w)
        # float32 GEMMs over row blocks whose partial sums stay integers below 2^24, summed in float64
        (a, b, wc), rest = self.chunks[0], self.chunks[1:]
        acc = wc @ cols[a:b]
        if rest:
            acc = acc.astype(np.float64)
            for a, b, wc in rest:
                acc += wc @ cols[a:b]
        return acc.reshape(-1, h, w)

    def _plan_gemm(self, t_bound):
        """Row blocks of the weight matrix for float32 GEMMs that stay exact, or [] for one float64 GEMM."""
        if self.depthwise:
            a = self.arg_x * np.ldexp(1.0, -self.shr_x)
            self.wdp = self.wd + a
            bound = 255 * np.abs(self.wdp).sum(axis=1).max()
            if bound * 2.0 ** self.shr_x >= EXACT:
                return None
            self.k2 = self.k2 + self.arg_add * self.m
            # a an integer (nncase: arg_x = -zero_point << shr_x): taps in float32, exact below 2^24
            self.dw32 = bool(self.arg_x % (1 << self.shr_x) == 0 and bound < 2.0 ** 24)
            if self.dw32:
                self.wd32 = np.ascontiguousarray(self.wdp.T.astype(np.float32))     # (taps, c)
            return []
        n = self.wm.shape[1] - 1
        self.fold_a = self.arg_x % (1 << self.shr_x) == 0
        if self.fold_a:
            # a an integer (nncase): sum (w + a) x = S + a*SX exactly, so a rides in the weights, no SX row,
            # and the correction row's constant arg_add goes into k2
            self.wg = self.wm[:, :n] + (self.arg_x >> self.shr_x)
            self.k2 = self.k2 + self.arg_add * self.m
        else:
            self.wg = self.wm
        wabs = np.abs(self.wg[:, :n])
        chunks, start, run = [], 0, np.zeros(wabs.shape[0])
        limit = 2.0 ** 24 - 1
        for k in range(self.wg.shape[1]):
            col = wabs[:, k] * 255 if k < n else np.full(wabs.shape[0], float(t_bound))
            if col.max() > limit:
                return []                      # one column alone is too big for float32: one float64 GEMM
            if (run + col).max() > limit:
                chunks.append((start, k))
                start, run = k, np.zeros(wabs.shape[0])
            run += col
        chunks.append((start, self.wg.shape[1]))
        if len(chunks) > 4:
            return []                          # many small float32 GEMMs would cost more than one float64
        return [(a, b, np.ascontiguousarray(self.wg[:, a:b].astype(np.float32))) for a, b in chunks]

    def _bn_act_fast(self, acc, m=None, k2=None, out=None):
        """uint8 map: bn = floor(acc*m + k2), then the activation table lookup (m, k2 per channel)."""
        a = np.multiply(acc, self.m[:, :, None] if m is None else m, dtype=np.float64)   # float32 acc too
        np.add(a, self.k2[:, :, None] if k2 is None else k2, out=a)
        if self.buckets is None:
            # truncation is the floor for a >= 0, and below 0 both clip to index 0
            if self.idx32:                    # float64 -> int32 converts far faster than -> int64
                i = a.astype(np.int32).astype(np.intp)
            else:
                i = a.astype(np.intp)
            return self.lut.take(i, mode="clip", out=out)
        np.clip(a, 0, self.lut_hi, out=a)     # >= 0 here, so truncation is the floor
        inv, thr, vals = self.buckets
        b = (a * inv).astype(np.intp)         # floor(a / 2^s) = floor(floor(a) / 2^s) for a >= 0
        i = b << 1
        i += a >= thr.take(b)                 # floor(a) >= t  <=>  a >= t, t an integer
        return vals.take(i, out=out)

    def forward(self, x: np.ndarray) -> np.ndarray:
        if not self.fast:
            return self.forward_exact(x)
        if self.dw_last:
            return pool(self._depthwise_last(x), self.pool)
        acc = self._acc_fast(x)
        kind = R.POOL_TYPES[self.pool][0]
        if kind in ("sample_lt", "sample_rt") or (self.monotone and kind == "max"):
            # sampling commutes with any per-pixel function, max with a non-decreasing one
            return self._bn_act_fast(np.ascontiguousarray(pool(acc, self.pool)))
        return pool(self._bn_act_fast(acc), self.pool)

    def _plan_depthwise_last(self):
        """Tap weights, m and k2 tiled over one row of the channels-last layout (see _depthwise_last)."""
        c, h, w = self.in_shape
        self.dw_last = bool(self.fast and self.depthwise and self.k == 3 and self.dw32 and c >= DW_LAST_MIN_C)
        if not self.dw_last:
            return
        p = max(1, DW_ROW // c)                     # pixels per row: short tiles stay in cache across blocks
        self.last_w = np.tile(self.wd32, (1, p))
        self.last_m = np.tile(self.m[:, 0], p)
        self.last_k2 = np.tile(self.k2[:, 0], p)

    def _depthwise_last(self, x):
        """uint8 (c, h, w) of a 3x3 depthwise layer with many channels, computed channels-last.

        Pixels-major with channels innermost, each tap is one shift of the flat padded map (one pad column per
        pixel row, computed and dropped) seen as rows of a few whole pixels, so the tiled
        per-channel weights broadcast over the rows with no per-channel loop; each block is finished (taps
        in exact float32, then BN and table) while in cache.
        """
        c, h, w = x.shape
        wp = w + 1                                       # a row's right pad is the next row's left
        bw, bm, bk = self.last_w, self.last_m, self.last_k2
        row = bm.size
        rows = -(-(h * wp * c) // row)
        n = rows * row                                   # whole rows: a little past the last pixel
        xf = np.full(n + (2 * wp + 3) * c, float(self.pad_value), np.float32)
        xf[:(h + 2) * wp * c].reshape(h + 2, wp, c)[1:h + 1, 1:w + 1] = x.transpose(1, 2, 0)
        y = np.empty((rows, row), np.uint8)
        rb = max(1, DW_BLOCK // row)                     # rows per block
        acc = np.empty((rb, row), np.float32)
        tmp = np.empty((rb, row), np.float32)
        offs = [((t // 3) * wp + t % 3) * c for t in range(9)]
        for r0 in range(0, rows, rb):
            k = min(rb, rows - r0)
            a, t_ = acc[:k], tmp[:k]
            e0 = r0 * row
            np.multiply(xf[e0:e0 + k * row].reshape(k, row), bw[0], out=a)
            for t in range(1, 9):
                o = offs[t] + e0
                np.multiply(xf[o:o + k * row].reshape(k, row), bw[t], out=t_)
                np.add(a, t_, out=a)
            self._bn_act_fast(a, bm, bk, out=y[r0:r0 + k])
        return y.reshape(-1)[:h * wp * c].reshape(h, wp, c)[:, :w].transpose(2, 0, 1)


DW_BLOCK = 1 << 15      # elements per block: the passes over a block stay in cache
DW_ROW = 2048           # elements per row of the channels-last depthwise (whole pixels)
DW_LAST_MIN_C = 64      # channels from which a depthwise layer runs channels-last (fewer: per-channel rows)


def _depthwise3x3(x, wdp, pad_value, dtype):
    """floor(sum over the 3x3 window of wdp[c, tap] * x) per channel, padding 1 with pad_value.

    Rows get one pad column (a row's right pad is the next row's left pad) and are flattened, so each tap is one
    contiguous shift of the block; the pad column is computed and dropped. float32 only where the caller proved every partial sum an
    integer below 2^24 (then the floor is the identity and is skipped).
    """
    c, h, w = x.shape
    wp = w + 1
    n = h * wp
    out = np.empty((c, h, wp), dtype)
    b = max(1, min(c, 2 * DW_BLOCK // n))
    xp = np.full((b, (h + 3) * wp), float(pad_value), dtype)
    tmp = np.empty((b, n), dtype)
    for c0 in range(0, c, b):
        c1 = min(c, c0 + b)
        k = c1 - c0
        xp[:k].reshape(k, h + 3, wp)[:, 1:h + 1, 1:w + 1] = x[c0:c1]
        acc = out[c0:c1].reshape(k, n)
        np.multiply(xp[:k, 0:n], wdp[c0:c1, 0, None], out=acc)
        for t in range(1, 9):
            o = (t // 3) * wp + t % 3
            np.multiply(xp[:k, o:o + n], wdp[c0:c1, t, None], out=tmp[:k])
            acc += tmp[:k]
    if dtype != np.float32:
        np.floor(out, out=out)
    return out[:, :, :w]


def carry_shift(v: np.ndarray, shift) -> np.ndarray:
    """The SDK's kpu_carry_shift: shift right rounding half away from zero (as written: odd negatives -1)."""
    shift = np.asarray(shift, np.int64)
    pos = shift > 0
    sm1 = np.where(pos, shift - 1, 0)
    t = v >> sm1
    odd = (t & 1) == 1
    r = np.where(odd, np.where(t < 0, (t >> 1) - 1, (t >> 1) + 1), t >> 1)
    return np.where(pos, r, v)


def pool(y: np.ndarray, pool_type: int) -> np.ndarray:
    """KPU pooling stage on (c, h, w) values 0..255 (uint8 or integral floats); output floor(in / stride).

    Mean rounds down (nncase v0.1's emulator; the hardware's rounding is unknown).
    """
    kind, win, stride = R.POOL_TYPES[pool_type]
    if kind == "none":
        return y
    c, h, w = y.shape
    oh, ow = h // stride, w // stride
    if kind == "sample_lt":
        return y[:, :oh * stride:stride, :ow * stride:stride].copy()
    if kind == "sample_rt":
        return y[:, :oh * stride:stride, stride - 1:ow * stride:stride].copy()
    if stride == win:
        if kind == "max":
            # rows first: whole contiguous rows, then the strided columns of a map `win` times smaller
            r = np.maximum(y[:, 0:oh * win:win, :ow * win], y[:, 1:oh * win:win, :ow * win])
            for dy in range(2, win):
                np.maximum(r, y[:, dy:oh * win:win, :ow * win], out=r)
            m = np.maximum(r[:, :, 0::win], r[:, :, 1::win])
            for dx in range(2, win):
                np.maximum(m, r[:, :, dx::win], out=m)
            return m
        parts = [y[:, dy:oh * win:win, dx:ow * win:win] for dy in range(win) for dx in range(win)]
        s = parts[0].astype(np.int32 if y.dtype == np.uint8 else y.dtype)
        for p in parts[1:]:
            s += p
        return (s // (win * win)).astype(y.dtype)
    # 2x2 window, stride 1, output the input size: the last row/column sees only what lies inside the map
    if kind == "max":
        m = y.copy()
        np.maximum(m[:, :, :-1], y[:, :, 1:], out=m[:, :, :-1])
        np.maximum(m[:, :-1, :], m[:, 1:, :].copy(), out=m[:, :-1, :])
        return m
    yi = y.astype(np.int32 if y.dtype == np.uint8 else y.dtype)
    s = yi.copy()
    s[:, :, :-1] += yi[:, :, 1:]
    s[:, :-1, :] += s[:, 1:, :].copy()
    cnt = np.full((h, w), 4, np.int32)
    cnt[-1, :] = 2
    cnt[:, -1] = 2
    cnt[-1, -1] = 1
    return (s // cnt).astype(y.dtype)
