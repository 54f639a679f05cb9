"""A tflite model as the checker's Layer list (one entry per operator, same index; -1 is the input).

The flatbuffer is read with the compiler's reader (host_tools.compiler.tflite_graph), the one tflite parser here.
"""
from host_tools.compiler.tflite_graph import parse
from host_tools.pipeline.checker import Layer

_FUSED = {0: "linear", 1: "relu", 2: "relu_n1_to_1", 3: "relu6", 4: "tanh", 5: "sign_bit"}
_NOOP = ("QUANTIZE", "DEQUANTIZE")
_ACTS = {"RELU": "relu", "RELU6": "relu6", "LEAKY_RELU": "leaky", "LOGISTIC": "sigmoid", "TANH": "tanh",
         "HARD_SWISH": "hard_swish", "SOFTMAX": "softmax", "ELU": "elu", "GELU": "gelu"}


def _map(shape):
    """(1, h, w, c) -> (h, w, c); (1, n) -> (n,)."""
    return tuple(int(s) for s in shape[1:]) if len(shape) > 1 else tuple(int(s) for s in shape)


def layers_of(data, source="<tflite>"):
    g = parse(bytes(data), source)
    t = g.tensors
    producer = {o: op for op in g.ops for o in op.outputs}
    inp = t[g.inputs[0]]
    out = [Layer(-1, inp.name, "input", _map(inp.shape), _map(inp.shape), kind="input")]
    for op in g.ops:
        x = t[op.inputs[0]] if op.inputs and op.inputs[0] >= 0 else None
        y = t[op.outputs[0]]
        # the converter joins the names of every op it fused with ';': the first one is the layer's
        l = Layer(op.index, y.name.split(";")[0], "other", _map(x.shape) if x is not None else (), _map(y.shape), kind=op.kind)
        o = op.options
        if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            w = t[op.inputs[1]].shape
            l.op = "conv" if op.kind == "CONV_2D" else "depthwise"
            l.kernel, l.stride, l.padding = (int(w[1]), int(w[2])), tuple(o["stride"]), o["padding"]
            l.activation = _FUSED.get(o["activation"], "fused%d" % o["activation"])
            if tuple(o.get("dilation", (1, 1))) != (1, 1):
                l.op, l.kind = "other", op.kind + " with dilation"
            prev = producer.get(op.inputs[0])
            if prev is not None and prev.kind in ("PAD", "PADV2"):
                p = t[prev.inputs[1]].data
                if p is not None:
                    l.pads = ((int(p[1][0]), int(p[1][1])), (int(p[2][0]), int(p[2][1])))
                    l.pad_name = t[prev.outputs[0]].name
        elif op.kind in ("PAD", "PADV2"):
            l.op = "pad"
        elif op.kind in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
            l.op, l.pool = "pool", "max" if op.kind == "MAX_POOL_2D" else "avg"
            l.kernel, l.stride, l.padding = tuple(o["filter"]), tuple(o["stride"]), o["padding"]
        elif op.kind == "MEAN" and len(l.in_shape) == 3:
            l.op = "gap"
        elif op.kind == "REDUCE_MAX" and len(l.in_shape) == 3:
            l.op, l.pool = "pool", "global_max"
        elif op.kind in _ACTS:
            l.op, l.activation = "act", _ACTS[op.kind]
        elif op.kind == "PRELU":
            l.op = "prelu"
        elif op.kind == "FULLY_CONNECTED":
            l.op = "dense"
        elif op.kind in ("RESHAPE", "SQUEEZE"):
            l.op = "reshape"
        elif op.kind == "CONCATENATION":
            l.op = "concat"
        elif op.kind in _NOOP:
            l.op = "noop"
        out.append(l)
    return out
