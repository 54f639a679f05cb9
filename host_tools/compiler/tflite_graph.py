"""Read a tflite flatbuffer into plain dataclasses: tensors (shape, type, quantization, constant data) and ops.

Only what the lowering needs is decoded. The `tflite` package parses the flatbuffer; nothing here runs it.
"""
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tflite

from host_tools.compiler.errors import CompileError
from host_tools.k210 import rules

_TYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 7: "int16", 9: "int8"}
_NP = {"float32": np.float32, "float16": np.float16, "int32": np.int32, "uint8": np.uint8, "int64": np.int64,
       "int16": np.int16, "int8": np.int8}
_OP_NAMES = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
ACTIVATIONS = {0: "linear", 1: "relu", 3: "relu6"}  # fused_activation_function codes we accept
_PADDING = {0: "same", 1: "valid"}


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple
    dtype: str
    scale: np.ndarray = None        # float64, per tensor (1 value) or per channel
    zero_point: np.ndarray = None   # int64, same length as scale
    data: np.ndarray = None         # constant contents, None for activations

    @property
    def quantized(self) -> bool:
        return self.scale is not None and len(self.scale) > 0


@dataclass
class Op:
    index: int
    kind: str                      # builtin operator name, e.g. "CONV_2D"
    inputs: list                   # tensor indices, -1 where an optional input is absent
    outputs: list
    options: dict = field(default_factory=dict)


@dataclass
class Graph:
    source: str
    tensors: list
    ops: list
    inputs: list
    outputs: list
    camera: tuple = None            # (scale, zero byte) the camera byte gives the input; None: 1/255 and 0
    calibrated: bool = False        # a float model whose KPU tensors float_quant has quantized

    def consumers(self, tensor_index):
        return [op for op in self.ops if tensor_index in op.inputs]


def _options(op, kind, src, index):
    """Decode the builtin options of the ops we lower; other ops keep an empty dict."""
    table = op.BuiltinOptions()
    if table is None:
        return {}
    def opt(cls):
        o = cls()
        o.Init(table.Bytes, table.Pos)
        return o
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        o = opt(tflite.Conv2DOptions if kind == "CONV_2D" else tflite.DepthwiseConv2DOptions)
        d = {"padding": _PADDING[o.Padding()], "stride": (o.StrideH(), o.StrideW()),
             "activation": o.FusedActivationFunction(), "dilation": (o.DilationHFactor(), o.DilationWFactor())}
        if kind == "DEPTHWISE_CONV_2D":
            d["depth_multiplier"] = o.DepthMultiplier()
        return d
    if kind in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        o = opt(tflite.Pool2DOptions)
        return {"padding": _PADDING[o.Padding()], "stride": (o.StrideH(), o.StrideW()),
                "filter": (o.FilterHeight(), o.FilterWidth()), "activation": o.FusedActivationFunction()}
    if kind == "FULLY_CONNECTED":
        o = opt(tflite.FullyConnectedOptions)
        return {"activation": o.FusedActivationFunction(), "weights_format": o.WeightsFormat()}
    if kind == "CONCATENATION":
        o = opt(tflite.ConcatenationOptions)
        return {"axis": o.Axis(), "activation": o.FusedActivationFunction()}
    if kind == "LEAKY_RELU":
        return {"alpha": float(opt(tflite.LeakyReluOptions).Alpha())}
    if kind == "SOFTMAX":
        return {"beta": float(opt(tflite.SoftmaxOptions).Beta())}
    if kind in ("MEAN", "SUM"):
        return {"keep_dims": bool(opt(tflite.ReducerOptions).KeepDims())}
    if kind == "ADD":
        return {"activation": opt(tflite.AddOptions).FusedActivationFunction()}
    return {}


def read(path) -> Graph:
    path = Path(path)
    try:
        buf = path.read_bytes()
    except OSError as e:
        raise CompileError("cannot read: %s" % e.strerror, str(path)) from None
    return parse(buf, str(path))


def parse(buf: bytes, source="<tflite>") -> Graph:
    try:
        return _parse(buf, source)
    except CompileError:
        raise
    except Exception as e:  # a damaged flatbuffer fails anywhere in the generated reader
        raise CompileError("not a readable tflite flatbuffer (%s: %s)" % (type(e).__name__, e), source,
                           rule=rules.FORMAT) from None


def _parse(buf: bytes, source) -> Graph:
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise CompileError("not a tflite flatbuffer (no TFL3 identifier)", source, rule=rules.FORMAT)
    model = tflite.Model.GetRootAsModel(buf, 0)
    if model.SubgraphsLength() != 1:
        raise CompileError("has %d subgraphs; only single-subgraph models compile" % model.SubgraphsLength(),
                           source, rule=rules.FORMAT)
    g = model.Subgraphs(0)
    tensors = []
    for i in range(g.TensorsLength()):
        t = g.Tensors(i)
        dtype = _TYPES.get(t.Type(), "type%d" % t.Type())
        shape = tuple(int(s) for s in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        q = t.Quantization()
        scale = zp = None
        if q is not None and q.ScaleLength():
            scale = q.ScaleAsNumpy().astype(np.float64)
            zp = q.ZeroPointAsNumpy().astype(np.int64) if q.ZeroPointLength() else np.zeros(len(scale), np.int64)
        data = None
        b = model.Buffers(t.Buffer())
        if b is not None and b.DataLength() and dtype in _NP:
            data = np.frombuffer(b.DataAsNumpy().tobytes(), dtype=_NP[dtype]).reshape(shape or ())
        tensors.append(Tensor(i, t.Name().decode("utf-8", "replace"), shape, dtype, scale, zp, data))
    ops = []
    for i in range(g.OperatorsLength()):
        op = g.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        kind = _OP_NAMES.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM")
        ins = [int(x) for x in op.InputsAsNumpy()] if op.InputsLength() else []
        outs = [int(x) for x in op.OutputsAsNumpy()] if op.OutputsLength() else []
        ops.append(Op(i, kind, ins, outs, _options(op, kind, source, i)))
    return Graph(source, tensors, ops, [int(x) for x in g.InputsAsNumpy()], [int(x) for x in g.OutputsAsNumpy()])
