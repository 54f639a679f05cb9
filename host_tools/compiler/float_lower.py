"""Float CPU layers of kmodel V3: a float vector model whole, as ncc's `--inference-type float` wrote nncase's iris
example, and the CPU side of a calibrated float image model (float_quant.py).

The V3 runtime takes a float input only when the first layer is FULLY_CONNECTED (kmodel-v3-facts.md), so a float
model without convolutions is a vector model: FULLY_CONNECTED layers (their fused linear/ReLU/ReLU6 in the layer's
act field), SOFTMAX, LOGISTIC, and reshapes between vectors, weights and biases as float32 exactly as the tflite
holds them. A float image model runs its convs on the KPU (float_quant.py quantizes them from `compile --dataset`)
and lower.py's walk does the rest; only its dense layers differ from an int8 tflite's: they stay float
FULLY_CONNECTED layers with the tflite's own weights (ncc's --float-fc), and an op with no uint8 neighbour to run
next to names itself. V3 has no float conv, float max pool or float activation layer for the CPU.
"""
import numpy as np

from host_tools.compiler import float_quant, ir
from host_tools.compiler import lower as L
from host_tools.compiler.errors import CompileError
from host_tools.compiler.tflite_graph import Graph
from host_tools.k210 import rules as R

FC_ACT = {0: 0, 1: 1, 3: 2}          # tflite fused activation -> kmodel FULLY_CONNECTED act (linear, relu, relu6)
RESHAPES = ("RESHAPE", "SQUEEZE", "EXPAND_DIMS")
NEEDS_DATASET = ("a float image model: its convs run on the KPU in uint8, whose ranges come from calibration "
                 "images: give compile --dataset DIR (images as the camera sees them), or quantize the Keras model "
                 "(python -m host_tools quantize MODEL.keras --data DIR)")


def fc_params(graph: Graph, op, n_in: int, fail) -> dict:
    """A float FULLY_CONNECTED's body: the tflite's float32 weights [out, n_in], bias, fused activation; anything
    else goes to fail(message, rule)."""
    w = graph.tensors[op.inputs[1]]
    b = graph.tensors[op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    if w.data is None or w.dtype != "float32" or w.data.ndim != 2 or w.data.shape[1] != n_in:
        fail("weights %r must be constant float32 [out, %d]" % (w.name, n_in), R.OP)
    act = op.options.get("activation", 0)
    if act not in FC_ACT:
        fail("fused activation %d: the FULLY_CONNECTED layer applies linear, ReLU or ReLU6" % act, R.ACTIVATION)
    bias = b.data.astype(np.float32) if b is not None and b.data is not None \
        else np.zeros(w.data.shape[0], np.float32)
    return {"weights": w.data.astype(np.float32), "bias": bias, "act": FC_ACT[act]}


def is_float(graph: Graph) -> bool:
    """A float vector model: one float32 input [1, N] (or [1, 1, .., N]) and no int8 tensor anywhere. A float image
    model goes to float_quant, then lower_calibrated."""
    if len(graph.inputs) != 1:
        return False
    t = graph.tensors[graph.inputs[0]]
    if t.dtype != "float32" or len(t.shape) < 2 or any(d != 1 for d in t.shape[:-1]):
        return False
    return not any(x.dtype in ("int8", "uint8") for x in graph.tensors)


def lower(graph: Graph) -> ir.Program:
    """The program of a float vector model; CompileError naming op and rule for anything else."""
    t_in = graph.tensors[graph.inputs[0]]
    n = int(t_in.shape[-1])
    inp = ir.Value(t_in.name, (n, 1, 1), "f32", in_main=True)
    env = {t_in.index: inp}
    layers = []

    def fail(op, message, rule):
        raise CompileError(message, graph.source, op.index, op.kind, rule)

    for op in graph.ops:
        src = env.get(op.inputs[0]) if op.inputs else None
        y = graph.tensors[op.outputs[0]]
        if src is None:
            fail(op, "input tensor %r is not produced by an op the compiler handled"
                 % graph.tensors[op.inputs[0]].name, R.GRAPH)
        count = int(np.prod(y.shape)) if y.shape else 1
        if op.kind in RESHAPES:
            if count != src.count:
                fail(op, "reshape from %d to %d values" % (src.count, count), R.GRAPH)
            env[op.outputs[0]] = src
            continue
        out = ir.Value(y.name, (count, 1, 1), "f32", in_main=True)
        if op.kind == "FULLY_CONNECTED":
            params = fc_params(graph, op, src.count, lambda message, rule: fail(op, message, rule))
            layers.append(ir.CpuLayer(ir.FULLY_CONNECTED, op.index, op.kind, [src], out, params))
        elif op.kind == "SOFTMAX" and op.options.get("beta", 1.0) == 1.0:
            layers.append(ir.CpuLayer(ir.SOFTMAX, op.index, op.kind, [src], out, {"channels": count}))
        elif op.kind == "LOGISTIC":
            layers.append(ir.CpuLayer(ir.LOGISTIC, op.index, op.kind, [src], out, {"channels": count}))
        else:
            fail(op, "op %s has no float kmodel V3 layer the stock runtime runs (FULLY_CONNECTED, SOFTMAX, "
                     "LOGISTIC)" % op.kind, R.OP)
        env[op.outputs[0]] = out
    if not layers or layers[0].type != ir.FULLY_CONNECTED:
        raise CompileError("the first layer of a float model must be FULLY_CONNECTED (the V3 runtime takes float "
                           "input only there)", graph.source, rule=R.FIRST_LAYER)
    outputs = []
    for i in graph.outputs:
        if i not in env or env[i] is inp:
            raise CompileError("output %r is not computed by any layer" % graph.tensors[i].name, graph.source,
                               rule=R.GRAPH)
        outputs.append(env[i])
    return ir.Program(graph.source, inp, layers, outputs)


class _MixedLowering(L._Lowering):
    """lower.py's walk over a calibrated float image model: dense layers stay float; what cannot sit next to a conv
    is refused as a float layer V3 lacks."""

    def op_fully_connected(self, op):
        if self.tensor(op.inputs[1]).dtype != "float32":
            return super().op_fully_connected(op)
        e = self.env.get(op.inputs[0])
        flat = isinstance(e, L.Flat)               # a map's HWC flattening: folded into the weights' order
        v = self.as_float(e.value if flat else self.get(op.inputs[0]))
        c, h, w = v.shape
        params = fc_params(self.g, op, c * h * w, self.fail)
        if flat and h * w > 1:
            n_out = params["weights"].shape[0]
            params["weights"] = np.ascontiguousarray(
                params["weights"].reshape(n_out, h, w, c).transpose(0, 3, 1, 2).reshape(n_out, -1))
        y_t = self.tensor(op.outputs[0])
        out = ir.Value(y_t.name, (params["weights"].shape[0], 1, 1), "f32", in_main=True)
        self.cpu(ir.FULLY_CONNECTED, [v], out, **params)
        self.env[op.outputs[0]] = out

    def need_int8(self, t, what):
        if t.dtype == "float32":       # not next to a conv (float_quant.kpu_tensors): a float layer V3 lacks
            self.fail("%s tensor %r is float32 here (no conv before it), and kmodel V3 has no float %s layer for "
                      "the CPU" % (what, t.name, self.op.kind), R.OP)
        super().need_int8(t, what)

    def conv(self, op, depthwise):
        try:
            super().conv(op, depthwise)
        except CompileError as e:
            raise CompileError(e.message + " (kmodel V3 has no float conv layer for the CPU)", e.source, e.op_index,
                               e.op, e.rule) from None


def lower_calibrated(graph: Graph, problems: list = None) -> ir.Program:
    """The program of a float image model float_quant has quantized (problems: as lower.lower)."""
    return _MixedLowering(graph, problems).run()


def refuse_uncalibrated(graph: Graph, problems: list = None):
    """A float image model without calibration images: what it cannot run (lowered on placeholder ranges), then the
    missing --dataset. Raises the first refusal, or appends them all to problems."""
    found = []
    try:
        lower_calibrated(float_quant.quantize(graph), found)
    except CompileError as e:          # weights it cannot quantize (float16 behind a DEQUANTIZE, say)
        found.append(e)
    found.append(CompileError(NEEDS_DATASET, graph.source, rule=R.CALIBRATION))
    if problems is None:
        raise found[0]
    problems.extend(found)
