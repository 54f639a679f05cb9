"""One K210_CONV layer on the emulated KPU: KPU RAM layout, conv as a float64 GEMM, integer post-processing.

The conv sum S = sum(x*w) of uint8 x uint8 (or uint16 weights) products over at most 1024*9 terms stays below
2^53, so float64 GEMM (BLAS) computes it exactly; everything after it is int64 with floor shifts.
"""
import numpy as np

from host_tools.kmodel import regs as R

ACC_BITS = 36     # nncase asserts the accumulator fits 36 signed bits; we wrap like a 36-bit register


def _wrap(v: np.ndarray, bits: int) -> np.ndarray:
    half = np.int64(1 << (bits - 1))
    return ((v + half) & np.int64((1 << bits) - 1)) - half


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


class ConvPlan:
    """What one K210_CONV layer needs at run time, computed once per model."""

    def __init__(self, layer):
        regs = layer.regs
        self.layer = layer
        self.in_shape, self.out_shape = layer.in_shape, layer.out_shape
        ic, ih, iw = self.in_shape
        c = regs.kernel_calc_type_cfg
        wb = regs.write_back_cfg
        self.src = ram_index(regs.image_addr.image_src_addr, self.in_shape, c.coef_group, c.row_switch_addr,
                             c.channel_switch_addr)
        self.dst = ram_index(regs.image_addr.image_dst_addr, self.out_shape, wb.wb_group, wb.wb_row_switch_addr,
                             wb.wb_channel_switch_addr)
        self.k = regs.kernel
        self.depthwise = regs.depthwise
        self.pad_value = regs.kernel_pool_type_cfg.pad_value
        self.pool = regs.kernel_pool_type_cfg.pool_type
        cv = regs.conv_value
        self.arg_x, self.shr_x, self.arg_w, self.shr_w = cv.arg_x, cv.shr_x, cv.arg_w, cv.shr_w
        self.arg_add = regs.conv_value2.arg_add * (1 if self.depthwise else ic)
        w = layer.weights.astype(np.int64)
        oc = self.out_shape[0]
        self.sum_w = w.reshape(oc, -1).sum(axis=1)                      # SW per output channel
        if self.depthwise:
            self.wd = w.reshape(oc, self.k * self.k).astype(np.float64)
        else:
            # taps-major columns (dy, dx, ic) so each tap's block is a contiguous slice of the im2col rows
            self.wm = np.ascontiguousarray(
                w.transpose(0, 2, 3, 1).reshape(oc, -1).astype(np.float64))
        self.bn_mul, self.bn_add, self.bn_shift = (a[:, None] for a in layer.bn)
        act = layer.act
        self.x_start = np.array([s.x_start for s in act], np.int64)
        self.y_mul = np.array([s.y_mul for s in act], np.int64)
        self.a_shift = np.array([min(s.shift, 63) for s in act], np.int64)
        self.a_bias = np.array([s.bias for s in act], np.int64)
        self.sorted_starts = bool(np.all(np.diff(self.x_start) >= 0))
        self.macs = oc * (1 if self.depthwise else ic) * self.k * self.k * ih * iw

    # ---- stages ----

    def conv_sums(self, x: np.ndarray):
        """(S, SX) as int64: S per output channel and pixel, SX the window sum (padding included)."""
        ic, h, w = x.shape
        if self.k == 3:
            xp = np.full((ic, h + 2, w + 2), self.pad_value, np.float64)
            xp[:, 1:-1, 1:-1] = x
            taps = [xp[:, dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)]
        else:
            taps = [x.astype(np.float64)]
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
        s = self.wm @ cols
        sx = cols.sum(axis=0)
        return s.reshape(-1, h, w).astype(np.int64), sx.reshape(1, h, w).astype(np.int64)

    def accumulate(self, s, sx):
        """acc = S + ((arg_x*SX) >> shr_x) + ((arg_w*SW) >> shr_w) + arg_add*IC (floor shifts)."""
        acc = s + ((np.int64(self.arg_x) * sx) >> self.shr_x)
        acc += ((self.arg_w * self.sum_w) >> self.shr_w)[:, None, None]
        acc += self.arg_add
        return _wrap(acc, ACC_BITS)

    def batchnorm(self, acc):
        oc = acc.shape[0]
        a = acc.reshape(oc, -1)
        bn = ((a * self.bn_mul) >> self.bn_shift) + self.bn_add
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

    def pooling(self, y):
        return pool(y, self.pool)

    def forward(self, x: np.ndarray) -> np.ndarray:
        s, sx = self.conv_sums(x)
        return self.pooling(self.activation(self.batchnorm(self.accumulate(s, sx))))


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
    """KPU pooling stage on (c, h, w) uint8; output floor(in / stride). Mean rounds down (nncase v0.1)."""
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
        blocks = y[:, :oh * win, :ow * win].reshape(c, oh, win, ow, win)
        if kind == "max":
            return blocks.max(axis=(2, 4))
        return (blocks.astype(np.int32).sum(axis=(2, 4)) // (win * win)).astype(np.uint8)
    # 2x2 window, stride 1, output the input size: the last row/column sees only what lies inside the map
    p = np.empty((c, h + 1, w + 1), np.int32)
    if kind == "max":
        p.fill(-1)
        p[:, :h, :w] = y
        m = np.maximum(np.maximum(p[:, :h, :w], p[:, 1:, :w]), np.maximum(p[:, :h, 1:], p[:, 1:, 1:]))
        return m.astype(np.uint8)
    p.fill(0)
    p[:, :h, :w] = y
    cnt = np.full((h, w), 4, np.int32)
    cnt[-1, :] = 2
    cnt[:, -1] = 2
    cnt[-1, -1] = 1
    s = p[:, :h, :w] + p[:, 1:, :w] + p[:, :h, 1:] + p[:, 1:, 1:]
    return (s // cnt).astype(np.uint8)
