"""`compile --input-mean M --input-std S`: a model trained on x = (pixel / 255 - M) / S takes the camera byte.

As ncc's options of the same names: the input's range becomes [(0 - M) / S, (1 - M) / S] over the 256 camera
bytes, so byte b stands for x = (b - Z) / (255 S) with Z = round(255 M) (ncc rounds the same zero point). The
tflite's input quantization is replaced by that one and each conv that reads the input gets its int32 bias
rescaled to the new input scale; the multiplier follows from the scales in lowering. The KPU's padding byte is
the new zero point, i.e. x = 0 as TensorFlow pads. Nothing else changes: the arithmetic absorbs the normalization.
"""
from dataclasses import replace

import numpy as np

from host_tools.compiler.errors import CompileError
from host_tools.compiler.tflite_graph import Graph
from host_tools.k210 import rules as R

CONVS = ("CONV_2D", "DEPTHWISE_CONV_2D")


def camera_quant(mean: float, std: float):
    """(scale, zero point as a byte) of the input a camera byte gives for this normalization."""
    return 1.0 / (255.0 * std), int(round(255.0 * mean))


def _check(mean, std, src):
    if not std > 0:
        raise CompileError("--input-std %g: must be > 0" % std, src, rule=R.INPUT_QUANT)
    if not 0 <= mean <= 1:
        raise CompileError("--input-mean %g: must be in [0, 1] (a mean of pixel / 255)" % mean, src,
                           rule=R.INPUT_QUANT)


def camera(graph: Graph, mean: float, std: float) -> Graph:
    """A float model's graph told what the camera byte stands for (float_quant quantizes its input so)."""
    _check(mean, std, graph.source)
    return replace(graph, camera=camera_quant(mean, std))


def absorb(graph: Graph, mean: float, std: float) -> Graph:
    """A copy of the graph whose input is the camera byte of a model trained on (pixel / 255 - mean) / std."""
    src = graph.source
    _check(mean, std, src)
    if len(graph.inputs) != 1:
        raise CompileError("has %d inputs; a kmodel takes one camera image" % len(graph.inputs), src, rule=R.INPUT)
    tensors = list(graph.tensors)
    t = tensors[graph.inputs[0]]
    if t.dtype != "int8" or not t.quantized or len(t.scale) != 1:
        raise CompileError("--input-mean/--input-std: input %r is %s; they apply to a fully-integer int8 tflite "
                           "(quantize with inference_input_type=int8)" % (t.name, t.dtype), src, rule=R.INPUT_QUANT)
    scale, zero = camera_quant(mean, std)
    old = float(t.scale[0])
    new_q = dict(scale=np.array([scale]), zero_point=np.array([zero - 128], np.int64))
    fed = [t.index]
    while fed:
        i = fed.pop()
        tensors[i] = replace(tensors[i], **new_q)
        for op in graph.consumers(i):
            if op.kind == "PAD" and op.inputs[0] == i:
                fed.append(op.outputs[0])          # PAD keeps its input's quantization
            elif op.kind in CONVS and op.inputs[0] == i:
                if len(op.inputs) > 2 and op.inputs[2] >= 0:
                    b = tensors[op.inputs[2]]
                    if len(graph.consumers(b.index)) != 1 or b.data is None:
                        raise CompileError("--input-mean/--input-std: the bias %r is shared or not constant"
                                           % b.name, src, op.index, op.kind, R.INT8)
                    data = np.round(b.data.astype(np.float64) * (old / scale))
                    if np.abs(data).max(initial=0) >= 2 ** 31:
                        raise CompileError("--input-mean/--input-std: the bias %r no longer fits int32 at the "
                                           "camera's input scale" % b.name, src, op.index, op.kind, R.INT8)
                    tensors[b.index] = replace(b, data=data.astype(np.int32),
                                               scale=None if b.scale is None else b.scale * (scale / old))
            else:
                raise CompileError("--input-mean/--input-std: the input feeds %s; the normalization folds only into "
                                   "the convs that read the input (PAD before them included)" % op.kind, src,
                                   op.index, op.kind, R.INPUT_QUANT)
    return replace(graph, tensors=tensors, camera=(scale, zero))
