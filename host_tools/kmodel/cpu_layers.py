"""The CPU layers of the kmodel V3 runtime, as the K210 SDK's kpu.c runs them, on a main-memory byte array.

Float arithmetic is float32 like the board's, with two deliberate differences (listed in emulator.py):
dot products and dequantize are computed in float64 and rounded once to float32.
The element loops of the layers every classifier ends with (dequantize, global average pooling, quantize, softmax) are
compiled: inside a run, each numpy call costs several microseconds, more than these layers' arithmetic.
"""
from functools import lru_cache

import numba
import numpy as np

from host_tools.k210.arith import carry_shift
from host_tools.kmodel.kpu_ram import rule_index

F32 = np.dtype("<f4")
FLT_MIN = np.float32(1.1754944e-38)


def rd_f32(mem, addr, n):
    return mem[addr:addr + 4 * n].view(F32).copy()


def wr_f32(mem, addr, values):
    v = np.ascontiguousarray(values, dtype=F32).reshape(-1)
    mem[addr:addr + 4 * v.size] = v.view(np.uint8)


def rd_u8(mem, addr, n):
    return mem[addr:addr + n].copy()


def wr_u8(mem, addr, values):
    v = np.ascontiguousarray(values, dtype=np.uint8).reshape(-1)
    mem[addr:addr + v.size] = v


def _act(x, act):
    if act == 1:
        return np.maximum(x, np.float32(0))
    if act == 2:
        return np.minimum(np.maximum(x, np.float32(0)), np.float32(6))
    return x


def add(L, mem, ram):
    f = L.fields
    wr_f32(mem, f["out"], rd_f32(mem, f["in_a"], f["count"]) + rd_f32(mem, f["in_b"], f["count"]))


def quantized_add(L, mem, ram):
    f = L.fields
    n = -(-f["count"] // 8) * 8
    a = rd_u8(mem, f["in_a"], n).astype(np.int64)
    b = rd_u8(mem, f["in_b"], n).astype(np.int64)
    a = (a + f["a_offset"]) * f["a_mul"]
    b = (b + f["b_offset"]) * f["b_mul"]
    if f["a_shift"] == f["b_shift"]:
        v = (a + b) >> f["a_shift"]
    else:
        v = (a >> f["a_shift"]) + (b >> f["b_shift"])
    v = carry_shift(v * f["out_mul"], f["out_shift"]) + f["out_offset"]
    wr_u8(mem, f["out"], np.clip(v, 0, 255))


@numba.njit(cache=True, nogil=True)
def _channel_means(x, k, out):
    """out[c] = the float32 sum of x[c*k:(c+1)*k] in order, / k (the SDK's loop). Four channels at a time: each
    sum keeps its order, and four chains of dependent adds run side by side instead of one."""
    n = out.size
    for c in range(0, n - n % 4, 4):
        a0 = a1 = a2 = a3 = np.float32(0)
        for i in range(c * k, (c + 1) * k):
            a0 += x[i]
            a1 += x[i + k]
            a2 += x[i + 2 * k]
            a3 += x[i + 3 * k]
        out[c], out[c + 1], out[c + 2], out[c + 3] = a0 / np.float32(k), a1 / np.float32(k), a2 / np.float32(k), \
            a3 / np.float32(k)
    for c in range(n - n % 4, n):
        acc = np.float32(0)
        for i in range(c * k, (c + 1) * k):
            acc += x[i]
        out[c] = acc / np.float32(k)


def global_average_pool2d(L, mem, ram):
    f = L.fields
    k, c = f["kernel_size"], f["channels"]
    out = np.empty(c, F32)
    _channel_means(rd_f32(mem, f["in"], k * c), k, out)
    wr_f32(mem, f["out"], out)


def _window_ranges(f):
    """Per output coordinate: the clipped input window [start, end) along one axis, as the SDK computes it."""
    out = []
    for o, i, k, s, p in (("out_h", "in_h", "kernel_h", "stride_h", "pad_h"),
                          ("out_w", "in_w", "kernel_w", "stride_w", "pad_w")):
        origin = np.arange(f[o], dtype=np.int64) * f[s] - f[p]
        lo = np.maximum(0, -origin)
        hi = np.minimum(f[k], f[i] - origin)
        out.append((origin, lo, hi, f[k]))
    return out


def _pool2d(f, x, reduce_max):
    """Max or mean pooling of x (c, h, w) with the SDK's clipping; empty windows give 0."""
    (oy, ly, hy, ky), (ox, lx, hx, kx) = _window_ranges(f)
    c = f["out_c"]
    acc = np.zeros((c, len(oy), len(ox)), np.float64)
    cnt = np.zeros((len(oy), len(ox)), np.float64)
    for dy in range(ky):
        vy = (ly <= dy) & (dy < hy)
        iy = np.clip(oy + dy, 0, x.shape[1] - 1)
        for dx in range(kx):
            vx = (lx <= dx) & (dx < hx)
            ix = np.clip(ox + dx, 0, x.shape[2] - 1)
            valid = vy[:, None] & vx[None, :]
            v = x[:c][:, iy][:, :, ix]
            if reduce_max:
                acc = np.where(valid, np.maximum(acc, v), acc)
            else:
                acc += np.where(valid, v, 0)
                cnt += valid
    return acc, cnt


def quantized_max_pool2d(L, mem, ram):
    f = L.fields
    x = rd_u8(mem, f["in"], f["in_c"] * f["in_h"] * f["in_w"]).reshape(f["in_c"], f["in_h"], f["in_w"])
    acc, _ = _pool2d(f, x, True)
    wr_u8(mem, f["out"], acc)


def average_pool2d(L, mem, ram):
    # The SDK ignores the act field here.
    f = L.fields
    x = rd_f32(mem, f["in"], f["in_c"] * f["in_h"] * f["in_w"]).reshape(f["in_c"], f["in_h"], f["in_w"])
    acc, cnt = _pool2d(f, x.astype(np.float64), False)
    with np.errstate(invalid="ignore", divide="ignore"):
        wr_f32(mem, f["out"], (acc.astype(np.float32) / cnt.astype(np.float32)))


@numba.njit(cache=True, nogil=True)
def _quantize(x, bias, inv, out):
    """out = clamp(roundf((x - bias) * inv), 0, 255) in float32 as the SDK (roundf: half away from zero;
    NaN gives 0)."""
    for i in range(x.size):
        v = np.float64((x[i] - bias) * inv)
        r = np.sign(v) * np.floor(np.abs(v) + 0.5)
        out[i] = 0 if np.isnan(r) else np.uint8(min(max(r, 0.0), 255.0))


@numba.njit(cache=True, nogil=True)
def _dequantize(q, scale, bias, out):
    for i in range(q.size):
        out[i] = np.float32(np.float64(q[i]) * scale + bias)


def quantize(L, mem, ram):
    f = L.fields
    scale = np.float32(f["scale"])
    inv = np.float32(1) / scale if scale != 0 else np.copysign(np.float32(np.inf), scale)   # as float division
    out = np.empty(f["count"], np.uint8)
    _quantize(rd_f32(mem, f["in"], f["count"]), np.float32(f["bias"]), inv, out)
    wr_u8(mem, f["out"], out)


def dequantize(L, mem, ram):
    f = L.fields
    out = np.empty(f["count"], F32)
    _dequantize(mem[f["in"]:f["in"] + f["count"]], float(np.float32(f["scale"])), float(np.float32(f["bias"])), out)
    wr_f32(mem, f["out"], out)


def channelwise_dequantize(L, mem, ram):
    f = L.fields
    c, n = f["channels"], f["channel_size"]
    q = rd_u8(mem, f["in"], c * n).reshape(c, n).astype(np.float64)
    s = f["scales"].astype(np.float64)[:, None]
    b = f["biases"].astype(np.float64)[:, None]
    wr_f32(mem, f["out"], q * s + b)


def requantize(L, mem, ram):
    f = L.fields
    wr_u8(mem, f["out"], f["table"][rd_u8(mem, f["in"], f["count"])])


def l2_normalization(L, mem, ram):
    f = L.fields
    x = rd_f32(mem, f["in"], f["channels"])
    with np.errstate(all="ignore"):
        s = max(np.float32(np.dot(x.astype(np.float64), x.astype(np.float64))), np.float32(1e-10))
        wr_f32(mem, f["out"], x * (np.float32(1) / np.sqrt(np.float32(s))))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _softmax(x, out):
    """The SDK's loops in float32: max from FLT_MIN, exp(x - max), their sum in order, each / the sum."""
    m = FLT_MIN
    for v in x:
        m = max(m, v)
    total = np.float32(0)
    for i in range(x.size):
        out[i] = np.exp(x[i] - m)
        total += out[i]
    for i in range(x.size):
        out[i] = out[i] / total


def softmax(L, mem, ram):
    f = L.fields
    out = np.empty(f["channels"], F32)
    _softmax(rd_f32(mem, f["in"], f["channels"]), out)
    wr_f32(mem, f["out"], out)


def concat(L, mem, ram):
    f = L.fields
    out = f["out"]
    for start, size in f["inputs"]:
        mem[out:out + size] = mem[start:start + size].copy()
        out += size


def fully_connected(L, mem, ram):
    f = L.fields
    x = rd_f32(mem, f["in"], f["in_channels"]).astype(np.float64)
    with np.errstate(all="ignore"):
        y = (f["weights"].astype(np.float64) @ x).astype(np.float32) + f["bias"]
    wr_f32(mem, f["out"], _act(y, f["act"]))


def tf_flatten(L, mem, ram):
    f = L.fields
    c, h, w = f["c"], f["h"], f["w"]
    if L.type == 20:
        wr_f32(mem, f["out"], rd_f32(mem, f["in"], c * h * w).reshape(c, h, w).transpose(1, 2, 0))
    else:   # 21: Maix-EMC's driver does the same on uint8
        wr_u8(mem, f["out"], rd_u8(mem, f["in"], c * h * w).reshape(c, h, w).transpose(1, 2, 0))


def resize_nearest_neighbor(L, mem, ram):
    # The SDK ignores align_corners; scales are float32.
    f = L.fields
    c, ih, iw, oh, ow = f["in_c"], f["in_h"], f["in_w"], f["out_h"], f["out_w"]
    hs, ws = np.float32(ih) / np.float32(oh), np.float32(iw) / np.float32(ow)
    iy = np.minimum(np.floor(np.arange(oh, dtype=np.float32) * hs), ih - 1).astype(np.int64)
    ix = np.minimum(np.floor(np.arange(ow, dtype=np.float32) * ws), iw - 1).astype(np.int64)
    if L.type == 22:
        x = rd_f32(mem, f["in"], c * ih * iw).reshape(c, ih, iw)
        wr_f32(mem, f["out"], x[:, iy][:, :, ix])
    else:
        x = rd_u8(mem, f["in"], c * ih * iw).reshape(c, ih, iw)
        wr_u8(mem, f["out"], x[:, iy][:, :, ix])


def logistic(L, mem, ram):
    f = L.fields
    x = rd_f32(mem, f["in"], f["channels"])
    with np.errstate(over="ignore"):
        wr_f32(mem, f["out"], np.float32(1) / (np.float32(1) + np.exp(-x)))


def add_padding(L, mem, ram):
    """Channel c goes to pixel (0, 0) of a 4x4 map in KPU RAM (4 channels per row); the rest is left as is."""
    f = L.fields
    ram.put(*pixel_zero(f["kpu_out"], f["channels"]), rd_u8(mem, f["in"], f["channels"]))


@lru_cache(maxsize=64)
def pixel_zero(addr: int, c: int):
    """Byte offsets of pixel (0, 0) of each channel of a (c, 4, 4) map uploaded at addr, and their span."""
    idx = np.ascontiguousarray(rule_index(addr, (c, 4, 4))[:, 0, 0])
    return idx, (int(idx.min()), int(idx.max()) + 1)


def remove_padding(L, mem, ram):
    f = L.fields
    c = f["channels"]
    wr_u8(mem, f["out"], mem[f["in"]:f["in"] + 16 * c:16][:c])


def upload(L, mem, ram):
    f = L.fields
    shape = (f["c"], f["h"], f["w"])
    ram[rule_index(f["kpu_out"], shape)] = rd_u8(mem, f["in"], f["c"] * f["h"] * f["w"]).reshape(shape)


RUN = {
    1: add, 2: quantized_add, 5: global_average_pool2d, 8: quantized_max_pool2d, 9: average_pool2d,
    11: quantize, 12: dequantize, 13: requantize, 14: l2_normalization, 15: softmax, 16: concat, 17: concat,
    18: fully_connected, 20: tf_flatten, 21: tf_flatten, 22: resize_nearest_neighbor,
    23: resize_nearest_neighbor, 24: channelwise_dequantize, 25: logistic,
    10241: add_padding, 10242: remove_padding, 10243: upload,
}
