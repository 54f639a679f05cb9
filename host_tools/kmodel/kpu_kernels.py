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
def _exact_one(acc, mul, shift, add, xs, ym, sh, bias):
    """One output by the integer stages (no wrap: the float path is taken only where it cannot happen)."""
    bn = ((acc * mul) >> shift) + add
    i = 0
    for k in range(1, xs.size):
        if bn >= xs[k]:
            i = k
    return _segment_out(bn, xs[i], ym[i], sh[i], bias[i])


@numba.njit(inline="always")
def _finish(g, tp, tp32, cw, n, mul, shift, add, wrap, xs, ym, sh, bias, lut, lut_lo, aff, c, bn, out):
    """out[j] = the uint8 output of channel c's accumulator g[j] + tp[j] + cw (int64 before the 36-bit wrap),
    j < n. xs.. is the layer's activation table compacted (kpu.ConvPlan._segments): a default entry, then
    strictly increasing starts, so taking each entry in turn where bn >= its start leaves the last such one:
    no per-element table lookups. A segment with y_mul 0 gives its clipped bias. wrap=False where the caller
    proved that neither acc nor bn leaves 36 bits. A non-empty lut holds the activation's outputs from bn =
    lut_lo on, constant below and past its ends (kpu.ConvPlan._table: for tables of many pieces).
    aff = (A0, alpha, beta + E, M) per channel and (lo, hi), empty where the layer has no float32 path
    (kpu.ConvPlan._affine, which proves it): out = clip(floor(t), lo, hi), except where t is within M above an
    integer that the clip does not hide; those few elements (about 1 in 10^4) go through the integer stages.
    It adds in int32 (tp32 = tp mod 2^32): A - A0 fits int32, so the wrapped sum is exact."""
    a0, alpha, beta_e, margin, clip = aff
    if alpha.size:
        cwd, al, be, mg, lo, hi = np.int32(cw - a0[c]), alpha[c], beta_e[c], margin[c], clip[0], clip[1]
        near = False
        flags = bn.view(np.uint8)
        for j in range(n):
            t = np.float32(np.int32(g[j] + tp32[j] + cwd)) * al + be
            h = np.floor(t)
            f = ((t - h) < mg) & (h > lo) & (h <= hi)
            flags[j] = f
            near |= f
            out[j] = np.uint8(min(max(h, lo), hi))
        if near:
            for j in range(n):
                if flags[j]:
                    out[j] = _exact_one(g[j] + tp[j] + cw, mul, shift, add, xs, ym, sh, bias)
        return
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
def window_columns(x, k, pad, flip, s, r0, c0, oh, ow, cols):
    """im2col of a (ic, h, w) uint8 map for the integer GEMM, channels-major: cols[t*ic + c, p] = x[c] at tap t
    (dy, dx) around output pixel p, padding 1 with `pad` for k=3, every byte XOR `flip` (int_gemm.ExactGemm).
    Innermost over a row of pixels: contiguous reads and writes, no views."""
    ic, h, w = x.shape
    r = k // 2
    padf = pad ^ flip
    for dy in range(k):
        for dx in range(k):
            for c in range(ic):
                row = cols[(dy * k + dx) * ic + c]
                for oy in range(oh):
                    yy = r0 + oy * s + dy - r
                    o = oy * ow
                    if 0 <= yy < h:
                        src = x[c, yy]
                        for ox in range(ow):
                            xx = c0 + ox * s + dx - r
                            row[o + ox] = (src[xx] ^ flip) if 0 <= xx < w else padf
                    else:
                        row[o:o + ow] = padf


@numba.njit(inline="always")
def _pixel_terms(g_sx, sx_offset, arg_x, shr_x):
    """Per pixel: (arg_x*SX) >> shr_x, SX = the GEMM's ones row + sx_offset."""
    tp = np.empty(g_sx.size, np.int64)
    for j in range(g_sx.size):
        tp[j] = (arg_x * (np.int64(g_sx[j]) + sx_offset)) >> shr_x
    return tp


@numba.njit(cache=True, nogil=True)
def finish_gemm(g, sx_offset, arg_x, shr_x, cw2, mul, shift, add, wrap, xs, ym, sh, bias, lut, lut_lo, aff, out):
    """out[c, p] (uint8) from int_gemm.ExactGemm's G: acc = G[c] + ((arg_x*SX) >> shr_x) + cw2[c], SX = G[m] +
    sx_offset, cw2 = c_w + arg_add + x_offset*SW (the part of S the GEMM's offset columns left out)."""
    m, n = out.shape
    tp = _pixel_terms(g[m], sx_offset, arg_x, shr_x)
    tp32 = np.empty(n, np.int32)
    for j in range(n):
        tp32[j] = np.int32(tp[j])
    bn = np.empty(min(n, BLOCK), np.int64)
    for c in range(m):
        for p0 in range(0, n, BLOCK):
            p1 = min(n, p0 + BLOCK)
            _finish(g[c, p0:p1], tp[p0:p1], tp32[p0:p1], cw2[c], p1 - p0, mul[c], shift[c], add[c], wrap, xs, ym, sh, bias, lut, lut_lo, aff, c,
                    bn, out[c, p0:p1])


@numba.njit(cache=True, nogil=True)
def gemm_accumulators(g, sx_offset, arg_x, shr_x, cw2):
    """(m, n) int64 accumulators from finish_gemm's G (for max pooling before BN, see ConvPlan.monotone)."""
    m, n = g.shape[0] - 1, g.shape[1]
    acc = np.empty((m, n), np.int64)
    tp = _pixel_terms(g[m], sx_offset, arg_x, shr_x)
    for c in range(m):
        for j in range(n):
            acc[c, j] = g[c, j] + tp[j] + cw2[c]
    return acc


@numba.njit(cache=True, nogil=True)
def finish_accumulators(acc, mul, shift, add, wrap, xs, ym, sh, bias, lut, lut_lo, aff, out):
    """out[c, p] (uint8) from the int64 accumulators acc[c, p]."""
    m, n = acc.shape
    zero = np.zeros(min(n, BLOCK), np.int64)
    zero32 = np.zeros(min(n, BLOCK), np.int32)
    bn = np.empty(min(n, BLOCK), np.int64)
    for c in range(m):
        for p0 in range(0, n, BLOCK):
            p1 = min(n, p0 + BLOCK)
            _finish(acc[c, p0:p1], zero, zero32, 0, p1 - p0, mul[c], shift[c], add[c], wrap, xs, ym, sh, bias, lut, lut_lo, aff, c,
                    bn, out[c, p0:p1])


@numba.njit(cache=True, nogil=True)
def depthwise(vol, k, h, wd, f32, arg_x, shr_x, cw2, mul, shift, add, wrap, xs, ym, sh, bias, lut, lut_lo, aff,
              out):
    """A depthwise layer's uint8 output on padded planes: vol is the flat (c, h + 2r, w + 2r) input with its
    padding (and 2r bytes more), out the flat (c, h, w + 2r) result whose last 2r columns are to be dropped.

    Output pixel (y, x) of a plane sits at y*wp + x and its tap (dy, dx) at the same index + dy*wp + dx, so each
    tap is one contiguous shift of the plane and every loop runs over a whole plane.
    f32: the caller proved every sum below 2^24 (kpu.ConvPlan), so a 3x3 plane is summed in one float32 pass,
    exactly; else one int32 pass per tap.
    """
    ch = wd.shape[0]
    wp = vol.size // ch // (h + k - 1)
    n = h * wp
    plane = (h + k - 1) * wp
    s32 = np.empty(n, np.int32)
    sx = np.empty(n, np.int32)
    tp = np.zeros(n, np.int64)
    tp32 = np.zeros(n, np.int32)
    xf = np.empty(plane + k - 1, np.float32)
    bn = np.empty(min(n, BLOCK), np.int64)
    for c in range(ch):
        base = c * plane
        if f32 and k == 3:
            src = vol[base:base + plane + 2]
            for j in range(plane + 2):
                xf[j] = np.float32(src[j])
            w0, w1, w2, w3, w4, w5, w6, w7, w8 = (np.float32(wd[c, 0]), np.float32(wd[c, 1]), np.float32(wd[c, 2]),
                                                  np.float32(wd[c, 3]), np.float32(wd[c, 4]), np.float32(wd[c, 5]),
                                                  np.float32(wd[c, 6]), np.float32(wd[c, 7]), np.float32(wd[c, 8]))
            a0, a1, a2, b0, b1, b2 = xf[0:], xf[1:], xf[2:], xf[wp:], xf[wp + 1:], xf[wp + 2:]
            c0, c1, c2 = xf[2 * wp:], xf[2 * wp + 1:], xf[2 * wp + 2:]
            for j in range(n):
                s32[j] = np.int32((a0[j] * w0 + a1[j] * w1 + a2[j] * w2) + (b0[j] * w3 + b1[j] * w4 + b2[j] * w5)
                                  + (c0[j] * w6 + c1[j] * w7 + c2[j] * w8))
        else:
            # separate loops over slices, uint8 loads widened to int32 (LLVM vectorizes neither two outputs in
            # one loop nor int32 x int32 products as numba types them, int64)
            s32[:] = 0
            for t in range(k * k):
                wt = wd[c, t]
                v = vol[base + (t // k) * wp + t % k:]
                for j in range(n):
                    s32[j] += np.int32(v[j]) * wt
        if arg_x != 0:
            sx[:] = 0
            for t in range(k * k):
                v = vol[base + (t // k) * wp + t % k:]
                for j in range(n):
                    sx[j] += np.int32(v[j])
            for j in range(n):
                tp[j] = (arg_x * np.int64(sx[j])) >> shr_x
                tp32[j] = np.int32(tp[j])
        for p0 in range(0, n, BLOCK):
            p1 = min(n, p0 + BLOCK)
            _finish(s32[p0:p1], tp[p0:p1], tp32[p0:p1], cw2[c], p1 - p0, mul[c], shift[c], add[c], wrap, xs, ym, sh,
                    bias, lut, lut_lo, aff, c, bn, out[c * n + p0:c * n + p1])


BLOCK = 1024      # pixels per pass of the finishing loops: their int64 buffers stay in L1
