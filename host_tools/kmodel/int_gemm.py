"""Exact conv sums on a CPU integer GEMM, on onnxruntime (MLAS): uint8 columns x uint8 weights -> int32.

For a layer with weights W (k, m) it returns (m + 1, n) int32 channel planes: rows 0..m-1 the sums with the
weights less `offset`, row m the window sum SX (a column of ones rides along with the weights). The input is
either the (k, n) planar map of a 1x1 conv, transposed inside the graph (ORT's transpose beats ours), or the
(n, k) pixels-major columns of a 3x3 conv.

uint8 weights run as MatMulInteger. Where this CPU's uint8 x int8 kernel never saturates (VNNI's vpdpbusd
accumulates straight into int32; AVX2's vpmaddubsw saturates pairs at 16 bits), found once per process by a
worst-case probe, the weights go in as w - 128, 2-3x faster, and the caller adds 128 * SX back. Otherwise
uint8 x uint8, which widens to 16 bits and is exact on every CPU. 16-bit weights (wider than MLAS takes) use a
float64 BLAS GEMM: every sum stays below 2^53, so it is exact too.
"""
import numpy as np

_signed_ok = None


def _session(w: np.ndarray, planar: bool, transpose_out: bool = True):
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    k, m = w.shape
    nodes = []
    x = "x"
    if planar:
        nodes.append(helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0]))
        x = "xt"
    nodes.append(helper.make_node("MatMulInteger", [x, "w"], ["g" if transpose_out else "y"]))
    if transpose_out:
        nodes.append(helper.make_node("Transpose", ["g"], ["y"], perm=[1, 0]))
    graph = helper.make_graph(
        nodes, "conv_sums",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [k, "n"] if planar else ["n", k])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [m, "n"] if transpose_out else ["n", m])],
        [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1    # like LiteRT at one thread, and no spinning
    opts.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def signed_weights_exact() -> bool:
    """Whether uint8 x int8 MatMulInteger is exact here: 255 * -128 and 255 * 127 in every pair, sums checked."""
    global _signed_ok
    if _signed_ok is None:
        w = np.tile(np.array([[-128, 127], [-128, 127]], np.int8), (32, 8))       # (64, 16)
        x = np.full((4, 64), 255, np.uint8)
        x[1, ::2] = 0
        want = x.astype(np.int64) @ w.astype(np.int64)
        got = _session(w, planar=False, transpose_out=False).run(None, {"x": x})[0]
        _signed_ok = bool(np.array_equal(got, want))
    return _signed_ok


class ExactGemm:
    """The conv sums of one layer, built once: `offset` is what the caller adds times SX (0 or 128)."""

    def __init__(self, w: np.ndarray, planar: bool):
        self.planar = planar
        ones = np.ones((w.shape[0], 1), np.int64)
        if w.dtype == np.uint8:
            self.float64 = None
            self.offset = 128 if signed_weights_exact() else 0
            wx = np.concatenate([w.astype(np.int64) - self.offset, ones], axis=1)
            self.sess = _session(wx.astype(np.int8 if self.offset else np.uint8), planar)
        else:
            self.offset, self.sess = 0, None
            self.float64 = np.ascontiguousarray(np.concatenate([w, ones], axis=1).T, np.float64)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.sess is not None:
            return self.sess.run(None, {"x": x})[0]
        cols = x if self.planar else x.T
        return (self.float64 @ cols.astype(np.float64)).astype(np.int64)
