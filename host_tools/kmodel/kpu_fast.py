"""The emulator's fast path for one K210_CONV layer: the reference's integers (k210.arith.forward), faster.

- Conv sums on an exact integer GEMM (int_gemm: onnxruntime's integer kernels, or float64 BLAS for 16-bit
  weights), then the finishing stages fused in one compiled pass (kpu_kernels); depthwise layers wholly compiled.
- What each layer may skip is proved from its numbers (kpu_proofs): no 36-bit wrap, only the live activation
  entries, a lookup table for many pieces, a float32 finishing with an integer fallback for the elements its
  error bound cannot settle, max pooling before BN.
- Sampling pools compute only the sampled pixels. Maps come in any kpu_ram.Layout: 1x1 layers with few pixels
  (MobileNet's last blocks) run on (pixels, channels) columns and hand on pixel-major maps, which a 3x3 depthwise
  layer then computes channels innermost; a depthwise layer's output may stay deferred until the next 1x1 layer
  computes it into its own GEMM's columns.
"""
from dataclasses import dataclass, replace

import numpy as np

from host_tools.k210 import arith as A
from host_tools.k210.arith import POOL_TYPES
from host_tools.kmodel import kpu_kernels as K
from host_tools.kmodel.int_gemm import ExactGemm, ExactGemmT
from host_tools.kmodel.kpu_proofs import Proofs, prove
from host_tools.kmodel.kpu_ram import Layout, layout, pixel_major

PIXEL_MAJOR_MAX = 256   # 1x1 layers computing at most this many pixels run pixel-major (int_gemm.ExactGemmT)


@dataclass(frozen=True, eq=False)
class ConvParams:
    """Everything the fast path of one layer reads, fixed per model: the shapes, the conv's numbers as the
    kernels want them, the finishing stages (kpu_kernels.Finish) and the proofs they rest on."""
    in_shape: tuple
    out_shape: tuple
    k: int
    depthwise: bool
    pad_value: int
    pool: int
    arg_x: int
    shr_x: int
    sum_w: np.ndarray            # SW per output channel
    cw: np.ndarray               # ((arg_w*SW) >> shr_w) + arg_add*IC per output channel (k210.arith.weight_term)
    weights: np.ndarray          # depthwise (c, k*k) int64; else GEMM rows taps-major (k*k*ic, oc), uint8/uint16
    finish: K.Finish
    proofs: Proofs
    pixel_major: bool            # a 1x1 layer with few pixels: run on (pixels, channels) columns

    grid: K.Grid                 # the pixels the conv is computed at (see conv_grid)


def conv_grid(pool: int, in_shape) -> K.Grid:
    """The sampled pixels for the sampling pools, all pixels otherwise."""
    kind, _, stride = POOL_TYPES[pool]
    _, h, w = in_shape
    if kind in ("sample_lt", "sample_rt"):       # sampling commutes with the per-pixel stages
        return K.Grid(stride, 0, 0 if kind == "sample_lt" else stride - 1, h // stride, w // stride)
    return K.Grid(1, 0, 0, h, w)


def conv_params(a: A.ConvArith, in_shape, out_shape) -> ConvParams:
    p = prove(a)
    aff = p.affine
    empty_f = np.zeros(0, np.float32)
    float_path = (aff.a0, aff.alpha, aff.beta_e, aff.margin, aff.clip) if aff is not None else \
        (np.zeros(0, np.int64), empty_f, empty_f, empty_f, np.zeros(2, np.float32))
    live = p.live
    fin = K.Finish(np.ascontiguousarray(a.norm_mul, np.int64), np.ascontiguousarray(a.norm_shift, np.int64),
                   np.ascontiguousarray(a.norm_add, np.int64), p.may_wrap,
                   *(np.ascontiguousarray(v[live], np.int64)
                     for v in (a.x_start, a.y_mul, np.minimum(a.shift, A.SHIFT_MAX), a.bias)),
                   p.lut, int(p.lut_lo), *float_path)
    oc = out_shape[0]
    if a.depthwise:
        weights = np.ascontiguousarray(a.weights.astype(np.int64).reshape(oc, -1))
    else:
        weights = np.ascontiguousarray(a.weights.transpose(2, 3, 1, 0).reshape(-1, oc))   # rows (dy, dx, ic)
    kind, _, stride = POOL_TYPES[a.pool_type]
    _, ih, iw = in_shape
    pixels = (ih // stride) * (iw // stride) if kind.startswith("sample") else ih * iw
    pixel_major = (not a.depthwise and a.kernel == 1 and aff is not None and pixels <= PIXEL_MAJOR_MAX
                   and kind in ("none", "sample_lt", "sample_rt") and weights.dtype == np.uint8)
    return ConvParams(tuple(in_shape), tuple(out_shape), a.kernel, a.depthwise, a.pad_value, a.pool_type, a.arg_x,
                      a.shr_x, a.weight_sums(), A.weight_term(a), weights, fin, p, pixel_major,
                      conv_grid(a.pool_type, in_shape))


@dataclass(frozen=True, eq=False)
class _Prepared:
    """What the kernels need beyond ConvParams, built on first use (a GEMM session per layer)."""
    gemm: object = None          # int_gemm.ExactGemm / ExactGemmT
    sums: K.Sums = None          # GEMM layers
    dw: K.Depthwise = None       # depthwise layers
    dw_hwc: np.ndarray = None    # depthwise 3x3 on the f32 = 2 path: the (9, c) float32 taps for depthwise_hwc
    # the records as plain tuples, the form the kernels are called with (kpu_kernels: numba types them faster)
    fin_t: tuple = None
    sums_t: tuple = None
    dw_t: tuple = None


def _prepare(p: ConvParams) -> _Prepared:
    prep = _prepare_kernels(p)
    return replace(prep, fin_t=tuple(p.finish), sums_t=None if prep.sums is None else tuple(prep.sums),
                   dw_t=None if prep.dw is None else tuple(prep.dw))


def _prepare_kernels(p: ConvParams) -> _Prepared:
    cw2 = np.ascontiguousarray(p.cw, np.int64)             # acc = S + ((arg_x*SX) >> shr_x) + cw2
    if p.depthwise:
        # arg_x = a << shr_x (nncase: a = -zero point): (arg_x*SX) >> shr_x = a*SX exactly, so a joins the taps
        # and SX is not needed, while the sums stay int32
        a = p.arg_x >> p.shr_x
        taps = p.k * p.k
        wa = p.weights + a
        if a << p.shr_x == p.arg_x and taps * 255 * int(np.abs(wa).max()) < 1 << 31:
            wd, arg_x = wa.astype(np.int32), 0
        else:
            wd, arg_x = p.weights.astype(np.int32), p.arg_x
        f32 = int(taps * 255 * int(np.abs(wd).max()) < 1 << 24)         # float32 sums exact
        acc = p.proofs.acc_bounds
        if f32 and p.k == 3 and arg_x == 0 and p.proofs.affine is not None:
            a0 = p.proofs.affine.a0
            if max((acc[1] - a0).max(), (a0 - acc[0]).max()) < 1 << 24:
                f32 = 2     # acc - A0 exact in float32 too: sums go straight into the finishing
        hwc = np.ascontiguousarray(wd.T, np.float32) if f32 == 2 and p.k == 3 else None
        return _Prepared(dw=K.Depthwise(p.k, p.pad_value, np.ascontiguousarray(wd), f32, arg_x, p.shr_x, cw2),
                         dw_hwc=hwc)
    if p.pixel_major:
        g = ExactGemmT(p.weights)
        return _Prepared(gemm=g, sums=K.Sums(0, p.arg_x, p.shr_x, cw2))
    g = ExactGemm(p.weights)
    return _Prepared(gemm=g, sums=K.Sums(g.x_offset * p.weights.shape[0], p.arg_x, p.shr_x,
                                         cw2 + g.x_offset * p.sum_w))


class FastConv:
    """The fast path of one K210_CONV layer: forward(x) gives the reference's output map."""

    def __init__(self, params: ConvParams):
        self.p = params
        self._prep = None

    @property
    def prep(self) -> _Prepared:
        if self._prep is None:
            self._prep = _prepare(self.p)
        return self._prep

    def depthwise_at(self, x, grid: K.Grid, flip: int = 0, pixels_first: bool = False, padded: bool = False,
                     lay: Layout = None) -> np.ndarray:
        """A depthwise layer's conv stages at the grid as a (c, oh, ow) map, every byte XOR flip; with
        pixels_first, as (oh*ow, c) columns for a pixel-major GEMM; with padded (s = 1, 3x3), as the kernel's
        (c, n) planes, each row with 2 more columns (for the next 1x1 layer: kpu_ram.Deferred). A pixel-major input
        on the float32 path is computed channels innermost (kpu_kernels.depthwise_hwc). lay: x's layout, if known."""
        p, prep = self.p, self.prep
        _, h, w = p.in_shape
        oc, n = p.out_shape[0], h * (w + p.k - 1)
        s, _, _, oh, ow = grid
        if prep.dw_hwc is not None and not padded and (lay or layout(x)) is Layout.PIXEL_MAJOR:
            cols = np.empty((oh * ow, oc), np.uint8)
            K.depthwise_hwc(pixel_major(x), p.pad_value, tuple(grid), prep.dw_hwc, prep.dw.cw2, prep.fin_t, cols)
            if pixels_first:
                return cols
            y = cols.reshape(oh, ow, oc).transpose(2, 0, 1)
            return y ^ np.uint8(flip) if flip else y
        y = np.empty((oc, -(-n // 16) * 16 if s == 1 else oh * ow), np.uint8)
        K.depthwise(x, prep.dw_t, tuple(grid), prep.fin_t, 0 if pixels_first else flip, y)
        if padded:
            return y
        y = y[:, :n].reshape(oc, h, -1)[:, :, :w] if s == 1 else y.reshape(oc, oh, ow)
        return np.ascontiguousarray(y.reshape(oc, -1).T) if pixels_first else y

    def forward(self, x) -> np.ndarray:
        """The layer's output map from its input map x, in any kpu_ram.Layout. A 1x1 layer given a Deferred
        depthwise output has it computed right into its GEMM's columns, only at the pixels it samples (nncase
        moves a depthwise stride 2 into the next 1x1 conv, so 3/4 of such outputs are never read), or unsampled
        as the depthwise kernel's padded planes, the GEMM and finishing running over the padding columns too."""
        p = self.p
        kind, win, stride = POOL_TYPES[p.pool]
        _, h, w = p.in_shape
        grid = p.grid
        lay = layout(x)
        if lay is Layout.DEFERRED and (p.depthwise or p.k != 1 or kind == "max" or (
                grid.s == 1 and not p.pixel_major and (x.plan.p.k != 3 or p.proofs.affine is None))):
            x = x.array()
            lay = layout(x)
        oc = p.out_shape[0]
        if p.depthwise:
            y = self.depthwise_at(x, grid, lay=lay)
        elif p.pixel_major:
            return self._forward_pixel_major(x, grid, lay)
        else:
            prep = self.prep
            g = prep.gemm(self._columns(x, grid, lay))
            if p.proofs.monotone and kind == "max":
                fused = win == stride       # windows pooled in the kernel, else (2x2 at stride 1) by pool()
                acc = K.gemm_accumulators(g, prep.sums_t, h, w, win if fused else 1)
                acc = acc.reshape((oc, h // win, w // win)) if fused else A.pool(acc.reshape((oc, h, w)), p.pool)
                y = np.empty(acc.shape, np.uint8)
                K.finish_accumulators(acc.reshape(oc, -1), prep.fin_t, y.reshape(oc, -1))
                return y
            y = np.empty((oc, grid.oh, grid.ow), np.uint8)
            wp = grid.ow if g.shape[1] == grid.oh * grid.ow else grid.ow + 2    # or a Deferred input's padded planes
            K.finish_gemm(g, prep.sums_t, prep.fin_t, grid.ow, wp, y.reshape(oc, -1))
        return y if grid.s > 1 else A.pool(y, p.pool)

    def one_pixel(self, x: np.ndarray) -> np.ndarray:
        """A 1x1 layer without pool at one pixel: its (oc,) outputs from that pixel's (ic,) input bytes (a dense
        layer on the KPU, of which only pixel (0, 0) is read: see emulator._one_pixel)."""
        p, prep = self.p, self.prep
        oc = p.out_shape[0]
        if p.pixel_major:
            xt = x.reshape(1, -1)
            out = np.empty((1, oc), np.uint8)
            K.finish_gemm_t(prep.gemm(xt), xt, prep.gemm.w_offset, prep.sums_t, prep.fin_t, out)
        else:
            flip = prep.gemm.flip
            g = prep.gemm((x ^ np.uint8(flip) if flip else x).reshape(-1, 1))
            out = np.empty((oc, 1), np.uint8)
            K.finish_gemm(g, prep.sums_t, prep.fin_t, 1, 1, out)
        return out.reshape(-1)

    def _columns(self, x, grid: K.Grid, lay: Layout) -> np.ndarray:
        """The GEMM columns (k*k*ic, oh*ow) of the conv at the grid, top bit flipped where the GEMM wants it."""
        s, r0, c0, oh, ow = grid
        flip = self.prep.gemm.flip
        if lay is Layout.DEFERRED:
            return x.plan.depthwise_at(x.x, grid, flip, padded=s == 1).reshape(self.p.in_shape[0], -1)
        if self.p.k == 1:
            cols = x[:, r0:r0 + oh * s:s, c0:c0 + ow * s:s]
            return (cols ^ np.uint8(flip) if flip else np.ascontiguousarray(cols)).reshape(len(x), -1)
        cols = np.empty((self.p.weights.shape[0], oh * ow), np.uint8)
        K.window_columns(x, self.p.k, self.p.pad_value, flip, tuple(grid), cols)
        return cols

    def _forward_pixel_major(self, x, grid: K.Grid, lay: Layout) -> np.ndarray:
        """A 1x1 layer on (pixels, channels) columns: G^T by int_gemm.ExactGemmT, finished channels innermost; the
        output is a pixel-major map, which the next layer may take as it is."""
        s, r0, c0, oh, ow = grid
        ic, oc = self.p.in_shape[0], self.p.out_shape[0]
        if lay is Layout.DEFERRED:
            xt = x.plan.depthwise_at(x.x, grid, pixels_first=True)
            if s == 1:      # the whole map: kept for any later reader of those bytes (a CPU layer's rebuild)
                x.keep(xt.reshape(oh, ow, ic).transpose(2, 0, 1))
        elif lay is Layout.PIXEL_MAJOR:
            xt = np.ascontiguousarray(pixel_major(x)[r0:r0 + oh * s:s, c0:c0 + ow * s:s]).reshape(-1, ic)
        else:
            xt = np.ascontiguousarray(x[:, r0:r0 + oh * s:s, c0:c0 + ow * s:s].reshape(ic, -1).T)
        prep = self.prep
        g = prep.gemm(xt)
        out = np.empty((oh * ow, oc), np.uint8)
        K.finish_gemm_t(g, xt, prep.gemm.w_offset, prep.sums_t, prep.fin_t, out)
        return out.reshape(oh, ow, oc).transpose(2, 0, 1)
