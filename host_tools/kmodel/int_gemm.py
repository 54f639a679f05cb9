"""Exact conv sums on a CPU integer GEMM, on onnxruntime (MLAS): uint8 weights x uint8 or int8 columns -> int32.

For a layer with weights W (k, m) and columns X (k, n) (the planar map of a 1x1 conv, or the im2col columns of
a 3x3 conv, both channels-major) it returns G = [W | 1]^T X' as (m + 1, n) int32 planes, no transposes: a row
of ones rides along with the weights and gives the window sums. X' = X - x_offset; the caller gets back
S = G[:m] + x_offset * SW (SW the per-channel weight sums) and SX = G[m] + x_offset * k.

Where this CPU's uint8 x int8 kernel never saturates (VNNI's vpdpbusd accumulates straight into int32; AVX2's
vpmaddubsw saturates pairs at 16 bits), found once per process by a worst-case probe, the columns go in as
x - 128 (int8; the caller flips their top bit, `flip`), 2x faster. Otherwise uint8 x uint8, which widens to
16 bits and is exact on every CPU. The environment variable MAIXKIT_GEMM=signed or =unsigned forces one way
(signed on a CPU whose probe fails gives wrong sums), so the tests run either path on any CPU.
16-bit weights (wider than MLAS takes) use a float64 BLAS GEMM: every sum stays below 2^53, so it is exact too.
"""
import os

import numpy as np

GEMM_ENV = "MAIXKIT_GEMM"
_signed_ok = None


def _session(a: np.ndarray, signed: bool, const_right: bool = False):
    """A session computing a @ x for the constant uint8 a (m, k) and an input x (k, n), uint8 or int8; with
    const_right, x @ a for an input x (n, m) uint8 and the constant int8 a (m, k) (prepacked once by MLAS)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    m, k = a.shape
    if const_right:
        node, xs, ys = helper.make_node("MatMulInteger", ["x", "a"], ["y"]), ["n", m], ["n", k]
    else:
        node, xs, ys = helper.make_node("MatMulInteger", ["a", "x"], ["y"]), [k, "n"], [m, "n"]
    graph = helper.make_graph(
        [node], "conv_sums",
        [helper.make_tensor_value_info("x", TensorProto.INT8 if signed else TensorProto.UINT8, xs)],
        [helper.make_tensor_value_info("y", TensorProto.INT32, ys)],
        [numpy_helper.from_array(a, "a")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1    # like LiteRT at one thread, and no spinning
    opts.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def signed_columns_exact() -> bool:
    """Whether the GEMMs take uint8 x int8: as MAIXKIT_GEMM forces it, else where that MatMulInteger is exact
    here, both ways round (int8 columns as input, or int8 weights as the prepacked constant): 255 * -128 and
    255 * 127 in every pair, sums checked."""
    global _signed_ok
    forced = os.environ.get(GEMM_ENV, "")
    if forced:
        if forced not in ("signed", "unsigned"):
            raise ValueError("%s=%r: expected signed or unsigned" % (GEMM_ENV, forced))
        return forced == "signed"
    if _signed_ok is None:
        a = np.full((4, 64), 255, np.uint8)
        a[1, ::2] = 0
        x = np.tile(np.array([[-128, 127], [-128, 127]], np.int8), (32, 8))       # (64, 16)
        want = a.astype(np.int64) @ x.astype(np.int64)
        got = _session(a, signed=True).run(None, {"x": x})[0]
        got_t = _session(x, signed=False, const_right=True).run(None, {"x": a})[0]
        _signed_ok = bool(np.array_equal(got, want) and np.array_equal(got_t, want))
    return _signed_ok


class ExactGemm:
    """The conv sums of one layer, built once. `flip` (0x80 or 0) is what the caller XORs into the uint8 columns,
    `x_offset` (128 or 0) what that subtracted from them."""

    def __init__(self, w: np.ndarray):
        a = np.concatenate([w, np.ones((w.shape[0], 1), w.dtype)], axis=1).T          # (m + 1, k)
        if w.dtype == np.uint8:
            self.float64 = None
            self.x_offset = 128 if signed_columns_exact() else 0
            self.sess = _session(np.ascontiguousarray(a), signed=bool(self.x_offset))
        else:
            self.x_offset, self.sess = 0, None
            self.float64 = np.ascontiguousarray(a, np.float64)
        self.flip = self.x_offset

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """G for the columns x (k, n) as the caller prepared them (uint8, top bit flipped where flip)."""
        if self.sess is not None:
            return self.sess.run(None, {"x": x.view(np.int8) if self.x_offset else x})[0]
        return (self.float64 @ x.astype(np.float64)).astype(np.int64)


class ExactGemmT:
    """The conv sums of a layer the other way round, for maps with few pixels and many channels: for pixel-major
    columns X^T (n, k) uint8 it returns G^T = X^T (W - w_offset) as (n, m) int32, the weights prepacked once (worth
    it where n is small: the weights are most of the data): int8 (w_offset 128) where signed_columns_exact(), else
    uint8 (w_offset 0). S = G^T + w_offset*SX, SX a pixel's sum of its k inputs (kpu_kernels.finish_gemm_t adds
    it): no ones column rides along here, as MLAS takes 384 or 768 columns faster than 385 or 769 (5-15 %)."""

    def __init__(self, w: np.ndarray):
        self.w_offset = 128 if signed_columns_exact() else 0
        b = w.astype(np.int16) - self.w_offset
        self.sess = _session(b.astype(np.int8 if self.w_offset else np.uint8), signed=False, const_right=True)

    def __call__(self, xt: np.ndarray) -> np.ndarray:
        return self.sess.run(None, {"x": xt})[0]
