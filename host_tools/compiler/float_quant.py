"""A float tflite with convolutions: its KPU part in TFLite's int8 form, from calibrated ranges (compile --dataset).

What ncc did (nncase v0.1.0-rc5, NnCase.Cli/Program.cs and the K210 layer converters): `--inference-type float`
ran none of the K210 transforms and took no dataset, and no V3 layer converts a float Conv2d, so only vector models
(its iris example) compiled that way; float_lower.py does the same. A conv model went through the uint8 inference
type: `--dataset` images calibrate every tensor's range, the convs become K210_CONV layers, and with `--float-fc`
the dense layers stay float FULLY_CONNECTED on the CPU behind a DEQUANTIZE. That mixed kmodel is what this builds:
- the tensors next to a conv (its input and output, a PAD in front of it, the activation ops and pools that fold
  into it) become uint8 as TFLite's post-training quantization makes them: per-tensor asymmetric from the calibrated
  min/max (always including 0), per-channel symmetric int8 weights, int32 biases at input scale x weight scale;
  the camera byte is the input (scale 1/255, or --input-mean/--input-std's);
- everything else keeps its float32 tensors and weights: lowering then puts DEQUANTIZE where a uint8 map meets a
  CPU layer and QUANTIZE (+ upload) where a float tensor meets a conv, and the outputs are float32.
The result goes through the same lowering, planner, writer and envelope check as an int8 tflite.
"""
from dataclasses import replace

import numpy as np

from host_tools import framing as F
from host_tools.compiler import calibrate
from host_tools.compiler.errors import CompileError
from host_tools.compiler.tflite_graph import Graph
from host_tools.k210 import rules as R

CONVS = ("CONV_2D", "DEPTHWISE_CONV_2D")
ACTIVATIONS = ("RELU", "RELU6", "LEAKY_RELU")
SAME_AS_INPUT = ("PAD", "MAX_POOL_2D", "AVERAGE_POOL_2D")     # TFLite gives these their input's quantization
INPUT_CAMERA = (1.0 / 255.0, 0)       # (scale, zero byte): the camera byte b is the input b / 255
PLACEHOLDER_RANGE = (-1.0, 1.0)       # before calibration: enough to lower the model and find what it cannot run


def needs_calibration(graph: Graph) -> bool:
    """A float image model: one float32 [1, H, W, C] input and no quantized tensor anywhere."""
    if len(graph.inputs) != 1:
        return False
    t = graph.tensors[graph.inputs[0]]
    return (t.dtype == "float32" and len(t.shape) == 4 and not graph.calibrated
            and not any(x.dtype in ("int8", "uint8") for x in graph.tensors))


def kpu_tensors(graph: Graph) -> set:
    """The activation tensors that live as bytes: the input (the camera's), each conv's input and output, what a
    PAD in front of a conv reads, and what an activation op or pool makes of such a tensor."""
    q = {graph.inputs[0]}
    for op in graph.ops:
        if op.kind in CONVS:
            q.update((op.inputs[0], op.outputs[0]))
    for op in reversed(graph.ops):
        if op.kind == "PAD" and op.outputs[0] in q:
            q.add(op.inputs[0])
    for op in graph.ops:
        if op.kind in ACTIVATIONS + SAME_AS_INPUT and op.inputs[0] in q:
            q.add(op.outputs[0])
    return q


def activation_quant(lo: float, hi: float) -> tuple:
    """(scale, int8 zero point) of a range, as TFLite's calibrator: widened to hold 0, the zero point nudged to an
    integer so 0 is exact."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if not np.isfinite(hi - lo) or hi - lo <= 0:
        lo, hi = 0.0, 1.0            # a tensor that was 0 on every image: any scale represents it
    scale = (hi - lo) / 255.0
    return scale, int(np.clip(np.round(-128.0 - lo / scale), -128, 127))


def _round(x):
    return np.sign(x) * np.floor(np.abs(x) + 0.5)      # half away from zero, as TFLite's std::round


def quantize(graph: Graph, ranges: dict = None) -> Graph:
    """The graph with its KPU tensors quantized (ranges: {tensor index: (min, max)}; None: placeholders, for
    finding what the model cannot run before any image is read)."""
    src = graph.source
    tensors = list(graph.tensors)
    scale, zero = graph.camera or INPUT_CAMERA
    q = kpu_tensors(graph)
    params = {graph.inputs[0]: (scale, zero - 128)}
    for op in graph.ops:
        for t in op.outputs:
            if t in q and t not in params:
                if op.kind in SAME_AS_INPUT and op.inputs[0] in params:
                    params[t] = params[op.inputs[0]]
                else:
                    params[t] = activation_quant(*(ranges[t] if ranges is not None else PLACEHOLDER_RANGE))
    for t, (s, z) in params.items():
        tensors[t] = replace(tensors[t], dtype="int8", scale=np.array([s]), zero_point=np.array([z], np.int64))
    ops = []
    for op in graph.ops:
        if op.kind in CONVS:
            op = replace(op, inputs=list(op.inputs))
            _quantize_conv(graph, op, tensors, params[op.inputs[0]][0], src)
        ops.append(op)
    return replace(graph, tensors=tensors, ops=ops, camera=(scale, zero), calibrated=True)


def _quantize_conv(graph, op, tensors, sx, src):
    """Per-channel symmetric int8 weights and their int32 bias, as TFLite quantizes a conv."""
    w = tensors[op.inputs[1]]
    if w.data is None or w.dtype not in ("float32", "int8"):
        raise CompileError("weights %r are not constant float32" % w.name, src, op.index, op.kind, R.INT8)
    if w.dtype == "float32":         # a weight tensor two convs share is quantized once
        axis = 3 if op.kind == "DEPTHWISE_CONV_2D" else 0
        data = np.moveaxis(w.data.astype(np.float64), axis, 0)
        amax = np.abs(data.reshape(data.shape[0], -1)).max(axis=1)
        sw = np.where(amax > 0, amax / 127.0, 1.0)
        wq = np.clip(_round(data / sw.reshape((-1,) + (1,) * (data.ndim - 1))), -127, 127)
        tensors[w.index] = replace(w, dtype="int8", data=np.moveaxis(wq, 0, axis).astype(np.int8), scale=sw,
                                   zero_point=np.zeros(len(sw), np.int64))
    sw = tensors[w.index].scale
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        b = tensors[op.inputs[2]]
        if b.dtype == "int32":       # one constant (zeros, say) the converter gave two convs: this conv's own copy
            b = replace(graph.tensors[b.index], index=len(tensors))
            tensors.append(b)
            op.inputs[2] = b.index
        if b.data is None or b.dtype != "float32":
            raise CompileError("bias %r is not a constant float32" % b.name, src, op.index, op.kind, R.INT8)
        bq = _round(b.data.astype(np.float64) / (sx * sw))
        if np.abs(bq).max(initial=0) >= 2 ** 31:
            raise CompileError("bias %r does not fit int32 at input scale x weight scale" % b.name, src, op.index,
                               op.kind, R.INT8)
        tensors[b.index] = replace(b, dtype="int32", data=bq.astype(np.int32), scale=sx * sw,
                                   zero_point=np.zeros(len(sw), np.int64))


def calibrated(graph: Graph, tflite_bytes: bytes, dataset, framing=F.DEFAULT) -> Graph:
    """quantize() on the ranges the images under `dataset` give (calibrate.py)."""
    _, h, w, c = graph.tensors[graph.inputs[0]].shape
    camera = graph.camera or INPUT_CAMERA
    if c not in (1, 3):
        return quantize(graph)       # not a camera image: lowering refuses the input and says why
    x = calibrate.images(dataset, graph.source, w, h, c, framing)
    measured = sorted(kpu_tensors(graph) - {graph.inputs[0]})
    return quantize(replace(graph, camera=camera), calibrate.ranges(tflite_bytes, x, camera, measured, graph.source))
