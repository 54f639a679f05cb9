"""Compiled (numba) kernels of one K210_CONV layer: the same int64 arithmetic as kpu.py's reference stages, fused.

Each output element goes accumulate -> 36-bit wrap -> BN -> 36-bit wrap -> activation segment -> the SDK's carry
shift -> clip with the very integer operations of ConvPlan.accumulate/batchnorm/activation (no float, no
table), so the result is the reference's by construction; the tests compare the two on random and real layers.
Loops are arranged so the innermost one runs over pixels or channels (the one LLVM vectorizes): stages run over
blocks of elements, not element by element.

A conv is computed only where the layer's output is read: at the sampled pixels for the sampling pools, at
every pixel otherwise (the caller pools the uint8 map). The grid is (s, r0, c0, oh, ow): output (oy, ox) is the
conv at input pixel (r0 + oy*s, c0 + ox*s).
"""
import numba
import numpy as np

HALF36 = np.int64(1 << 35)
MASK36 = np.int64((1 << 36) - 1)


@numba.njit(inline="always")
def _wrap36(v):
    return ((v + HALF36) & MASK36) - HALF36


@numba.njit(inline="always")
def _segment_out(bn, x0, y0, s, b):
    """One activation segment: (bn - start) * mul, the SDK's kpu_carry_shift by s (half away from zero, as
    written: odd negatives go one further), + bias, clipped to 0..255; branch-free so the loop vectorizes."""
    v = (bn - x0) * y0
    t = v >> max(s - 1, 0)
    r = (t >> 1) + (t & 1) * (1 - 2 * np.int64(t < 0))
    v = (r if s > 0 else v) + b
    return min(max(v, 0), 255)


@numba.njit(inline="always")
def _finish(g, tp, cw, n, mul, shift, add, wrap, xs, ym, sh, bias, lut, lut_lo, bn, out):
    """out[j] = the uint8 output of one channel's accumulator g[j] + tp[j] + cw (int64 before the 36-bit wrap),
    j < n. xs.. is the layer's activation table compacted (kpu.ConvPlan._segments): a default entry, then
    strictly increasing starts, so taking each entry in turn where bn >= its start leaves the last such one:
    no per-element table lookups. A segment with y_mul 0 gives its clipped bias. wrap=False where the caller
    proved that neither acc nor bn leaves 36 bits. A non-empty lut holds the activation's outputs from bn =
    lut_lo on, constant below and past its ends (kpu.ConvPlan._table: for tables of many pieces)."""
    x0, y0, s0, b0 = xs[0], ym[0], sh[0], bias[0]
    if wrap:
        for j in range(n):
            bn[j] = _wrap36(((_wrap36(g[j] + tp[j] + cw) * mul) >> shift) + add)
    else:
        for j in range(n):
            bn[j] = (((g[j] + tp[j] + cw) * mul) >> shift) + add
    if lut.size:
        top = lut.size - 1
        for j in range(n):
            out[j] = lut[min(max(bn[j] - lut_lo, 0), top)]
        return
    if y0 == 0:
        out[:n] = min(max(b0, 0), 255)
    else:
        for j in range(n):
            out[j] = _segment_out(bn[j], x0, y0, s0, b0)
    for i in range(1, xs.size):
        x0, y0, s0, b0 = xs[i], ym[i], sh[i], bias[i]
        if y0 == 0:
            cst = min(max(b0, 0), 255)
            for j in range(n):
                if bn[j] >= x0:
                    out[j] = cst
        else:
            for j in range(n):
                if bn[j] >= x0:
                    out[j] = _segment_out(bn[j], x0, y0, s0, b0)


@numba.njit(cache=True, nogil=True)
def window_columns(x, k, pad, s, r0, c0, oh, ow, cols):
    """im2col of a (ic, h, w) uint8 map for the integer GEMM: cols[p, t*ic + c] = x[c] at tap t (dy, dx) around
    output pixel p, padding 1 with `pad` for k=3. Innermost over a row of pixels: contiguous reads, no views."""
    ic, h, w = x.shape
    r = k // 2
    for oy in range(oh):
        for dy in range(k):
            yy = r0 + oy * s + dy - r
            row_in = 0 <= yy < h
            for dx in range(k):
                for c in range(ic):
                    col = (dy * k + dx) * ic + c
                    for ox in range(ow):
                        xx = c0 + ox * s + dx - r
                        if row_in and 0 <= xx < w:
                            cols[oy * ow + ox, col] = x[c, yy, xx]
                        else:
                            cols[oy * ow + ox, col] = pad


@numba.njit(inline="always")
def _pixel_terms(sx, offset, arg_x, shr_x):
    """Per pixel: offset*SX + ((arg_x*SX) >> shr_x), from the GEMM's SX row."""
    tp = np.empty(sx.size, np.int64)
    for j in range(sx.size):
        v = np.int64(sx[j])
        tp[j] = v * offset + ((arg_x * v) >> shr_x)
    return tp


@numba.njit(cache=True, nogil=True)
def finish_gemm(g, offset, arg_x, shr_x, cw2, mul, shift, add, wrap, xs, ym, sh, bias, lut, lut_lo, out):
    """out[c, p] (uint8) from g[c, p], the GEMM sum with weights less `offset`, and g[-1] = SX: S = g + offset*SX,
    acc = S + ((arg_x*SX) >> shr_x) + c_w + arg_add (cw2 = c_w + arg_add)."""
    m, n = out.shape
    tp = _pixel_terms(g[m], offset, arg_x, shr_x)
    bn = np.empty(min(n, BLOCK), np.int64)
    for c in range(m):
        for p0 in range(0, n, BLOCK):
            p1 = min(n, p0 + BLOCK)
            _finish(g[c, p0:p1], tp[p0:p1], cw2[c], p1 - p0, mul[c], shift[c], add[c], wrap, xs, ym, sh, bias, lut, lut_lo, bn,
                    out[c, p0:p1])


@numba.njit(cache=True, nogil=True)
def gemm_accumulators(g, offset, arg_x, shr_x, cw2):
    """(m, n) int64 accumulators from finish_gemm's g (for max pooling before BN, see ConvPlan.monotone)."""
    m, n = g.shape[0] - 1, g.shape[1]
    acc = np.empty((m, n), np.int64)
    tp = _pixel_terms(g[m], offset, arg_x, shr_x)
    for c in range(m):
        for j in range(n):
            acc[c, j] = g[c, j] + tp[j] + cw2[c]
    return acc


@numba.njit(cache=True, nogil=True)
def finish_accumulators(acc, mul, shift, add, wrap, xs, ym, sh, bias, lut, lut_lo, out):
    """out[c, p] (uint8) from the int64 accumulators acc[c, p]."""
    m, n = acc.shape
    zero = np.zeros(min(n, BLOCK), np.int64)
    bn = np.empty(min(n, BLOCK), np.int64)
    for c in range(m):
        for p0 in range(0, n, BLOCK):
            p1 = min(n, p0 + BLOCK)
            _finish(acc[c, p0:p1], zero, 0, p1 - p0, mul[c], shift[c], add[c], wrap, xs, ym, sh, bias, lut, lut_lo, bn,
                    out[c, p0:p1])


@numba.njit(cache=True, nogil=True)
def depthwise(vol, k, h, wd, arg_x, shr_x, cw2, mul, shift, add, wrap, xs, ym, sh, bias, lut, lut_lo, out):
    """A depthwise layer's uint8 output on padded planes: vol is the flat (c, h + 2r, w + 2r) input with its
    padding (and 2r bytes more), out the flat (c, h, w + 2r) result whose last 2r columns are to be dropped.

    Output pixel (y, x) of a plane sits at y*wp + x and its tap (dy, dx) at the same index + dy*wp + dx, so each
    tap is one contiguous shift of the plane and every loop runs over a whole plane.
    """
    ch = wd.shape[0]
    wp = vol.size // ch // (h + k - 1)
    n = h * wp
    plane = (h + k - 1) * wp
    s32 = np.empty(n, np.int32)
    sx = np.empty(n, np.int32)
    tp = np.empty(n, np.int64)
    bn = np.empty(min(n, BLOCK), np.int64)
    for c in range(ch):
        base = c * plane
        # separate loops over slices, uint8 loads widened to int32 (LLVM vectorizes neither two outputs in one
        # loop nor int32 x int32 products as numba types them, int64)
        s32[:] = 0
        for t in range(k * k):
            wt = wd[c, t]
            v = vol[base + (t // k) * wp + t % k:]
            for j in range(n):
                s32[j] += np.int32(v[j]) * wt
        if arg_x == 0:
            tp[:] = 0
        else:
            sx[:] = 0
            for t in range(k * k):
                v = vol[base + (t // k) * wp + t % k:]
                for j in range(n):
                    sx[j] += np.int32(v[j])
            for j in range(n):
                tp[j] = (arg_x * np.int64(sx[j])) >> shr_x
        for p0 in range(0, n, BLOCK):
            p1 = min(n, p0 + BLOCK)
            _finish(s32[p0:p1], tp[p0:p1], cw2[c], p1 - p0, mul[c], shift[c], add[c], wrap, xs, ym, sh, bias, lut, lut_lo, bn,
                    out[c * n + p0:c * n + p1])


BLOCK = 1024      # pixels per pass of the finishing loops: their int64 buffers stay in L1
