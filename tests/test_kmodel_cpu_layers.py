"""The compiled CPU layers against the SDK's loops written out plainly (float32 in order, roundf, clamps)."""
from types import SimpleNamespace

import numpy as np

from host_tools.kmodel import cpu_layers as C

IN, OUT = 0, 8192


def _mem(values, dtype):
    mem = np.zeros(16384, np.uint8)
    v = np.asarray(values, dtype).reshape(-1)
    mem[IN:IN + v.nbytes] = v.view(np.uint8)
    return mem


def test_quantize_rounds_half_away_from_zero_and_clamps():
    scale, bias = np.float32(0.25), np.float32(-3.0)
    ties = (np.arange(-20, 280) + 0.5) * scale + bias            # exact halves after the scaling
    x = np.concatenate([ties, [np.nan, np.inf, -np.inf, 1e30, -1e30, bias]]).astype(np.float32)
    mem = _mem(x, np.float32)
    C.quantize(SimpleNamespace(fields={"in": IN, "out": OUT, "count": x.size, "scale": scale, "bias": bias}), mem,
               None)
    want = []
    for v in x:
        r = float((v - bias) * (np.float32(1) / scale))
        r = 0.0 if np.isnan(r) else np.sign(r) * np.floor(abs(r) + 0.5)
        want.append(min(max(r, 0), 255))
    np.testing.assert_array_equal(mem[OUT:OUT + x.size], np.array(want, np.uint8))
    assert mem[OUT + 20] == 1 and mem[OUT + 19] == 0       # 0.5 -> 1, -0.5 -> clamped 0


def test_dequantize_is_one_rounding_of_the_exact_value():
    q = np.arange(256, dtype=np.uint8)
    mem = _mem(q, np.uint8)
    scale, bias = np.float32(0.1), np.float32(-12.7)
    C.dequantize(SimpleNamespace(fields={"in": IN, "out": OUT, "count": 256, "scale": scale, "bias": bias}), mem,
                 None)
    want = (q.astype(np.float64) * float(scale) + float(bias)).astype(np.float32)
    np.testing.assert_array_equal(mem[OUT:OUT + 1024].view(np.float32), want)


def test_global_average_pool_and_softmax_sum_in_order():
    """Values where the order of a float32 sum shows: the result is the SDK's loop, not a pairwise sum."""
    rng = np.random.default_rng(0)
    k, c = 49, 6
    x = (rng.normal(0, 1, (c, k)) * 10.0 ** rng.integers(-3, 8, (c, k))).astype(np.float32)
    mem = _mem(x, np.float32)
    C.global_average_pool2d(SimpleNamespace(fields={"in": IN, "out": OUT, "kernel_size": k, "channels": c}), mem,
                            None)
    want = []
    for row in x:
        s = np.float32(0)
        for v in row:
            s = np.float32(s + v)
        want.append(s / np.float32(k))
    np.testing.assert_array_equal(mem[OUT:OUT + 4 * c].view(np.float32), np.array(want, np.float32))
    assert not np.array_equal(want, x.sum(axis=1, dtype=np.float32) / np.float32(k))   # the order does show

    z = rng.normal(0, 4, 1000).astype(np.float32)
    mem = _mem(z, np.float32)
    C.softmax(SimpleNamespace(fields={"in": IN, "out": OUT, "channels": z.size}), mem, None)
    m = max(C.FLT_MIN, z.max())
    e = np.exp(z - m).astype(np.float32)
    total = np.float32(0)
    for v in e:
        total = np.float32(total + v)
    got = mem[OUT:OUT + 4 * z.size].view(np.float32)
    np.testing.assert_allclose(got, e / total, rtol=3e-7)     # the host's expf may differ from numpy's by an ulp
    assert abs(float(got.sum(dtype=np.float64)) - 1) < 1e-5
