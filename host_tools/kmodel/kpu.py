"""One K210_CONV layer on the emulated KPU: the conv's integer arithmetic, pooling (its KPU RAM: kpu_ram.py).

Two ways to the same integers:
- forward: conv sums on an exact integer GEMM (int_gemm.py: onnxruntime's integer kernels, or float64 BLAS for
  16-bit weights), then the reference's int64 stages fused in one compiled pass (kpu_kernels.py), or where
  _affine proves it, a float32 pass with an integer fallback for the elements its error bound cannot settle;
  depthwise layers wholly compiled. Sampling pools compute only the sampled pixels. Maps are (c, h, w) arrays
  of any strides: 1x1 layers with few pixels (MobileNet's last blocks) run on (pixels, channels) columns and
  hand on (c, h, w) views of (h, w, c) arrays, which a depthwise layer then computes channels innermost.
- forward_exact: the straightforward int64 numpy stages (conv_sums, accumulate, batchnorm, activation, pool),
  the reference the tests compare forward against.
"""
from fractions import Fraction

import numpy as np

from host_tools.k210 import arith as A
from host_tools.k210 import kpu as hw
from host_tools.k210.arith import POOL_TYPES, carry_shift, pool
from host_tools.kmodel import kpu_kernels as K
from host_tools.kmodel.int_gemm import ExactGemm, ExactGemmT, signed_columns_exact
from host_tools.kmodel.kpu_ram import Deferred, RamMap

ACC_BITS = A.ACC_BITS
LUT_PIECES = 4    # activation tables with more reachable pieces than this are looked up (see _table)
LUT_MAX = 1 << 20  # largest lookup table (bytes) a layer builds
PIXEL_MAJOR_MAX = 256   # 1x1 layers computing at most this many pixels run pixel-major (int_gemm.ExactGemmT)


# ---- the plan of one layer ----

class ConvPlan:
    """What one K210_CONV layer needs at run time, computed once per model."""

    def __init__(self, layer):
        regs = layer.regs
        self.layer = layer
        self.arith = A.conv_arith(regs, layer.weights, layer.bn, layer.act)
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
            self.wdw = np.ascontiguousarray(w.reshape(oc, self.taps))
        else:
            # GEMM rows taps-major (dy, dx, ic), as window_columns lays out the columns
            self.wcols = np.ascontiguousarray(layer.weights.transpose(2, 3, 1, 0).reshape(-1, oc))
        self.bn_mul, self.bn_add, self.bn_shift = (np.ascontiguousarray(v, np.int64) for v in layer.bn)
        act = layer.act
        self.x_start = np.array([s.x_start for s in act], np.int64)
        self.y_mul = np.array([s.y_mul for s in act], np.int64)
        self.a_shift = np.array([min(s.shift, 63) for s in act], np.int64)
        self.a_bias = np.array([s.bias for s in act], np.int64)
        self.sorted_starts = bool(np.all(np.diff(self.x_start) >= 0))
        self.macs = oc * (1 if self.depthwise else ic) * self.taps * ih * iw
        self.segments = self._segments()
        kind, _, stride = POOL_TYPES[self.pool]
        pixels = (ih // stride) * (iw // stride) if kind.startswith("sample") else ih * iw
        # few pixels, many channels (MobileNet's last blocks): pixel-major maps, weights prepacked (forward)
        self.pixel_major = (not self.depthwise and self.k == 1 and self.affine is not None
                            and kind in ("none", "sample_lt", "sample_rt") and pixels <= PIXEL_MAJOR_MAX
                            and self.wcols.dtype == np.uint8 and signed_columns_exact())
        self._act = self._gemm = None     # kernel arguments, built on first use

    def _bn_range(self):
        """(lowest, highest) BN output over every input, from the registers; None if something may wrap."""
        n_x = self.taps * (1 if self.depthwise else self.in_shape[0])
        t = sorted(((self.arg_x * v) >> self.shr_x) + self.arg_add for v in (0, 255 * n_x))
        acc = np.stack([t[0] + self.c_w, 255 * self.sum_w + t[1] + self.c_w])     # S in [0, 255*SW]
        lim = 1 << (ACC_BITS - 1)
        if acc.min() < -lim or acc.max() >= lim:
            return None
        self.acc_bounds = acc
        bn = ((acc * self.bn_mul) >> self.bn_shift) + self.bn_add               # monotone in acc
        if bn.min() < -lim or bn.max() >= lim:
            return None
        return int(bn.min()), int(bn.max())

    def _segments(self):
        """Indices of the activation entries the search (the last whose start <= bn, else entry 0) can pick, in
        the form the kernels take: a default entry, then strictly increasing starts.

        An entry never wins if a later one starts at or below it (nncase pads tables with copies of the last);
        with bounds on bn, entries past its range go too, and the default becomes the one bn's minimum picks.
        """
        xs = self.x_start
        keep = [0] + [i for i in range(1, len(xs)) if (xs[i + 1:] > xs[i]).all()]
        rng = self._bn_range()
        self.may_wrap = rng is None
        if rng is not None:
            pick = [k for k, i in enumerate(keep) if k == 0 or xs[i] <= rng[0]][-1]
            last = [k for k, i in enumerate(keep) if k == 0 or xs[i] <= rng[1]][-1]
            keep = keep[pick:last + 1]
        keep = np.array(keep)
        self.monotone = rng is not None and self._monotone(keep, *rng)
        self.lut, self.lut_lo = self._table(keep, rng)
        self.affine = self._affine(keep, rng) if not self.lut.size else None
        return keep

    def _table(self, keep, rng):
        """(outputs, first bn) of the activation where it varies, for tables of many pieces (nncase's leaky ReLU
        has 16: a pass per piece would cost more than one lookup); empty when not worth it or not provable.

        Below the second entry's start a constant first entry gives one value; past the point where a rising
        last piece reaches 255 (or past a constant last piece's start) the value stays; the table holds one
        point of each constant end, and the kernels clip the index into it."""
        none = (np.zeros(0, np.uint8), 0)
        if rng is None or len(keep) <= LUT_PIECES:
            return none
        bl, bh = rng
        xs, ym = self.x_start[keep], self.y_mul[keep]
        lo = max(bl, int(xs[1]) - 1) if ym[0] == 0 else bl
        if ym[-1] == 0:
            hi = min(bh, int(xs[-1]))
        elif ym[-1] > 0 and self._f(bh) == 255:
            a, b = max(int(xs[-1]), lo), bh          # first bn reaching 255 in the rising last piece
            while a < b:
                mid = (a + b) // 2
                a, b = (a, mid) if self._f(mid) == 255 else (mid + 1, b)
            hi = a
        else:
            hi = bh
        if hi - lo >= LUT_MAX:
            return none
        return self.activation(np.arange(lo, hi + 1, dtype=np.int64)), lo

    def _affine(self, keep, rng):
        """Per channel (A0, alpha, beta + E, M) and the clip (lo, hi) for the float32 path of the kernels, or None
        where it does not apply.

        It applies when, over the reachable bn, the activation is one rising piece (x, y, s, b) between constant
        pieces: lo below it, hi above it (ReLU, ReLU6 with their zero points). With acc = A,
        bn = floor(A*mul/2^sh) + add: the SDK's carry shift rounds half up for v = (bn - x)*y >= 0, so there
        out = clip(floor(Z), lo, hi) with Z = v/2^s + 1/2 + b; below x, Z < b + 1/2 gives lo too when b <= lo
        (the rising piece is the default entry: lo = 0 and b <= 0, as the carry shift of v < 0 is <= -1).
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
        xs, ym, sh, bs = (v[keep] for v in (self.x_start, self.y_mul, self.a_shift, self.a_bias))
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
            return int(np.clip(carry_shift(np.int64((bn - x) * y), s) + b, 0, 255))
        if (const[:k] != lo).any() or (const[k + 1:] != hi).any() or not lo <= hi:
            return None
        if (k == 0 and bl < x and b > 0) or (k > 0 and b != lo) or (top >= x and f(top) > hi):
            return None
        if k + 1 < len(xs) and f(int(xs[k + 1])) < hi:
            return None
        u = 2.0 ** -24
        delta = y / 2.0 ** s
        cols = []
        for c in range(len(self.bn_mul)):
            mul, shift, add = int(self.bn_mul[c]), int(self.bn_shift[c]), int(self.bn_add[c])
            a_lo, a_hi = (int(v) for v in self.acc_bounds[:, c])
            zc = Fraction(255 - 2 * b, 2) * 2 ** s / y - add + x          # bn where z = 128 ...
            a0 = int(min(max(round(zc * 2 ** shift / mul), a_lo), a_hi)) if mul else a_lo   # ... and its acc
            beta = (Fraction(a0 * mul, 2 ** shift) + add - x) * y / 2 ** s + Fraction(1, 2) + b
            e = 5 * u * (259 + abs(float(beta)))
            margin = 2 * e + delta + 2.0 ** -22
            if max(a_hi - a0, a0 - a_lo) >= 1 << 31 or abs(float(beta)) > 1 << 16 or margin > 2.0 ** -8:
                return None
            cols.append((a0, mul * y / 2.0 ** (shift + s), float(beta) + e, margin))
        a0, alpha, beta_e, margin = zip(*cols)
        return (np.array(a0, np.int64), np.array(alpha, np.float32), np.array(beta_e, np.float32),
                np.array(margin, np.float32), np.array([lo, hi], np.float32))

    def _f(self, bn: int) -> int:
        return int(self.activation(np.array([bn], np.int64))[0])

    def _monotone(self, keep, bl: int, bh: int) -> bool:
        """Whether BN + activation never decrease as acc grows, so max pooling may run first on acc (4x fewer
        elements to finish). Each piece is non-decreasing when its y_mul >= 0 and bn is at or above its start
        (the carry shift of negatives is not monotone); across pieces, checked at every reachable start."""
        xs, ym = self.x_start[keep], self.y_mul[keep]
        if (self.bn_mul < 0).any() or (ym < 0).any() or (bl < xs[0] and ym[0] != 0):
            return False
        pts = {bl, bh} | {v for x in xs if bl < x <= bh for v in (int(x) - 1, int(x))}
        f = self.activation(np.array(sorted(pts), np.int64)).astype(np.int64)
        return bool((np.diff(f) >= 0).all())

    # ---- the reference: k210.arith's int64 stages ----

    def accumulators(self, x: np.ndarray) -> np.ndarray:
        return A.accumulators(self.arith, x)

    def batchnorm(self, acc):
        return A.bn_map(self.arith, acc)

    def activation(self, bn):
        return A.activation_map(self.arith, bn)

    def forward_exact(self, x: np.ndarray) -> np.ndarray:
        return A.forward(self.arith, x)

    # ---- the compiled path ----

    def _build_kernel_args(self):
        """Arguments of the kernels, built on first use (a GEMM session per layer)."""
        self._cw2 = self.c_w + self.arg_add
        if self.depthwise:
            # arg_x = a << shr_x (nncase: a = -zero point): (arg_x*SX) >> shr_x = a*SX exactly, so a joins the
            # taps and SX is not needed, while the sums stay int32
            a, self._dw_arg_x = self.arg_x >> self.shr_x, self.arg_x
            wa = self.wdw + a
            if a << self.shr_x == self.arg_x and self.taps * 255 * int(np.abs(wa).max()) < 1 << 31:
                self._wd32, self._dw_arg_x = wa.astype(np.int32), 0
            else:
                self._wd32 = self.wdw.astype(np.int32)
            self._dw_f32 = int(self.taps * 255 * int(np.abs(self._wd32).max()) < 1 << 24)   # float32 sums exact
            if self._dw_f32 and self.k == 3 and self._dw_arg_x == 0 and self.affine is not None:
                a0 = self.affine[0]
                if max((self.acc_bounds[1] - a0).max(), (a0 - self.acc_bounds[0]).max()) < 1 << 24:
                    self._dw_f32 = 2     # acc - A0 exact in float32 too: sums go straight into the finishing
            if self._dw_f32 == 2 and self.k == 3:
                self._wf = np.ascontiguousarray(self._wd32.T, np.float32)      # (9, c) for depthwise_hwc
        elif self.pixel_major:
            self._gemm = ExactGemmT(self.wcols)
        else:
            self._gemm = ExactGemm(self.wcols)
            self._cw2 = self._cw2 + self._gemm.x_offset * self.sum_w
            self._sx_offset = self._gemm.x_offset * self.wcols.shape[0]
        no_float_path = (np.zeros(0, np.int64),) + (np.zeros(0, np.float32),) * 3 + (np.zeros(2, np.float32),)
        self._aff = self.affine or no_float_path      # same types either way: one compiled kernel
        e = self.segments     # last: _act marks the arguments complete
        self._act = tuple(np.ascontiguousarray(v[e]) for v in (self.x_start, self.y_mul, self.a_shift, self.a_bias))

    def depthwise_at(self, x: np.ndarray, grid, flip: int = 0, pixels_first: bool = False,
                     padded: bool = False) -> np.ndarray:
        """A depthwise layer's conv stages at the grid (s, r0, c0, oh, ow) (see kpu_kernels) as a (c, oh, ow) map,
        every byte XOR flip; with pixels_first, as (oh*ow, c) columns for a pixel-major GEMM; with padded (s = 1,
        3x3), as the kernel's (c, n) planes, each row with 2 more columns (for the next 1x1 layer: kpu_ram.Deferred).
        A pixel-major input on the float32 path is computed channels innermost (kpu_kernels.depthwise_hwc)."""
        if self._act is None:
            self._build_kernel_args()
        _, h, w = self.in_shape
        oc, n = self.out_shape[0], h * (w + self.k - 1)
        s, _, _, oh, ow = grid
        xh = pixel_major(x) if self._dw_f32 == 2 and self.k == 3 and not padded else None
        if xh is not None:
            cols = np.empty((oh * ow, oc), np.uint8)
            K.depthwise_hwc(xh, self.pad_value, *grid, self._wf, self._cw2, self.bn_mul, self.bn_shift, self.bn_add,
                            *self._act, self._aff, cols)
            if pixels_first:
                return cols
            y = cols.reshape(oh, ow, oc).transpose(2, 0, 1)
            return y ^ np.uint8(flip) if flip else y
        y = np.empty((oc, -(-n // 16) * 16 if s == 1 else oh * ow), np.uint8)
        K.depthwise(x, self.k, self.pad_value, *grid, self._wd32, self._dw_f32, self._dw_arg_x, self.shr_x,
                    self._cw2, self.bn_mul, self.bn_shift, self.bn_add, self.may_wrap, *self._act, self.lut,
                    self.lut_lo, self._aff, 0 if pixels_first else flip, y)
        if padded:
            return y
        y = y[:, :n].reshape(oc, h, -1)[:, :, :w] if s == 1 else y.reshape(oc, oh, ow)
        return np.ascontiguousarray(y.reshape(oc, -1).T) if pixels_first else y

    def forward(self, x) -> np.ndarray:
        """The layer's output map from its input map x. A 1x1 layer may get x as a kpu_ram.Deferred depthwise
        output: then it has it computed right into its GEMM's columns, only at the pixels it samples (nncase
        moves a depthwise stride 2 into the next 1x1 conv, so 3/4 of such outputs are never read), or unsampled
        as the depthwise kernel's padded planes, the GEMM and finishing running over the padding columns too."""
        kind, win, stride = POOL_TYPES[self.pool]
        _, h, w = self.in_shape
        if kind in ("sample_lt", "sample_rt"):       # sampling commutes with the per-pixel stages
            grid = (stride, 0, 0 if kind == "sample_lt" else stride - 1, h // stride, w // stride)
        else:
            grid = (1, 0, 0, h, w)
        if isinstance(x, Deferred) and (self.depthwise or self.k != 1 or kind == "max" or (
                grid[0] == 1 and not self.pixel_major and (x.plan.k != 3 or self.affine is None))):
            x = x.array()
        oc = self.out_shape[0]
        if self._act is None:
            self._build_kernel_args()
        act = self._act
        if self.depthwise:
            y = self.depthwise_at(x, grid)
        elif self.pixel_major:
            return self._forward_pixel_major(x, grid)
        else:
            g = self._gemm(self._columns(x, grid))
            if self.monotone and kind == "max":
                fused = win == stride       # windows pooled in the kernel, else (2x2 at stride 1) by pool()
                acc = K.gemm_accumulators(g, self._sx_offset, self.arg_x, self.shr_x, self._cw2, h, w,
                                          win if fused else 1)
                acc = acc.reshape((oc, h // win, w // win)) if fused else pool(acc.reshape((oc, h, w)), self.pool)
                y = np.empty(acc.shape, np.uint8)
                K.finish_accumulators(acc.reshape(oc, -1), self.bn_mul, self.bn_shift, self.bn_add, False, *act,
                                      self.lut, self.lut_lo, self._aff, y.reshape(oc, -1))
                return y
            y = np.empty((oc,) + grid[3:], np.uint8)
            ow = grid[4]
            wp = ow if g.shape[1] == grid[3] * ow else ow + 2       # or the padded planes of a Deferred input
            K.finish_gemm(g, self._sx_offset, self.arg_x, self.shr_x, self._cw2, self.bn_mul, self.bn_shift,
                          self.bn_add, self.may_wrap, *act, self.lut, self.lut_lo, self._aff, ow, wp,
                          y.reshape(oc, -1))
        return y if grid[0] > 1 else pool(y, self.pool)

    def _columns(self, x, grid) -> np.ndarray:
        """The GEMM columns (k*k*ic, oh*ow) of the conv at the grid, top bit flipped where the GEMM wants it."""
        s, r0, c0, oh, ow = grid
        flip = self._gemm.flip
        if isinstance(x, Deferred):
            return x.plan.depthwise_at(x.x, grid, flip, padded=s == 1).reshape(self.in_shape[0], -1)
        if self.k == 1:
            cols = x[:, r0:r0 + oh * s:s, c0:c0 + ow * s:s]
            return (cols ^ np.uint8(flip) if flip else np.ascontiguousarray(cols)).reshape(len(x), -1)
        cols = np.empty((self.wcols.shape[0], oh * ow), np.uint8)
        K.window_columns(x, self.k, self.pad_value, flip, *grid, cols)
        return cols

    def _forward_pixel_major(self, x, grid) -> np.ndarray:
        """A 1x1 layer on (pixels, channels) columns: G^T by int_gemm.ExactGemmT, finished channels innermost; the
        output is a (c, oh, ow) view of an (oh, ow, c) array, which the next layer may take as it is."""
        s, r0, c0, oh, ow = grid
        ic, oc = self.in_shape[0], self.out_shape[0]
        if isinstance(x, Deferred):
            xt = x.plan.depthwise_at(x.x, grid, pixels_first=True)
        else:
            xh = pixel_major(x)
            if xh is None:
                xt = np.ascontiguousarray(x[:, r0:r0 + oh * s:s, c0:c0 + ow * s:s].reshape(ic, -1).T)
            else:
                xt = np.ascontiguousarray(xh[r0:r0 + oh * s:s, c0:c0 + ow * s:s]).reshape(-1, ic)
        g = self._gemm(xt)
        out = np.empty((oh * ow, oc), np.uint8)
        K.finish_gemm_t(g, self._gemm.w_offset, self.arg_x, self.shr_x, self._cw2, self.bn_mul, self.bn_shift,
                        self.bn_add, *self._act, self._aff, out)
        return out.reshape(oh, ow, oc).transpose(2, 0, 1)


def pixel_major(x):
    """The (h, w, c) array whose transposed view the (c, h, w) map x is, or None."""
    if isinstance(x, np.ndarray) and x.ndim == 3:
        t = x.transpose(1, 2, 0)
        if t.flags.c_contiguous:
            return t
    return None


