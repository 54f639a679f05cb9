"""A float tflite as a kmodel V3 of float CPU layers, as ncc's `--inference-type float` wrote nncase's iris example.

The V3 runtime takes a float input only when the first layer is FULLY_CONNECTED (kmodel-v3-facts.md), so a float
model here is a vector model: FULLY_CONNECTED layers (their fused linear/ReLU/ReLU6 in the layer's act field),
SOFTMAX, LOGISTIC, and reshapes between vectors. Float convolutions would need the KPU's uint8 arithmetic, which
needs calibration: such a model is refused with the command that quantizes it. Weights and biases go in as float32
exactly as the tflite holds them.
"""
import numpy as np

from host_tools.compiler import ir
from host_tools.compiler.errors import CompileError
from host_tools.compiler.tflite_graph import Graph
from host_tools.k210 import rules as R

FC_ACT = {0: 0, 1: 1, 3: 2}          # tflite fused activation -> kmodel FULLY_CONNECTED act (linear, relu, relu6)
RESHAPES = ("RESHAPE", "SQUEEZE", "EXPAND_DIMS")
QUANTIZE_HINT = "quantize it first (python -m host_tools quantize MODEL.keras --data DIR) so the KPU runs it"


def is_float(graph: Graph) -> bool:
    """A float vector model: one float32 input [1, N] (or [1, 1, .., N]) and no int8 tensor anywhere. Image models,
    float or not, go to lower.py (a float one is refused there: it needs quantizing for the KPU)."""
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
            w, b = graph.tensors[op.inputs[1]], (graph.tensors[op.inputs[2]] if len(op.inputs) > 2
                                                 and op.inputs[2] >= 0 else None)
            if w.data is None or w.dtype != "float32" or w.data.ndim != 2 or w.data.shape[1] != src.count:
                fail(op, "weights %r must be constant float32 [out, %d]" % (w.name, src.count), R.OP)
            act = op.options.get("activation", 0)
            if act not in FC_ACT:
                fail(op, "fused activation %d: the FULLY_CONNECTED layer applies linear, ReLU or ReLU6" % act,
                     R.ACTIVATION)
            bias = b.data.astype(np.float32) if b is not None and b.data is not None \
                else np.zeros(w.data.shape[0], np.float32)
            layers.append(ir.CpuLayer(ir.FULLY_CONNECTED, op.index, op.kind, [src], out,
                                      {"weights": w.data.astype(np.float32), "bias": bias, "act": FC_ACT[act]}))
        elif op.kind == "SOFTMAX" and op.options.get("beta", 1.0) == 1.0:
            layers.append(ir.CpuLayer(ir.SOFTMAX, op.index, op.kind, [src], out, {"channels": count}))
        elif op.kind == "LOGISTIC":
            layers.append(ir.CpuLayer(ir.LOGISTIC, op.index, op.kind, [src], out, {"channels": count}))
        elif op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "AVERAGE_POOL_2D"):
            fail(op, "a float %s: the KPU computes uint8 maps; %s" % (op.kind, QUANTIZE_HINT), R.INT8)
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
