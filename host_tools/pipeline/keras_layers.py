"""A Keras model as the checker's Layer list (one entry per model.layers item, same index)."""
from host_tools.pipeline.checker import Layer

_NOOP = ("InputLayer", "Dropout", "BatchNormalization", "SpatialDropout2D", "GaussianNoise", "Identity")
_ACT_NAMES = {"relu": "relu", "relu6": "relu6", "linear": "linear", "softmax": "softmax",
              "leaky_relu": "leaky", "sigmoid": "sigmoid", "tanh": "tanh", "swish": "swish", "silu": "swish",
              "hard_sigmoid": "hard_sigmoid", "elu": "elu", "selu": "selu", "gelu": "gelu"}


def _shape(t):
    s = tuple(t.shape[1:])
    return s


def _act_name(fn):
    name = getattr(fn, "__name__", str(fn))
    return _ACT_NAMES.get(name, name)


def _producer(tensor):
    hist = getattr(tensor, "_keras_history", None)
    return hist[0] if hist else None


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def layers_of(model):
    out = []
    if not model.layers or type(model.layers[0]).__name__ != "InputLayer":
        # a Sequential model keeps its input out of model.layers: report it as index -1
        shape = _shape(model.inputs[0])
        out.append(Layer(-1, "input", "input", shape, shape, kind="InputLayer"))
    for i, layer in enumerate(model.layers):
        kind = type(layer).__name__
        out_shape = _shape(layer.output)
        ins = [] if kind == "InputLayer" else layer.input
        ins = ins if isinstance(ins, (list, tuple)) else [ins]
        in_shape = _shape(ins[0]) if ins else out_shape
        l = Layer(i, layer.name, "other", in_shape, out_shape, kind=kind)
        if kind == "InputLayer":
            l.op, l.in_shape = "input", out_shape
        elif kind in _NOOP:
            l.op = "noop"
        elif kind in ("Conv2D", "DepthwiseConv2D", "SeparableConv2D"):
            l.op = "conv" if kind == "Conv2D" else "depthwise"
            l.kernel, l.stride = _pair(layer.kernel_size), _pair(layer.strides)
            l.padding = layer.padding
            l.activation = _act_name(layer.activation)
            if _pair(getattr(layer, "dilation_rate", 1)) != (1, 1):
                l.op, l.kind = "other", kind + " with dilation"
            prod = _producer(ins[0])
            if prod is not None and type(prod).__name__ == "ZeroPadding2D":
                l.pads = tuple(tuple(p) for p in prod.padding)
                l.pad_name = prod.name
        elif kind == "ZeroPadding2D":
            l.op, l.pads = "pad", tuple(tuple(p) for p in layer.padding)
        elif kind in ("MaxPooling2D", "AveragePooling2D"):
            l.op, l.pool = "pool", "max" if kind.startswith("Max") else "avg"
            l.kernel, l.stride, l.padding = _pair(layer.pool_size), _pair(layer.strides), layer.padding
        elif kind == "GlobalAveragePooling2D":
            l.op = "gap"
        elif kind == "GlobalMaxPooling2D":
            l.op, l.pool = "pool", "global_max"
        elif kind in ("ReLU", "LeakyReLU", "Activation", "Softmax"):
            l.op = "act"
            if kind == "ReLU":
                mv = layer.max_value
                l.activation = "relu6" if mv is not None and float(mv) == 6.0 else \
                    "relu" if mv is None and not float(getattr(layer, "negative_slope", 0) or 0) else "relu(custom)"
            elif kind == "LeakyReLU":
                l.activation = "leaky"
            elif kind == "Softmax":
                l.activation = "softmax"
            else:
                l.activation = _act_name(layer.activation)
        elif kind == "PReLU":
            l.op = "prelu"
        elif kind == "Dense":
            l.op = "dense"
            l.activation = _act_name(layer.activation)
            if l.activation not in ("linear", "relu", "softmax"):
                l.op, l.kind = "other", "Dense with %s activation" % l.activation
        elif kind in ("Flatten", "Reshape"):
            l.op = "reshape"
        elif kind == "Concatenate":
            l.op = "concat"
        out.append(l)
    return out
