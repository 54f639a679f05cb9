"""Compiled (numba) kernels of one K210_CONV layer for the fast path (kpu_fast): k210.arith's stages, fused.

Each output element goes accumulate -> 36-bit wrap -> BN -> 36-bit wrap -> activation through the very functions
of k210.arith (compiled here), so the result is the reference's by construction; or, for layers where
kpu_proofs.affine proves it, through one float32 multiply-add and a floor, with the elements its error bound
cannot settle redone by those functions. The tests compare both with the reference on random and real layers,
and on every accumulator value.
Loops are arranged so the innermost one runs over pixels or channels (the one LLVM vectorizes): stages run over
blocks of elements, not element by element.

A conv is computed only where the layer's output is read: at the sampled pixels for the sampling pools, at
every pixel otherwise (the caller pools the uint8 map). The grid is (s, r0, c0, oh, ow): output (oy, ox) is the
conv at input pixel (r0 + oy*s, c0 + ox*s).

The kernels take a layer's numbers as a few named tuples (numba compiles them as records): Finish (BN and
activation, per layer), Sums (what turns GEMM sums into accumulators), Grid. The compiled entry points take them
as plain tuples too and rebuild the records inside: numba types a named tuple's fields in Python on every call
(~6 us for a Finish), a plain tuple's in C (~1.5 us), and MobileNet calls these kernels some 30 times a frame.
"""
from typing import NamedTuple

import numba
import numpy as np

from host_tools.k210 import arith as A

# k210.arith's stages (compiled where a kernel calls them): the same functions the reference runs
_wrap36, _bn_value, _batchnorm, _activate = A.wrap, A.bn_value, A.batchnorm, A.activate


class Finish(NamedTuple):
    """A layer's BN and activation stages as the kernels take them (kpu_fast builds it from kpu_proofs).

    mul, shift, add: the BN table per output channel; wrap: False where the proofs show acc and bn stay in 36
    bits; xs, ym, sh, bias: the live activation entries (a default, then strictly increasing starts, which give
    what the whole table gives); lut, lut_lo: the activation's outputs from bn = lut_lo on (empty: none);
    a0, alpha, beta_e, margin, clip: the float32 path (kpu_proofs.Affine; empty arrays: none)."""
    mul: np.ndarray
    shift: np.ndarray
    add: np.ndarray
    wrap: bool
    xs: np.ndarray
    ym: np.ndarray
    sh: np.ndarray
    bias: np.ndarray
    lut: np.ndarray
    lut_lo: int
    a0: np.ndarray
    alpha: np.ndarray
    beta_e: np.ndarray
    margin: np.ndarray
    clip: np.ndarray


class Sums(NamedTuple):
    """What turns a GEMM's sums into accumulators: acc = G[c] + ((arg_x*SX) >> shr_x) + cw2[c], SX = the GEMM's
    ones row + sx_offset, cw2 = ((arg_w*SW) >> shr_w) + arg_add*IC (+ what the GEMM's input offset left out)."""
    sx_offset: int
    arg_x: int
    shr_x: int
    cw2: np.ndarray


class Grid(NamedTuple):
    """The output pixels a conv is computed at: (oy, ox) is the conv at input pixel (r0 + oy*s, c0 + ox*s)."""
    s: int
    r0: int
    c0: int
    oh: int
    ow: int


class Depthwise(NamedTuple):
    """A depthwise layer's conv as its kernel takes it (see depthwise): k, pad, the taps wd (c, k*k) int32, f32
    (0, 1, 2), arg_x and shr_x where the window sums are needed (arg_x = 0: folded into wd), cw2 per channel."""
    k: int
    pad: int
    wd: np.ndarray
    f32: int
    arg_x: int
    shr_x: int
    cw2: np.ndarray


@numba.njit(inline="always")
def _next_flag(flags, words, n, j):
    """The first j' >= j below n with flags[j'] set, else n; zero words (words: flags as uint64) skipped four at a
    time, in a loop of its own: the float32 path flags about 1 element in 10^4, so most of a long row is zero
    words, and a scan testing each word among the byte tests cost a third of the finishing on 112x112 maps.
    From j = 0, one OR over the words first (vectorized): many rows have no flag at all."""
    nw = n // 8
    if j == 0:
        seen = np.uint64(0)
        for i in range(np.uint64(nw)):
            seen |= words[i]
        for i in range(nw * 8, n):
            seen |= flags[i]
        if seen == 0:
            return n
    while j < n:
        if j % 8 == 0:
            k = j // 8
            while k + 4 <= nw and (words[k] | words[k + 1] | words[k + 2] | words[k + 3]) == 0:
                k += 4
            while k < nw and words[k] == 0:
                k += 1
            j = k * 8           # a word with a flag, or the tail past the last whole word
            if j >= n:
                return n
        if flags[j]:
            return j
        j += 1
    return n


@numba.njit(inline="always")
def _flag_words(n):
    """Zeroed flags for n elements (uint8) and the same memory as uint64 words, for _next_flag."""
    words = np.zeros(n // 8 + 1, np.uint64)
    return words, words.view(np.uint8)


@numba.njit(inline="always")
def _channels_innermost(fin, cw2, dt):
    """What a channels-innermost float32 finishing needs (kpu_proofs.affine): the clip (lo, hi), cw2 - A0 per
    channel as dt (added to each sum before scaling), and flags with their words for the channels."""
    cwd = np.empty(cw2.size, dt)
    for c in range(cw2.size):
        cwd[c] = dt(cw2[c] - fin.a0[c])
    words, flags = _flag_words(cw2.size)
    return fin.clip[0], fin.clip[1], cwd, words, flags


@numba.njit(inline="always")
def _sum9(t, w, j):
    """The 3x3 window sum at j of the shifted planes t (9 views) with the taps w (9 float32): exact below 2^24."""
    return ((t[0][j] * w[0] + t[1][j] * w[1] + t[2][j] * w[2]) + (t[3][j] * w[3] + t[4][j] * w[4] + t[5][j] * w[5])
            + (t[6][j] * w[6] + t[7][j] * w[7] + t[8][j] * w[8]))


@numba.njit(inline="always")
def _exact_one(acc, fin, c):
    """One output of channel c by the integer stages (no wrap: the float path is taken only where it cannot
    happen)."""
    return _activate(_bn_value(acc, fin.mul[c], fin.shift[c], fin.add[c]), fin.xs, fin.ym, fin.sh, fin.bias)


@numba.njit(inline="always")
def _finish_float(g, tp, tp32, c0, cw2, fin, out, orow0, rows, w, wp):
    """The float32 path (kpu_proofs.affine, which proves it) for `rows` rows at once: out[orow0 + r, p] from
    the accumulator g[r, q] + tp[q] + cw2[c] of channel c = c0 + r, with fin's (A0, alpha, beta + E, M) per
    channel and (lo, hi): out = clip(floor(t), lo, hi), except where t is within M above an integer that the
    clip does not hide; those few elements (about 1 in 10^4) go through the integer stages. It adds in int32
    (tp32 = tp mod 2^32): A - A0 fits int32, so the wrapped sum is exact. q = p, or where the sums come in rows
    of wp > w (a depthwise kernel's padded planes), pixel p = y*w + x is q = y*wp + x.
    Whole layers per call: the arrays an inlined helper takes cost reference counts per call, which per
    channel came to more than the work on a small map."""
    n = out.shape[1]
    a0, alpha, beta_e, margin = fin.a0, fin.alpha, fin.beta_e, fin.margin
    lo, hi = fin.clip[0], fin.clip[1]
    words, flags = _flag_words(n)
    # unsigned indices: numba tests signed ones for wraparound, and LLVM then does not vectorize the loops (and
    # mixing them with signed ones gives floats)
    uc0, uo0, uw, uwp = np.uint64(c0), np.uint64(orow0), np.uint64(w), np.uint64(wp)
    # unpadded sums in one loop over the row, not row by row of the map: a short row (56 or 28 pixels) would run
    # mostly in the scalar remainder of the vector loop
    nr, nx = (np.uint64(n // w), uw) if wp != w else (np.uint64(1), np.uint64(n))
    for r in range(np.uint64(rows)):
        c, orow = uc0 + r, uo0 + r
        cwd, al, be, mg = np.int32(cw2[c] - a0[c]), alpha[c], beta_e[c], margin[c]
        for y in range(nr):
            q0, p0 = y * uwp, y * uw
            for x in range(nx):
                t = np.float32(np.int32(g[r, q0 + x] + tp32[q0 + x] + cwd)) * al + be
                h = np.floor(t)
                flags[p0 + x] = ((t - h) < mg) & (h > lo) & (h <= hi)    # past the clip both give lo or hi
                out[orow, p0 + x] = np.uint8(min(max(h, lo), hi))
        j = _next_flag(flags, words, n, 0)
        while j < n:
            q = j // w * wp + j % w
            out[orow, j] = _exact_one(g[r, q] + tp[q] + cw2[c], fin, c)
            j = _next_flag(flags, words, n, j + 1)


@numba.njit(inline="always")
def _finish(g, gr, tp, cw, p0, p1, mul, shift, add, wrap, xs, ym, sh, bias, lut, lut_lo, bn, out, orow):
    """out[orow, p] = the uint8 output of the accumulator g[gr, p] + tp[p] + cw of channel c (before the wrap),
    p0 <= p < p1 <= p0 + len(bn), by the integer stages (rows of whole 2-D arrays, addressed by index). xs.. is
    the layer's live activation entries (Finish). A non-empty lut holds the activation's outputs from bn = lut_lo
    on, constant below and past its ends (kpu_proofs.lookup_table). bn is int64 scratch."""
    n = p1 - p0
    up0, ugr, uor, un = np.uint64(p0), np.uint64(gr), np.uint64(orow), np.uint64(n)
    if wrap:
        for j in range(un):
            bn[j] = _batchnorm(_wrap36(g[ugr, up0 + j] + tp[up0 + j] + cw), mul, shift, add)
    else:
        for j in range(un):
            bn[j] = _bn_value(g[ugr, up0 + j] + tp[up0 + j] + cw, mul, shift, add)
    if lut.size:
        top = lut.size - 1
        for j in range(un):
            out[uor, up0 + j] = lut[np.uint64(min(max(bn[j] - lut_lo, 0), top))]
        return
    for j in range(un):
        out[uor, up0 + j] = _activate(bn[j], xs, ym, sh, bias)


@numba.njit(inline="always")
def _finish_rows(g, tp, tp32, cw2, fin, w, wp, out):
    """out[c, p] (uint8) from the accumulators g[c, q] + tp[q] + cw2[c], every row (q and p as in _finish_float;
    wp > w on the float32 path only): the float32 path where the layer has one, else the integer stages block
    by block (int64 scratch that stays in L1)."""
    m, n = out.shape
    if fin.alpha.size:
        _finish_float(g, tp, tp32, 0, cw2, fin, out, 0, m, w, wp)
        return
    bn = np.empty(BLOCK, np.int64)
    # the integer stages' fields taken out once, not per channel from the record (measured: a few % per layer)
    mul, shift, add, wrap, xs, ym, sh, bias, lut, lut_lo = fin[:10]
    for c in range(m):
        for p0 in range(0, n, BLOCK):
            _finish(g, c, tp, cw2[c], p0, min(n, p0 + BLOCK), mul[c], shift[c], add[c], wrap, xs, ym, sh, bias, lut,
                    lut_lo, bn, out, c)


@numba.njit(cache=True, nogil=True)
def window_columns(x, k, pad, flip, grid, cols):
    """im2col of a (ic, h, w) uint8 map for the integer GEMM, channels-major: cols[t*ic + c, p] = x[c] at tap t
    (dy, dx) around output pixel p, padding 1 with `pad` for k=3, every byte XOR `flip` (int_gemm.ExactGemm).
    Per tap the output columns that fall inside the map are a range [lo, hi): rows are copied without tests,
    with the stride as a constant where it is 1 or 2 (so LLVM vectorizes the loads)."""
    ic, h, w = x.shape
    s, r0, c0, oh, ow = grid
    r = k // 2
    padf = pad ^ flip
    # rows addressed by index, not by views: a view costs a reference count each time it is made
    for dy in range(k):
        for dx in range(k):
            off = c0 + dx - r                                   # input column of output column ox: off + ox*s
            lo = min(ow, max(0, (s - 1 - off) // s))            # first ox with off + ox*s >= 0
            hi = max(lo, min(ow, (w - 1 - off) // s + 1))       # past the last ox with off + ox*s < w
            for c in range(ic):
                t = (dy * k + dx) * ic + c
                for oy in range(oh):
                    yy = r0 + oy * s + dy - r
                    b = oy * ow
                    if not 0 <= yy < h:
                        for i in range(ow):
                            cols[t, b + i] = padf
                        continue
                    for i in range(lo):
                        cols[t, b + i] = padf
                    for i in range(hi, ow):
                        cols[t, b + i] = padf
                    ub, ulo, uoff, uy = np.uint64(b), np.uint64(lo), np.uint64(off + lo * s), np.uint64(yy)
                    if s == 1:
                        for i in range(np.uint64(hi - lo)):
                            cols[t, ub + ulo + i] = x[c, uy, uoff + i] ^ flip
                    elif s == 2:
                        for i in range(np.uint64(hi - lo)):
                            cols[t, ub + ulo + i] = x[c, uy, uoff + np.uint64(2) * i] ^ flip
                    else:
                        for i in range(np.uint64(hi - lo)):
                            cols[t, ub + ulo + i] = x[c, uy, uoff + np.uint64(s) * i] ^ flip


@numba.njit(inline="always")
def _pixel_terms(g_sx, sums):
    """Per pixel: (arg_x*SX) >> shr_x, SX = the GEMM's ones row + sx_offset."""
    tp = np.empty(g_sx.size, np.int64)
    for j in range(g_sx.size):
        tp[j] = (sums.arg_x * (np.int64(g_sx[j]) + sums.sx_offset)) >> sums.shr_x
    return tp


@numba.njit(cache=True, nogil=True, fastmath={"contract"})
def finish_gemm(g, sums, fin, w, wp, out):
    """out[c, p] (uint8) from int_gemm.ExactGemm's G with the accumulators of `sums` (cw2 includes x_offset*SW,
    the part of S the GEMM's offset columns left out). G's columns come in rows of wp for the output's rows of w
    (wp > w: padded planes, on the float32 path only)."""
    sums, fin = Sums(*sums), Finish(*fin)
    m = out.shape[0]
    tp = _pixel_terms(g[m], sums)
    tp32 = np.empty(tp.size, np.int32)
    for j in range(tp.size):
        tp32[j] = np.int32(tp[j])
    _finish_rows(g, tp, tp32, sums.cw2, fin, w, wp, out)


@numba.njit(cache=True, nogil=True, fastmath={"contract"})
def finish_gemm_t(g, xt, w_offset, sums, fin, out):
    """out[p, c] (uint8, pixel-major) from int_gemm.ExactGemmT's G^T (n, m) of the columns xt (n, k) on the
    float32 path (see _finish_float), channels innermost: acc = G^T[p, c] + w_offset*SX + ((arg_x*SX) >> shr_x) +
    cw2[c] with SX = the sum of xt[p]."""
    sums, fin = Sums(*sums), Finish(*fin)
    n, m = out.shape
    alpha, beta_e, margin, cw2 = fin.alpha, fin.beta_e, fin.margin, sums.cw2
    lo, hi, cwd, words, flags = _channels_innermost(fin, cw2, np.int32)
    um = np.uint64(m)
    for p in range(np.uint64(n)):
        s = np.int32(0)             # at most 255 * 9 * 1024: int32, so the sum vectorizes
        for j in range(np.uint64(xt.shape[1])):
            s += np.int32(xt[p, j])
        sx = np.int64(s)
        tp = w_offset * sx + ((sums.arg_x * sx) >> sums.shr_x)
        tp32 = np.int32(tp)         # A - A0 fits int32: the wrapped int32 sum is exact (as in _finish_float)
        for c in range(um):
            t = np.float32(np.int32(g[p, c] + tp32 + cwd[c])) * alpha[c] + beta_e[c]
            h = np.floor(t)
            flags[c] = ((t - h) < margin[c]) & (h > lo) & (h <= hi)
            out[p, c] = np.uint8(min(max(h, lo), hi))
        c = _next_flag(flags, words, m, 0)
        while c < m:
            out[p, c] = _exact_one(g[p, c] + tp + cw2[c], fin, c)
            c = _next_flag(flags, words, m, c + 1)


@numba.njit(cache=True, nogil=True)
def gemm_accumulators(g, sums, h, w, win):
    """int64 accumulators from finish_gemm's G for an (h, w) map, max-pooled over win x win windows at stride win
    (win = 1: all of them): for max pooling before BN (see kpu_proofs.monotone), without an int64 map between."""
    sums = Sums(*sums)
    m = g.shape[0] - 1
    oh, ow = h // win, w // win
    acc = np.empty((m, oh * ow), np.int64)
    tp = _pixel_terms(g[m], sums)
    cw2 = sums.cw2
    uw, uow = np.uint64(w), np.uint64(ow)      # unsigned indices: no wraparound tests, so the loops vectorize
    for c in range(np.uint64(m)):              # rows by index, not views (a reference count per view)
        cw = cw2[c]
        for oy in range(np.uint64(oh)):
            o = oy * uow
            if win == 1:
                b = oy * uw
                for ox in range(uow):
                    acc[c, o + ox] = g[c, b + ox] + tp[b + ox] + cw
            elif win == 2:
                b0 = np.uint64(2) * oy * uw
                b1 = b0 + uw
                for ox in range(uow):
                    j0, j1 = b0 + np.uint64(2) * ox, b1 + np.uint64(2) * ox
                    top = max(g[c, j0] + tp[j0], g[c, j0 + np.uint64(1)] + tp[j0 + np.uint64(1)])
                    bot = max(g[c, j1] + tp[j1], g[c, j1 + np.uint64(1)] + tp[j1 + np.uint64(1)])
                    acc[c, o + ox] = max(top, bot) + cw
            else:
                for ox in range(uow):
                    best = g[c, oy * win * uw + ox * win] + tp[oy * win * uw + ox * win]
                    for dy in range(win):
                        for dx in range(win):
                            j = (oy * win + dy) * uw + ox * win + dx
                            best = max(best, g[c, j] + tp[j])
                    acc[c, o + ox] = best + cw
    return acc


@numba.njit(cache=True, nogil=True, fastmath={"contract"})
def finish_accumulators(acc, fin, out):
    """out[c, p] (uint8) from the int64 accumulators acc[c, p]."""
    fin = Finish(*fin)
    n = acc.shape[1]
    _finish_rows(acc, np.zeros(n, np.int64), np.zeros(n, np.int32), np.zeros(acc.shape[0], np.int64), fin, n, n, out)


@numba.njit(cache=True, nogil=True, fastmath={"contract"})
def depthwise(x, dw, grid, fin, flip, out):
    """A depthwise layer's uint8 output at the grid (s, r0, c0) from the (c, h, w) map x, every byte XOR flip: out is
    (c, oh*ow), or for s = 1 (c, n) with n = h*(w + 2r) rounded up to 16: the map, 2r more columns per row (the
    caller takes a view without them, or a 1x1 layer's GEMM takes it as it is).

    Each channel goes into a padded plane of width wp = w + 2r (and 2r more elements): output pixel (y, x) sits
    at y*wp + x and its tap (dy, dx) at the same index + dy*wp + dx, so each tap is one contiguous shift of the
    plane and the loops run over whole planes; for s > 1 the sampled pixels are then copied out.
    dw.f32: 1 where the caller proved every sum below 2^24 (kpu_fast), so the plane is float32 and a 3x3 conv one
    exact pass; 2 where besides there are no window sums (arg_x = 0), the layer has the float32 finishing and
    acc - A0 stays below 2^24 too: the sums go straight into it, exact, in the same pass; 0: uint8 planes, one
    int32 pass per tap.
    With f32 = 2 and s = 2 only the sampled pixels are computed: the map is split into its four phases (row and
    column parity), each a padded plane of width wq = (w + 1) // 2 + 2, where the taps of output (oy, ox) are
    again contiguous shifts of oy*wq + ox (the tap offsets below), so the same loop runs over 4x fewer pixels.
    """
    fin = Finish(*fin)
    ch, h, w = x.shape
    k, pad, wd, f32, arg_x, shr_x, cw2 = dw
    s, r0, c0, oh, ow = grid
    r = k // 2
    poly = s == 2 and f32 == 2 and k == 3
    if poly:
        wp, rows = (w + 1) // 2 + 2, (h + 1) // 2 + 3     # wp: wq above (ow <= (w + 1) // 2); rows: 1 padding
        n, plane = oh * wp, 4 * rows * wp                 # row above, 2 below
    else:
        wp, rows = w + 2 * r, h + 2 * r
        n, plane = h * wp, (h + 2 * r) * wp + 2 * r
    # whole vectors: the loops run over n rounded up to 16 (the rest computed and dropped), as a scalar tail of up
    # to 15 elements per channel cost more than the vector part on 7x7 maps
    n = -(-n // 16) * 16
    plane += 16
    # scratch only where a path needs it (zero-filled scratch the f32 = 2 path never reads cost ~10 us a call)
    ints = f32 != 2 or arg_x != 0           # window sums or the integer stages
    s2 = np.empty((1, n if f32 != 2 else 0), np.int32)
    s32 = s2[0]
    sx = np.empty(n if arg_x != 0 else 0, np.int32)
    tp = np.zeros(n if ints else 0, np.int64)
    tp32 = np.zeros(n if ints else 0, np.int32)
    xf = np.full(plane, np.float32(pad))
    xu = np.full(plane, np.uint8(pad)) if not f32 or arg_x != 0 else np.empty(plane, np.uint8)
    xf2 = xf[:rows * wp].reshape(rows, wp)      # the same planes by rows, written without slicing
    xu2 = xu[:rows * wp].reshape(rows, wp)
    # s = 1: the finishing writes out itself; else a plane that is sampled into out
    out2 = out if s == 1 else np.empty((1, n), np.uint8)
    words, flags = _flag_words(n)
    bn = np.empty(BLOCK, np.int64)
    a0, alpha, beta_e, margin, clip = fin.a0, fin.alpha, fin.beta_e, fin.margin, fin.clip
    fmul, fshift, fadd, fwrap, fxs, fym, fsh, fbias, flut, flut_lo = fin[:10]     # as in _finish_rows
    sflip = np.uint8(flip if s == 1 else 0)     # s > 1: flipped where sampled below
    ur = np.uint64(r)       # unsigned indices: no wraparound tests, so the loops vectorize
    # the 9 taps of a 3x3 conv as shifted views of the plane, made once (views made per channel cost reference
    # counts per channel). Phases: input row r0 + 2*oy + dy - 1 is row oy + (r0 + dy - 1) // 2 + 1 of the phase
    # (r0 + dy - 1) % 2 (Python's floor division and modulo, as numba's), columns alike.
    o = np.empty(9, np.int64)
    for t in range(9):
        dy, dx = t // 3, t % 3
        if poly:
            o[t] = (((r0 + dy - 1) % 2 * 2 + (c0 + dx - 1) % 2) * rows + (r0 + dy - 1) // 2 + 1) * wp \
                + (c0 + dx - 1) // 2 + 1
        else:
            o[t] = dy * wp + dx
    t9 = (xf[o[0]:], xf[o[1]:], xf[o[2]:], xf[o[3]:], xf[o[4]:], xf[o[5]:], xf[o[6]:], xf[o[7]:], xf[o[8]:])
    he, ho, we, wo = np.uint64((h + 1) // 2), np.uint64(h // 2), np.uint64((w + 1) // 2), np.uint64(w // 2)
    uwp, urows = np.uint64(wp), np.uint64(rows)
    for c in range(ch):
        orow = np.uint64(c if s == 1 else 0)
        if poly:
            # phase (py, px) holds x[c, 2i + py, 2j + px] at row i + 1, column j + 1
            for py in range(np.uint64(2)):
                for i in range(he if py == 0 else ho):
                    y = np.uint64(2) * i + py
                    e = (py * np.uint64(2) * urows + i + np.uint64(1)) * uwp + np.uint64(1)
                    e2 = e + urows * uwp
                    if wo >= 48:
                        # both phases in one loop: LLVM loads the row as vectors and splits them (2x faster on
                        # 112 pixels); rows of 56 or less run faster as two strided loops
                        for j in range(wo):
                            xf[e + j] = np.float32(x[c, y, np.uint64(2) * j])
                            xf[e2 + j] = np.float32(x[c, y, np.uint64(2) * j + np.uint64(1)])
                        if we > wo:
                            xf[e + wo] = np.float32(x[c, y, np.uint64(2) * wo])
                        continue
                    for j in range(we):
                        xf[e + j] = np.float32(x[c, y, np.uint64(2) * j])
                    for j in range(wo):
                        xf[e2 + j] = np.float32(x[c, y, np.uint64(2) * j + np.uint64(1)])
        elif f32:
            for y in range(np.uint64(h)):
                for i in range(np.uint64(w)):
                    xf2[y + ur, i + ur] = np.float32(x[c, y, i])
        if not f32 or arg_x != 0:
            for y in range(np.uint64(h)):
                for i in range(np.uint64(w)):
                    xu2[y + ur, i + ur] = x[c, y, i]
        if f32 and k == 3:
            w9 = (np.float32(wd[c, 0]), np.float32(wd[c, 1]), np.float32(wd[c, 2]), np.float32(wd[c, 3]),
                  np.float32(wd[c, 4]), np.float32(wd[c, 5]), np.float32(wd[c, 6]), np.float32(wd[c, 7]),
                  np.float32(wd[c, 8]))
            if f32 == 2:
                cwd, al, be, mg, lo, hi = (np.float32(cw2[c] - a0[c]), alpha[c], beta_e[c], margin[c], clip[0],
                                           clip[1])
                for j in range(np.uint64(n)):
                    t = (_sum9(t9, w9, j) + cwd) * al + be
                    hh = np.floor(t)
                    flags[j] = ((t - hh) < mg) & (hh > lo) & (hh <= hi)      # as in _finish_float
                    out2[orow, j] = np.uint8(min(max(hh, lo), hi)) ^ sflip
                j = _next_flag(flags, words, n, 0)
                while j < n:
                    acc = np.int64(_sum9(t9, w9, np.uint64(j))) + cw2[c]
                    out2[orow, j] = _exact_one(acc, fin, c) ^ sflip
                    j = _next_flag(flags, words, n, j + 1)
            else:
                for j in range(np.uint64(n)):
                    s32[j] = np.int32(_sum9(t9, w9, j))
        elif f32:
            w0 = np.float32(wd[c, 0])
            for j in range(n):
                s32[j] = np.int32(xf[j] * w0)
        else:
            # separate loops over slices, uint8 loads widened to int32 (LLVM vectorizes neither two outputs in
            # one loop nor int32 x int32 products as numba types them, int64)
            s32[:] = 0
            for t in range(k * k):
                wt = wd[c, t]
                v = xu[(t // k) * wp + t % k:]
                for j in range(n):
                    s32[j] += np.int32(v[j]) * wt
        if arg_x != 0:
            sx[:] = 0
            for t in range(k * k):
                v = xu[(t // k) * wp + t % k:]
                for j in range(n):
                    sx[j] += np.int32(v[j])
            for j in range(n):
                tp[j] = (arg_x * np.int64(sx[j])) >> shr_x
                tp32[j] = np.int32(tp[j])
        if f32 != 2 and alpha.size:
            _finish_float(s2, tp, tp32, c, cw2, fin, out2, orow, 1, n, n)
        elif f32 != 2:
            for p0 in range(0, n, BLOCK):
                _finish(s2, 0, tp, cw2[c], p0, min(n, p0 + BLOCK), fmul[c], fshift[c], fadd[c], fwrap, fxs, fym, fsh,
                        fbias, flut, flut_lo, bn, out2, orow)
        if s == 1 and flip != 0 and f32 != 2:         # the f32 = 2 pass flipped as it went
            for j in range(np.uint64(n)):
                out2[orow, j] ^= np.uint8(flip)
        if poly:
            uow = np.uint64(ow)
            for oy in range(np.uint64(oh)):
                for ox in range(uow):
                    out[c, oy * uow + ox] = out2[0, oy * uwp + ox] ^ flip
        elif s > 1:
            for oy in range(oh):
                for ox in range(ow):
                    out[c, oy * ow + ox] = out2[0, (r0 + oy * s) * wp + c0 + ox * s] ^ flip


@numba.njit(inline="always")
def _sum9_hwc(xp, b, c, wf, wp):
    """The 3x3 window sum of channel c whose top-left tap is row b of the padded map xp ((h + 2)*(w + 2), c), rows
    of wp = w + 2 pixels; float32, exact below 2^24 in any order."""
    one, two = np.uint64(1), np.uint64(2)
    b1, b2 = b + wp, b + two * wp
    return ((xp[b, c] * wf[0, c] + xp[b + one, c] * wf[1, c] + xp[b + two, c] * wf[2, c])
            + (xp[b1, c] * wf[3, c] + xp[b1 + one, c] * wf[4, c] + xp[b1 + two, c] * wf[5, c])
            + (xp[b2, c] * wf[6, c] + xp[b2 + one, c] * wf[7, c] + xp[b2 + two, c] * wf[8, c]))


@numba.njit(inline="always")
def _sum9_hwc_4(xp, b, c, wf, wp, s):
    """The window sums of 4 pixels side by side at stride s (1 or 2) of channel c, the first one's top-left tap at
    row b: each loaded input serves every window it falls in (6 loads a row for 4 windows at s = 1, 9 at s = 2,
    instead of 12). Exact: every partial sum is an integer below 2^24."""
    a0 = a1 = a2 = a3 = np.float32(0)
    for dy in range(3):
        r = b + np.uint64(dy) * wp
        w0, w1, w2 = wf[3 * dy, c], wf[3 * dy + 1, c], wf[3 * dy + 2, c]
        if s == 1:
            v0, v1, v2, v3, v4, v5 = (xp[r, c], xp[r + np.uint64(1), c], xp[r + np.uint64(2), c],
                                      xp[r + np.uint64(3), c], xp[r + np.uint64(4), c], xp[r + np.uint64(5), c])
            a0 += v0 * w0 + v1 * w1 + v2 * w2
            a1 += v1 * w0 + v2 * w1 + v3 * w2
            a2 += v2 * w0 + v3 * w1 + v4 * w2
            a3 += v3 * w0 + v4 * w1 + v5 * w2
        else:
            v0, v1, v2, v3, v4 = (xp[r, c], xp[r + np.uint64(1), c], xp[r + np.uint64(2), c], xp[r + np.uint64(3), c],
                                  xp[r + np.uint64(4), c])
            v5, v6, v7, v8 = xp[r + np.uint64(5), c], xp[r + np.uint64(6), c], xp[r + np.uint64(7), c], \
                xp[r + np.uint64(8), c]
            a0 += v0 * w0 + v1 * w1 + v2 * w2
            a1 += v2 * w0 + v3 * w1 + v4 * w2
            a2 += v4 * w0 + v5 * w1 + v6 * w2
            a3 += v6 * w0 + v7 * w1 + v8 * w2
    return a0, a1, a2, a3


@numba.njit(cache=True, nogil=True, fastmath={"contract"})
def depthwise_hwc(x, pad, grid, wf, cw2, fin, out):
    """A 3x3 depthwise layer on the f32 = 2 path (see depthwise) with channels innermost, for small maps with many
    channels: x is the (h, w, c) map, out[oy*ow + ox, c] the output at the grid (s, r0, c0), wf the (9, c)
    float32 taps. Each tap is a multiply-add over the channels (contiguous, with their BN and activation
    constants), so there is no per-channel work at all; at stride 1 or 2, 4 pixels of a row at a time, their
    window sums into float32 scratch (4, c), then finished pixel by pixel."""
    fin = Finish(*fin)
    h, w, ch = x.shape
    s, r0, c0, oh, ow = grid
    wp = np.uint64(w + 2)
    xp = np.full(((h + 2) * (w + 2), ch), np.float32(pad))      # the padded map, pixels as rows
    for y in range(np.uint64(h)):
        for i in range(np.uint64(w)):
            row = (y + np.uint64(1)) * wp + i + np.uint64(1)
            for c in range(np.uint64(ch)):
                xp[row, c] = np.float32(x[y, i, c])
    alpha, beta_e, margin = fin.alpha, fin.beta_e, fin.margin
    lo, hi, cwd, words, flags = _channels_innermost(fin, cw2, np.float32)
    uch = np.uint64(ch)
    sums = np.empty((4, ch), np.float32)
    us = np.uint64(s)
    for oy in range(np.uint64(oh)):
        y0 = np.uint64(r0) + oy * us
        for ox0 in range(0, ow, 4):
            n = min(4, ow - ox0)
            b = y0 * wp + np.uint64(c0) + np.uint64(ox0) * us     # the first pixel's top-left tap
            if n == 4 and s <= 2:
                for c in range(uch):
                    sums[0, c], sums[1, c], sums[2, c], sums[3, c] = _sum9_hwc_4(xp, b, c, wf, wp, s)
            else:
                for k in range(n):
                    for c in range(uch):
                        sums[k, c] = _sum9_hwc(xp, b + np.uint64(k) * us, c, wf, wp)
            for k in range(n):
                q = oy * np.uint64(ow) + np.uint64(ox0 + k)
                for c in range(uch):
                    t = (sums[k, c] + cwd[c]) * alpha[c] + beta_e[c]
                    hh = np.floor(t)
                    flags[c] = ((t - hh) < margin[c]) & (hh > lo) & (hh <= hi)      # as in _finish_float
                    out[q, c] = np.uint8(min(max(hh, lo), hi))
                c = _next_flag(flags, words, ch, 0)
                while c < ch:
                    out[q, c] = _exact_one(np.int64(sums[k, c]) + cw2[c], fin, c)
                    c = _next_flag(flags, words, ch, c + 1)


BLOCK = 1024      # pixels per pass of the finishing loops: their int64 buffers stay in L1
