"""The CPU nodes of kmodel V4, as nncase v0.2's runtime (beta4, the one MaixPy links) computes them on the K210.

Each function takes (node, memory) and follows the v0.2 kernel loop by loop where the order changes the result
(docs/kmodel-v4.md lists every choice):
- float sums run in the kernel's order, one fused multiply-add per term (MaixPy and the SDK build with
  -std=gnu++17 -ffast-math, so GCC contracts `value += a * b`); fma32 rounds the float64 sum once to float32;
- quantize: x*scale + zero_point fused, rounded half to even (the RISC-V kernel's fcvt.w.s rne) except the last
  element of an odd count (roundf, half away from zero); dequantize: q*(1/scale) + (-zp/scale) fused;
- integer requantization: mul_and_carry_shift adds 2^(shift-1) then shifts (beta4), results wrap to int32;
- conv2d_transpose never adds its bias (the v0.2 kernel reads it and drops it).
"""
import numpy as np

from host_tools.kmodel.reader_v4 import BINARY_OPS, DT_F32, DT_U8, REDUCE_OPS, UNARY_OPS

F32, F64 = np.float32, np.float64
INT32 = 1 << 32


def fma32(acc, a, b):
    """float32(acc + a*b) with one rounding (a*b of two float32 is exact in float64)."""
    return (acc.astype(F64) + a.astype(F64) * b.astype(F64)).astype(F32)


def wrap32(v):
    return ((np.asarray(v, np.int64) + (1 << 31)) % INT32) - (1 << 31)


def carry_shift(v, shift: int):
    """nncase v0.2 beta4's carry_shift: round half up by adding 2^(shift-1), arithmetic shift; shift < 0 shifts left."""
    v = np.asarray(v, np.int64)
    if shift > 0:
        return (v + (1 << (shift - 1))) >> shift
    if shift < 0:
        return v << min(-shift, 63)
    return v


def mul_and_carry_shift(v, mul: int, shift: int):
    return wrap32(carry_shift(wrap32(v) * int(mul), shift))


def clamp_act(v, act):
    lo, hi = act
    return np.minimum(np.maximum(v, F32(lo)), F32(hi)).astype(F32)


def _nchw(x, shape):
    return x[:int(np.prod(shape))].reshape(shape)


# ---- elementwise ----

def dequantize(n, m):
    f = n.fields
    zp, sc = f["quant_param"]
    scale = F32(1) / F32(sc)
    zero = F32(-zp) * scale
    q = m.read(f["input"]).astype(F32)
    m.write(f["output"], fma32(np.full(q.shape, zero, F32), q, np.full(q.shape, scale, F32)))


def quantize(n, m):
    f = n.fields
    zp, sc = f["quant_param"]
    x = m.read(f["input"])
    v = fma32(np.full(x.shape, F32(zp), F32), x, np.full(x.shape, F32(sc), F32))
    q = np.rint(v.astype(F64))                                # fcvt.w.s ..., rne
    if x.size % 2:                                            # the odd last element: roundf
        last = v[-1].astype(F64)
        q[-1] = np.sign(last) * np.floor(np.abs(last) + 0.5)
    m.write(f["output"], np.clip(np.nan_to_num(q, nan=0.0, posinf=255, neginf=0), 0, 255).astype(np.uint8))


_UNARY = {"abs": np.abs, "ceil": np.ceil, "cos": np.cos, "exp": np.exp, "floor": np.floor, "log": np.log,
          "neg": np.negative, "rsqrt": lambda a: F32(1) / np.sqrt(a), "sin": np.sin, "square": lambda a: a * a}


def unary(n, m):
    f = n.fields
    m.write(f["output"], _UNARY[UNARY_OPS[f["unary_op"]]](m.read(f["input"])).astype(F32))


def table_lookup1d(n, m):
    f = n.fields
    m.write(f["output"], m.read(f["table"])[m.read(f["input"])])


def nnil_unary_method(n, m):
    """The nnil stack program, run on every element at once (it has no branches)."""
    f = n.fields
    x = m.read(f["input"])
    stack = []
    for op, const in f["program"]:
        if op == "ret":
            m.write(f["output"], np.broadcast_to(stack.pop(), x.shape).astype(F32))
            return
        if op == "dup":
            stack.append(stack[-1])
        elif op == "pop":
            stack.pop()
        elif op == "lda_0":
            stack.append(x)
        elif op in ("ldc_r4_0", "ldc_r4_1", "ldc_r4"):
            stack.append(F32({"ldc_r4_0": 0.0, "ldc_r4_1": 1.0}.get(op, const)))
        elif op == "clamp":
            hi, lo, v = stack.pop(), stack.pop(), stack.pop()
            stack.append(np.minimum(np.maximum(v, lo), hi))
        elif op in _UNARY:
            stack.append(F32(_UNARY[op](stack.pop())) if np.ndim(stack[-1]) == 0 else _UNARY[op](stack.pop()))
        elif op != "nop":
            b, a = stack.pop(), stack.pop()
            stack.append(_BINARY[op](a, b))


_BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "min": np.minimum,
           "max": np.maximum}


def binary(n, m):
    f = n.fields
    a = _nchw(m.read(f["input_a"]), f["in_a_shape"])
    b = _nchw(m.read(f["input_b"]), f["in_b_shape"])
    out = _BINARY[BINARY_OPS[f["binary_op"]]](a, b).astype(F32)
    m.write(f["output"], clamp_act(np.broadcast_to(out, f["out_shape"]), f["fused_activation"]))


def quantized_binary(n, m):
    f = n.fields
    a = _nchw(m.read(f["input_a"]), f["in_a_shape"]).astype(np.int64)
    b = _nchw(m.read(f["input_b"]), f["in_b_shape"]).astype(np.int64)
    a = mul_and_carry_shift(a + f["input_a_offset"], f["input_a_mul"], f["input_a_shift"])
    b = mul_and_carry_shift(b + f["input_b_offset"], f["input_b_mul"], f["input_b_shift"])
    op = BINARY_OPS[f["binary_op"]]
    if op == "div":
        if (b == 0).any():
            raise ValueError("quantized division by zero")
        num = a + np.trunc(b / 2).astype(np.int64)
        v = np.trunc(num / b).astype(np.int64)                 # C integer division truncates
    else:
        v = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "min": np.minimum, "max": np.maximum}[op](a, b)
    v = mul_and_carry_shift(wrap32(v), f["output_mul"], f["output_shift"]) + f["output_offset"]
    m.write(f["output"], np.clip(np.broadcast_to(v, f["out_shape"]), 0, 255).astype(np.uint8))


# ---- data movement ----

def concat(n, m):
    f = n.fields
    inner, outer = f["inner_size"], f["outer_size"]
    parts = [m.read_bytes(r)[:outer * inner * d].reshape(outer, inner * d) for r, d in zip(f["inputs"], f["dims"])]
    m.write_bytes(f["output"], np.concatenate(parts, axis=1).reshape(-1) if parts else np.zeros(0, np.uint8))


def memory_copy(n, m):
    f = n.fields
    src = m.read_bytes(f["input"])
    m.write_bytes(f["output"], src[:src.size // 4 * 4])      # memory_at<float>: whole floats only


def _elements(m, r, count):
    """The first count elements of range r as unsigned integers of the range's element size (a bit copy)."""
    e = 4 if r.dtype == DT_F32 else 1
    return m.read_bytes(r)[:count * e].view("<u4" if e == 4 else np.uint8)


def transpose(n, m):
    f = n.fields
    s = f["in_shape"]
    x = _elements(m, f["input"], int(np.prod(s))).reshape(s)
    m.write_bytes(f["output"], np.ascontiguousarray(x.transpose(f["perm"])).view(np.uint8).reshape(-1))


def pad(n, m):
    f = n.fields
    s, out = f["in_shape"], f["out_shape"]
    x = _elements(m, f["input"], int(np.prod(s))).reshape(s)
    raw = f["pad_value"][1]
    value = np.frombuffer(raw, "<u4")[0] if f["input"].dtype == DT_F32 else raw[0]
    y = np.full(out, value, x.dtype)
    dst, src = [], []
    for k, (b, a) in enumerate(f["paddings"]):
        o0, o1 = max(b, 0), out[k] - max(a, 0)
        dst.append(slice(o0, o1))
        src.append(slice(o0 - b, o0 - b + o1 - o0))
    y[tuple(dst)] = x[tuple(src)]
    m.write_bytes(f["output"], y.view(np.uint8).reshape(-1))


def strided_slice(n, m):
    f = n.fields
    s = f["in_shape"]
    x = _elements(m, f["input"], int(np.prod(s))).reshape(s)
    idx = [np.arange(b, e, st) for b, e, st in zip(f["begin"], f["end"], f["strides"])]
    m.write_bytes(f["output"], np.ascontiguousarray(x[np.ix_(*idx)]).view(np.uint8).reshape(-1))


def resize_image(n, m):
    f = n.fields
    s = f["in_shape"]
    r = f["input"]
    x = _nchw(m.read(r), s)
    oh, ow = f["out_h"], f["out_w"]
    hs, ws = F32(s[2]) / F32(oh), F32(s[3]) / F32(ow)
    if f["mode"] == 1:                                        # nearest neighbour
        iy = np.minimum(np.floor(np.arange(oh, dtype=F32) * hs).astype(np.int64), s[2] - 1)
        ix = np.minimum(np.floor(np.arange(ow, dtype=F32) * ws).astype(np.int64), s[3] - 1)
        m.write(f["output"], x[:, :, iy][:, :, :, ix])
        return
    if f["align_corners"] and oh > 1:
        hs = F32(s[2] - 1) / F32(oh - 1)
    if f["align_corners"] and ow > 1:
        ws = F32(s[3] - 1) / F32(ow - 1)
    fy = np.arange(oh, dtype=F32) * hs
    fx = np.arange(ow, dtype=F32) * ws
    y0 = np.floor(fy).astype(np.int64)
    x0 = np.floor(fx).astype(np.int64)
    y1, x1 = np.minimum(y0 + 1, s[2] - 1), np.minimum(x0 + 1, s[3] - 1)
    dy, dx = (fy - y0.astype(F32))[:, None], (fx - x0.astype(F32))[None, :]
    a0, a1 = (F32(1) - dy) * (F32(1) - dx), dy * (F32(1) - dx)
    a2, a3 = (F32(1) - dy) * dx, dy * dx
    xf = x.astype(F32)

    def at(yy, xx):
        return xf[:, :, yy][:, :, :, xx]
    v = at(y0, x0) * a0
    for part, w in ((at(y1, x0), a1), (at(y0, x1), a2), (at(y1, x1), a3)):
        v = fma32(v, part, np.broadcast_to(w, v.shape))
    m.write(f["output"], v if r.dtype == DT_F32 else np.clip(np.trunc(v), 0, 255).astype(np.uint8))


# ---- reductions and softmax ----

def reduce(n, m):
    f = n.fields
    s, o = f["in_shape"], f["out_shape"]
    x = _nchw(m.read(f["input"]), s)
    axes = [k for k in range(4) if o[k] == 1 and s[k] != 1]
    rest = [k for k in range(4) if k not in axes]
    cols = x.transpose(axes + rest).reshape(int(np.prod([s[k] for k in axes])), -1)
    op = REDUCE_OPS[f["reduce_op"]]
    acc = np.full(cols.shape[1], F32(f["init_value"]), F32)
    fn = {"mean": np.add, "sum": np.add, "min": np.minimum, "max": np.maximum}[op]
    for row in cols:                                          # the kernel's row-major order, one element at a time
        acc = fn(acc, row).astype(F32)
    if op == "mean":
        acc = acc * (F32(int(np.prod(o))) / F32(int(np.prod(s))))
    m.write(f["output"], acc.astype(F32))


def _windows(f, h, w):
    """Per (ky, kx) the output rows/columns that tap reads and the input rows/columns it reads there."""
    (oh, ow) = f["out_hw"]
    out = []
    for ky in range(f["filter_h"]):
        iy = np.arange(oh) * f["stride_h"] - f["padding_h"][0] + ky * f["dilation_h"]
        vy = (iy >= 0) & (iy < h)
        for kx in range(f["filter_w"]):
            ix = np.arange(ow) * f["stride_w"] - f["padding_w"][0] + kx * f["dilation_w"]
            vx = (ix >= 0) & (ix < w)
            out.append((ky, kx, np.flatnonzero(vy), iy[vy], np.flatnonzero(vx), ix[vx]))
    return out


def _reduce_window(n, m, nhwc):
    f = n.fields
    s = f["in_shape"]
    x = _nchw(m.read(f["input"]), s)
    if nhwc:
        x = x.transpose(0, 3, 1, 2)
    b, c, h, w = x.shape
    oh, ow = f["out_hw"]
    op = REDUCE_OPS[f["reduce_op"]]
    fn = {"mean": np.add, "sum": np.add, "min": np.minimum, "max": np.maximum}[op]
    acc = np.full((b, c, oh, ow), F32(f["init_value"]), F32)
    count = np.zeros((oh, ow), np.int64)
    for _, _, oy, iy, ox, ix in _windows(f, h, w):
        sub = acc[:, :, oy][:, :, :, ox]
        acc[np.ix_(range(b), range(c), oy, ox)] = fn(sub, x[:, :, iy][:, :, :, ix]).astype(F32)
        count[np.ix_(oy, ox)] += 1
    if op == "mean":
        acc = (acc / np.maximum(count, 1).astype(F32)).astype(F32)
    y = clamp_act(acc, f["fused_activation"])
    m.write(f["output"], y.transpose(0, 2, 3, 1) if nhwc else y)


def reduce_window2d(n, m):
    _reduce_window(n, m, nhwc=False)


def cpu_reduce_window2d(n, m):
    _reduce_window(n, m, nhwc=True)


def softmax(n, m):
    f = n.fields
    inner, outer = f["inner_size"], f["outer_size"]
    x = m.read(f["input"])[:inner * outer].reshape(outer, inner)
    e = np.exp((x - x.max(axis=1, keepdims=True)) * F32(f["beta"])).astype(F32)
    total = np.zeros(outer, F32)
    for k in range(inner):                                    # summed in order, as the kernel's loop
        total = (total + e[:, k]).astype(F32)
    m.write(f["output"], (e / total[:, None]).astype(F32))


# ---- matrix products and convolutions ----

def matmul(n, m):
    f = n.fields
    r, k, c = f["a_rows"], f["a_cols"], f["b_cols"]
    a = m.read(f["input_a"])[:r * k].reshape(r, k)
    b = m.read(f["input_b"])[:k * c].reshape(k, c)
    acc = np.broadcast_to(f["bias"].astype(F32), (r, c)).copy()
    for i in range(k):
        acc = fma32(acc, np.broadcast_to(a[:, i:i + 1], (r, c)), np.broadcast_to(b[i], (r, c)))
    m.write(f["output"], clamp_act(acc, f["fused_activation"]))


def quantized_matmul(n, m):
    f = n.fields
    r, k, c = f["a_rows"], f["a_cols"], f["b_cols"]
    a = m.read(f["input_a"])[:r * k].reshape(r, k).astype(np.int64) + f["input_a_offset"]
    b = m.read(f["input_b"])[:k * c].reshape(k, c).astype(np.int64) + f["input_b_offset"]
    v = wrap32(a @ b + f["bias"].astype(np.int64))
    v = mul_and_carry_shift(v, f["output_mul"], f["output_shift"]) + f["output_offset"]
    m.write(f["output"], np.clip(v, 0, 255).astype(np.uint8))


def _conv(n, m, nhwc, quant, depthwise):
    """Every conv flavour: x (b, c, h, w), weights (oc, c/groups, kh, kw); sums in the kernel's tap order."""
    f = n.fields
    s = f["in_shape"]
    x = _nchw(m.read(f["input"]), s)
    if nhwc:
        x = x.transpose(0, 3, 1, 2)
    b, c, h, w = x.shape
    kh, kw = f["filter_h"], f["filter_w"]
    groups = c if depthwise else f.get("groups", 1)
    oc = c if depthwise else f["out_channels"]
    g_ic, g_oc = c // groups, oc // groups
    if nhwc:          # CPU kernels keep weights (oc, kh, kw, ic), depthwise (c, kh, kw)
        wt = f["weights"].reshape((oc, kh, kw, 1) if depthwise else (oc, kh, kw, c)).transpose(0, 3, 1, 2)
    else:
        wt = f["weights"].reshape(oc, g_ic, kh, kw)
    oh, ow = f["out_hw"]
    taps = _windows(f, h, w)
    if quant:
        # CPU kernels subtract the offsets, the neutral ones add them; the sum is exact either way
        sign = -1 if nhwc else 1
        xs = x.astype(np.int64) + sign * f["input_offset"]
        ws = wt.astype(np.int64) + sign * f["filter_offset"]
        acc = np.broadcast_to(f["bias"].astype(np.int64)[None, :, None, None], (b, oc, oh, ow)).copy()
    else:
        xs, ws = x.astype(F32), wt.astype(F32)
        acc = np.broadcast_to(f["bias"].astype(F32)[None, :, None, None], (b, oc, oh, ow)).copy()
    for g in range(groups):
        oc_sl = slice(g * g_oc, (g + 1) * g_oc)
        order = ([(ky, kx, ic) for ky in range(kh) for kx in range(kw) for ic in range(g_ic)] if nhwc and
                 not depthwise else [(ky, kx, ic) for ic in range(g_ic) for ky in range(kh) for kx in range(kw)])
        for ky, kx, ic in order:
            _, _, oy, iy, ox, ix = taps[ky * kw + kx]
            if not oy.size or not ox.size:
                continue
            xin = xs[:, g * g_ic + ic][:, iy][:, :, ix][:, None]            # (b, 1, ny, nx)
            wv = ws[oc_sl, ic, ky, kx][None, :, None, None]
            region = np.ix_(range(b), range(oc_sl.start, oc_sl.stop), oy, ox)
            if quant:
                acc[region] += xin * wv
            else:
                cur = acc[region]
                acc[region] = fma32(cur, np.broadcast_to(xin, cur.shape), np.broadcast_to(wv, cur.shape))
    if quant:
        v = mul_and_carry_shift(wrap32(acc), f["output_mul"], f["output_shift"]) + f["output_offset"]
        y = np.clip(v, 0, 255).astype(np.uint8)
    else:
        y = clamp_act(acc, f["fused_activation"])
    m.write(f["output"], y.transpose(0, 2, 3, 1) if nhwc else y)


def conv2d(n, m):
    _conv(n, m, nhwc=False, quant=False, depthwise=False)


def quantized_conv2d(n, m):
    _conv(n, m, nhwc=False, quant=True, depthwise=False)


def cpu_conv2d(n, m):
    _conv(n, m, nhwc=True, quant=False, depthwise=False)


def cpu_depthwise_conv2d(n, m):
    _conv(n, m, nhwc=True, quant=False, depthwise=True)


def cpu_quantized_conv2d(n, m):
    _conv(n, m, nhwc=True, quant=True, depthwise=False)


def cpu_quantized_depthwise_conv2d(n, m):
    _conv(n, m, nhwc=True, quant=True, depthwise=True)


def conv2d_transpose(n, m):
    """Scatter form, contributions to each output in the kernel's order (ic, iy, ix, then ky, kx): per input
    channel, taps from the last row/column of the kernel to the first; no bias (as the v0.2 kernel)."""
    f = n.fields
    s, o = f["in_shape"], f["out_shape"]
    x = _nchw(m.read(f["input"]), s)
    g = f["groups"]
    g_ic, g_oc = s[1] // g, o[1] // g
    kh, kw = f["filter_h"], f["filter_w"]
    wt = f["weights"].reshape(o[1], g_ic, kh, kw)
    y = np.zeros(o, F32)
    for gi in range(g):
        for ic in range(g_ic):
            for ky in reversed(range(kh)):
                oy = np.arange(s[2]) * f["stride_h"] - f["padding_h"][0] + ky * f["dilation_h"]
                vy = (oy >= 0) & (oy < o[2])
                for kx in reversed(range(kw)):
                    ox = np.arange(s[3]) * f["stride_w"] - f["padding_w"][0] + kx * f["dilation_w"]
                    vx = (ox >= 0) & (ox < o[3])
                    if not vy.any() or not vx.any():
                        continue
                    xin = x[:, gi * g_ic + ic][:, vy][:, :, vx][:, None]
                    wv = wt[gi * g_oc:(gi + 1) * g_oc, ic, ky, kx][None, :, None, None]
                    region = np.ix_(range(o[0]), range(gi * g_oc, (gi + 1) * g_oc), oy[vy], ox[vx])
                    cur = y[region]
                    y[region] = fma32(cur, np.broadcast_to(xin, cur.shape), np.broadcast_to(wv, cur.shape))
    lo, hi = f["fused_activation"]
    full = np.finfo(F32)
    if not (F32(lo) == full.min and F32(hi) == full.max):
        y = clamp_act(y, (lo, hi))
    m.write(f["output"], y)


RUN = {0x00: binary, 0x01: concat, 0x02: conv2d, 0x03: dequantize, 0x04: matmul, 0x05: pad, 0x06: quantize,
       0x07: reduce, 0x08: reduce_window2d, 0x09: memory_copy, 0x0A: resize_image, 0x0B: softmax, 0x0C: transpose,
       0x0D: strided_slice, 0x0E: unary, 0x0F: quantized_conv2d, 0x10: quantized_matmul, 0x11: quantized_binary,
       0x12: table_lookup1d, 0x13: conv2d_transpose, 0x14: nnil_unary_method,
       0x1001: cpu_conv2d, 0x1002: cpu_depthwise_conv2d, 0x1003: cpu_reduce_window2d,
       0x1004: cpu_quantized_conv2d, 0x1005: cpu_quantized_depthwise_conv2d}
