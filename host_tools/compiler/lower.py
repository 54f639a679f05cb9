"""Lower a fully-integer tflite graph to kmodel V3 layers (K210_CONV on the KPU, the stock SDK's CPU layers).

Ops are taken in the tflite order. A conv becomes one K210_CONV; the activation op (ReLU, ReLU6, LeakyReLU) and
the 2x2 / 4x4 pool that follow it alone are folded into that same layer. Stride 2 is the KPU's left-top sampling
pool, which equals TF's VALID conv of a map padded by 1 on every side (Keras ZeroPadding2D((1,1)) + 'valid');
TF SAME padding at stride 2 samples the other phase and is refused. Everything else the stock runtime runs
(global average pool, dense, softmax, flatten, concat, (de)quantize, logistic, CPU pools) becomes a CPU layer;
any other op is refused with its index, op and the id of the host_tools.k210.rules rule it breaks; so is an op the
compiler stumbles on (never a traceback).

The compiler stops at the first refusal. The checker passes a list: each refusal goes there, and each output of
the refused op is replaced by a placeholder conv of the tensor's shape, so the ops after it are checked as they
would be once it is fixed. A program with a refusal is never written.
"""
import math
from dataclasses import dataclass

import numpy as np

from host_tools.compiler import ir
from host_tools.compiler.errors import CompileError
from host_tools.compiler.tflite_graph import ACTIVATIONS, Graph, Tensor
from host_tools.k210 import kpu as hw
from host_tools.k210 import rules as R
from host_tools.k210.arith import POOL_TYPES
from host_tools.k210.firmware import CAMERA_H, CAMERA_W

INPUT_SCALE = 1.0 / 255.0
POOL_KINDS = {"MAX_POOL_2D": "max", "AVERAGE_POOL_2D": "mean"}     # tflite pools the KPU can fold into a conv
MEAN_POOLS = tuple(t for t, (kind, _, _) in POOL_TYPES.items() if kind == "mean")
SAMPLE_LT = hw.SAMPLE_LT
SHAPE_OPS = ("SHAPE", "STRIDED_SLICE", "PACK", "CONCATENATION", "GATHER", "CAST", "SLICE", "SQUEEZE", "EXPAND_DIMS")
OP_HINTS = {"PRELU": "use ReLU or LeakyReLU", "REDUCE_MAX": "use GlobalAveragePooling2D",
            "HARD_SWISH": "use ReLU6", "TANH": "use ReLU6 or LeakyReLU", "ADD": "no residual adds on the stock runtime",
            "RESIZE_NEAREST_NEIGHBOR": "resize on the host or with image.resize() before the KPU"}
STRIDE_HINT = "use ZeroPadding2D(((1, 1), (1, 1))) then padding='valid' for stride 2 (the KPU pads 1 on every side)"


@dataclass
class Padded:
    """A PAD op's result, waiting for the conv that absorbs it."""
    value: ir.Value
    pads: tuple          # (top, bottom, left, right)
    op_index: int


@dataclass
class Flat:
    """A RESHAPE of a (c, h, w) map to a vector: TFLite's element order is HWC, ours CHW."""
    value: ir.Value


@dataclass
class Spread:
    """A 1x1 map computed on the KPU as a 4x4 map (K210_ADD_PADDING): channel c is pixel (0, 0)."""
    value: ir.Value


def _quant(t: Tensor):
    """(scale, zero point as a byte) of a per-tensor int8 tensor."""
    return float(t.scale[0]), int(t.zero_point[0]) + 128


def _tf_same_pads(size, k, s):
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def lower(graph: Graph, problems: list = None) -> ir.Program:
    """The program of a graph. problems=None: the first refusal raises CompileError. A list: every refusal is
    appended to it (the program returned, None when the walk could not start, is then only for planning)."""
    return _Lowering(graph, problems).run()


class _Lowering:
    def __init__(self, graph: Graph, problems=None):
        self.g = graph
        self.problems = problems
        self.stand_ins = set()   # id() of the placeholder layers of refused ops
        self.input = None
        self.env = {}            # tflite tensor index -> Value | Padded | Flat | Spread
        self.layers = []
        self.producer = {}       # id(Value) -> layer that writes it
        self.float_of = {}       # id(u8 Value) -> its DEQUANTIZE result
        self.kpu_of = {}         # id(Value) -> its uploaded copy in KPU RAM
        self.op = None

    # ---- errors and small helpers ----

    def fail(self, message, rule):
        op = self.op
        raise CompileError(message, self.g.source, op.index if op else None,
                           op.kind if op else None, rule)

    def refuse(self, err: CompileError):
        """The compiler stops at a refusal; the checker notes it and goes on (a float model once, not per op)."""
        if self.problems is None:
            raise err
        once = (R.INT8.id, R.INPUT_QUANT.id)      # a float model: said once, not at each op
        if err.rule not in once or all(p.rule not in once for p in self.problems):
            self.problems.append(err)

    def stand_in(self, op):
        """Each output of a refused op becomes a value of its tensor's shape: a map made by a placeholder conv (what
        follows folds into it as into the conv the user will put there), a vector in main memory."""
        e = self.env.get(op.inputs[0]) if op.inputs and op.inputs[0] >= 0 else None
        src = e.value if isinstance(e, (Padded, Flat, Spread)) else e if isinstance(e, ir.Value) else self.input
        for t in op.outputs:
            y = self.tensor(t)
            q = _quant(y) if y.quantized else (1.0, 0)
            if len(y.shape) == 4:
                _, h, w, c = y.shape
                out = ir.Value(y.name, (c, h, w), "u8", *q, in_kpu=True)
                layer = ir.ConvLayer(op.index, op.kind, src, out, np.zeros((c, src.shape[0], 1, 1), np.uint8), 1,
                                     False, 0, 0, 0, np.ones(c), np.zeros(c, np.int64))
                self.stand_ins.add(id(self.emit(layer)))
            else:
                out = ir.Value(y.name, (int(np.prod(y.shape)), 1, 1), "f32", *q, in_main=True)
            self.env[t] = out

    def tensor(self, i) -> Tensor:
        return self.g.tensors[i]

    def sole_use(self, t) -> bool:
        return len(self.g.consumers(t)) == 1 and t not in self.g.outputs

    def emit(self, layer):
        self.layers.append(layer)
        self.producer[id(layer.out)] = layer
        return layer

    def cpu(self, type_, inputs, out, **params):
        return self.emit(ir.CpuLayer(type_, self.op.index if self.op else -1, self.op.kind if self.op else "",
                                     inputs, out, params))

    def need_int8(self, t: Tensor, what):
        if t.dtype != "int8" or not t.quantized:
            self.fail("%s tensor %r is %s; the KPU path needs int8 with quantization (fully-integer tflite)"
                      % (what, t.name, t.dtype), R.INT8)
        if len(t.scale) != 1:
            self.fail("%s tensor %r has per-channel quantization" % (what, t.name), R.INT8)

    # ---- where a value lives ----

    def ensure_main(self, v: ir.Value):
        if v.in_main:
            return v
        layer = self.producer.get(id(v))
        if not isinstance(layer, ir.ConvLayer):
            self.fail("the camera input cannot feed a CPU layer directly", R.FIRST_LAYER)
        layer.main_out = True
        v.in_main = True
        return v

    def as_float(self, v: ir.Value) -> ir.Value:
        if v.dtype == "f32":
            return v
        if id(v) not in self.float_of:
            self.ensure_main(v)
            out = ir.Value(v.name + "/f32", v.shape, "f32", v.scale, v.zero, in_main=True)
            self.cpu(ir.DEQUANTIZE, [v], out, scale=v.scale, bias=-v.zero * v.scale)
            self.float_of[id(v)] = out
        return self.float_of[id(v)]

    def as_u8(self, v: ir.Value, scale, zero) -> ir.Value:
        """v as bytes of the given quantization, in main memory."""
        if v.dtype == "u8":
            self.ensure_main(v)
            if math.isclose(v.scale, scale, rel_tol=1e-6) and v.zero == zero:
                return v
            table = np.clip(np.round((np.arange(256) - v.zero) * (v.scale / scale)) + zero, 0, 255)
            out = ir.Value(v.name + "/requant", v.shape, "u8", scale, zero, in_main=True)
            self.cpu(ir.REQUANTIZE, [v], out, table=table.astype(np.uint8))
            return out
        out = ir.Value(v.name + "/u8", v.shape, "u8", scale, zero, in_main=True)
        self.cpu(ir.QUANTIZE, [v], out, scale=scale, bias=-zero * scale)
        return out

    def as_kpu(self, v: ir.Value, scale, zero) -> ir.Value:
        if v.dtype == "u8" and v.in_kpu and math.isclose(v.scale, scale, rel_tol=1e-6) and v.zero == zero:
            return v
        if id(v) not in self.kpu_of:
            u = self.as_u8(v, scale, zero)
            out = ir.Value(v.name + "/kpu", u.shape, "u8", scale, zero, in_kpu=True)
            self.cpu(ir.K210_UPLOAD, [u], out)
            self.kpu_of[id(v)] = out
        return self.kpu_of[id(v)]

    def get(self, t) -> ir.Value:
        """The concrete value of tensor t, materialising a pending view."""
        e = self.env.get(t)
        if e is None:
            self.fail("input tensor %r is not produced by any op the compiler handled" % self.tensor(t).name,
                      R.GRAPH)
        if isinstance(e, Padded):
            self.fail("PAD (op %d) must feed a conv directly" % e.op_index, R.GRAPH)
        if isinstance(e, Spread):
            v = e.value
            self.ensure_main(v)
            c = v.shape[0]
            out = ir.Value(v.name + "/1x1", (c, 1, 1), "u8", v.scale, v.zero, in_main=True)
            self.cpu(ir.K210_REMOVE_PADDING, [v], out)
            self.env[t] = out
            return out
        if isinstance(e, Flat):
            v = self.as_float(e.value)
            c, h, w = v.shape
            out = ir.Value(v.name + "/flat", (c * h * w, 1, 1), "f32", v.scale, v.zero, in_main=True)
            self.cpu(ir.TENSORFLOW_FLATTEN, [v], out)
            self.env[t] = out
            return out
        return e

    # ---- the walk ----

    def run(self) -> ir.Program:
        g = self.g
        try:
            if len(g.inputs) != 1:
                self.fail("has %d inputs; a kmodel takes one camera image" % len(g.inputs), R.INPUT)
            self.input_value(self.tensor(g.inputs[0]))
        except CompileError as e:
            self.refuse(e)
            if self.input is None:
                return None       # nothing to walk from
        for op in g.ops:
            self.op = op
            try:
                self.lower_op(op)
            except CompileError as e:
                self.refuse(e)
                self.stand_in(op)
            except Exception as e:  # a limit the compiler does not know of is still this layer's
                self.refuse(CompileError.internal(e, g.source, op.index, op.kind))
                self.stand_in(op)
        self.op = None
        try:
            outputs = []
            for i in g.outputs:
                v = self.as_float(self.get(i))
                self.ensure_main(v)
                outputs.append(v)
            if not self.layers or not isinstance(self.layers[0], ir.ConvLayer):
                self.fail("the first layer is not a KPU conv: the V3 runtime feeds the camera image to a K210_CONV "
                          "first", R.FIRST_LAYER)
        except CompileError as e:
            self.refuse(e)
            return None
        prog = ir.Program(g.source, self.input, self.layers, outputs)
        move_depthwise_stride(prog)
        self.check_channel_pixels(prog)
        return prog

    def lower_op(self, op):
        if op.kind in SHAPE_OPS and all(self.shape_only(t) for t in op.outputs):
            return      # shape arithmetic (Keras' Flatten); RESHAPE uses its output's static shape
        handler = getattr(self, "op_" + op.kind.lower(), None)
        if handler is None:
            self.fail("op %s has no kmodel V3 layer the stock K210 runtime runs%s"
                      % (op.kind, "; " + OP_HINTS[op.kind] if op.kind in OP_HINTS else ""), R.OP)
        handler(op)

    def check_channel_pixels(self, prog):
        """The DMA that moves a conv's output counts one channel's pixels in 16 bits (once pools and moved strides
        are settled)."""
        for L in prog.layers:
            if isinstance(L, ir.ConvLayer) and id(L) not in self.stand_ins:
                oh, ow = hw.pooled_size(L.inp.shape[1], L.inp.shape[2], L.pool)
                if oh * ow > hw.MAX_CHANNEL_PIXELS:
                    self.refuse(CompileError(
                        "output map %dx%d is %d pixels per channel; the KPU's output DMA counts at most %d: pool it "
                        "in the same layer (a 2x2 pool right after the conv) or use stride 2"
                        % (ow, oh, oh * ow, hw.MAX_CHANNEL_PIXELS), self.g.source, L.op_index, L.op,
                        R.CHANNEL_PIXELS))

    def shape_only(self, t) -> bool:
        """Tensor t is integer shape data read only as a RESHAPE's shape or by other shape arithmetic."""
        if self.tensor(t).dtype not in ("int32", "int64") or t in self.g.outputs:
            return False
        for op in self.g.consumers(t):
            if op.kind == "RESHAPE" and op.inputs.index(t) == 1:
                continue
            if op.kind in SHAPE_OPS and all(self.shape_only(o) for o in op.outputs):
                continue
            return False
        return True

    def input_value(self, t: Tensor):
        """The camera image; a refused input still becomes the value the walk starts from."""
        if len(t.shape) != 4 or t.shape[0] != 1:
            self.fail("input %r has shape %s; expected [1, H, W, C]" % (t.name, list(t.shape)), R.INPUT)
        _, h, w, c = t.shape
        good = t.dtype == "int8" and t.quantized
        scale, zero = _quant(t) if good else (INPUT_SCALE, 0)
        self.input = ir.Value(t.name, (c, h, w), "u8", scale, zero, in_kpu=True)
        self.env[t.index] = self.input
        if not good:
            self.fail("input %r is %s; the camera byte is the int8 input + 128 (quantize with "
                      "inference_input_type=int8)" % (t.name, t.dtype), R.INPUT_QUANT)
        want_scale, want_zero = self.g.camera or (INPUT_SCALE, 0)    # compile --input-mean/--input-std
        if not math.isclose(scale, want_scale, rel_tol=1e-4) or zero != want_zero:
            self.fail("input %r has scale %g, zero point %d; the camera byte needs scale 1/255 and zero point -128 "
                      "(model input = pixel / 255), or give compile --input-mean/--input-std"
                      % (t.name, scale, zero - 128), R.INPUT_QUANT)
        if c not in (1, 3):
            self.fail("input has %d channels; the camera gives 1 (grayscale) or 3 (RGB)" % c, R.INPUT)
        if w > CAMERA_W or h > CAMERA_H:
            self.fail("input %dx%d (w x h) is larger than the camera's %dx%d frame, the largest image kpu.forward "
                      "takes" % (w, h, CAMERA_W, CAMERA_H), R.INPUT)
        self.check_map(c, h, w, "input")

    def check_map(self, c, h, w, what):
        if not (hw.MIN_SIDE <= h <= hw.MAX_H and hw.MIN_SIDE <= w <= hw.MAX_W):
            self.fail("%s map %dx%d (w x h) is outside the KPU's %d..%d x %d..%d" % (
                what, w, h, hw.MIN_SIDE, hw.MAX_W, hw.MIN_SIDE, hw.MAX_H), R.MAP_SIZE)
        if c > hw.MAX_CHANNELS:
            self.fail("%s has %d channels; the KPU takes at most %d" % (what, c, hw.MAX_CHANNELS), R.CHANNELS)

    # ---- convolutions ----

    def op_conv_2d(self, op):
        self.conv(op, depthwise=False)

    def op_depthwise_conv_2d(self, op):
        self.conv(op, depthwise=True)

    def conv(self, op, depthwise):
        o = op.options
        x_t, w_t, y_t = self.tensor(op.inputs[0]), self.tensor(op.inputs[1]), self.tensor(op.outputs[0])
        b_t = self.tensor(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
        self.need_int8(x_t, "input")
        self.need_int8(y_t, "output")
        if w_t.data is None or w_t.dtype != "int8":
            self.fail("weights %r are not constant int8" % w_t.name, R.INT8)
        if o["dilation"] != (1, 1):
            self.fail("dilation %s; the KPU has none" % (o["dilation"],), R.DILATION)
        src = self.env.get(op.inputs[0])
        pads = (0, 0, 0, 0)
        if isinstance(src, Padded):
            pads, src = src.pads, src.value
            if src.dtype != "u8":
                self.fail("PAD of a float tensor before a conv", R.GRAPH)
        else:
            src = self.get(op.inputs[0])
        c, h, w = src.shape
        if depthwise:
            _, kh, kw, oc = w_t.shape
            if o["depth_multiplier"] != 1 or oc != c:
                self.fail("depthwise multiplier %d; the KPU's depthwise conv maps each channel to one"
                          % (oc // max(c, 1)), R.DEPTH_MULTIPLIER)
        else:
            oc, kh, kw, ic = w_t.shape
            if ic != c:
                self.fail("weights expect %d input channels, the input has %d" % (ic, c), R.GRAPH)
        k = kh
        if kh != kw or k not in hw.KERNELS:
            self.fail("kernel %dx%d; the KPU runs 1x1 and 3x3" % (kh, kw), R.KERNEL)
        stride = o["stride"]
        if stride[0] != stride[1] or stride[0] not in hw.STRIDES:
            self.fail("stride %s; the KPU does 1 and 2 (by sampling)" % (stride,), R.STRIDE)
        s = stride[0]
        if h == 1 and w == 1 and k == 1 and s == 1 and pads == (0, 0, 0, 0):
            return self.conv_on_vector(op, src, x_t, w_t, b_t, y_t, depthwise)
        ph, pw = h + pads[0] + pads[1], w + pads[2] + pads[3]
        if o["padding"] == "same":
            t, b = _tf_same_pads(ph, k, s)
            l, r = _tf_same_pads(pw, k, s)
            pads = (pads[0] + t, pads[1] + b, pads[2] + l, pads[3] + r)
        want = (1, 1, 1, 1) if k == 3 else (0, 0, 0, 0)
        if pads != want:
            if s == 2 and k == 3:
                self.fail("padding (top %d, bottom %d, left %d, right %d) at stride 2: TF SAME pads only "
                          "bottom/right and samples the other phase than the KPU; %s" % (pads + (STRIDE_HINT,)),
                          R.PADDING)
            self.fail("padding (top %d, bottom %d, left %d, right %d) for a %dx%d kernel; the KPU pads exactly %d "
                      "on every side (use padding='same' at stride 1)" % (pads + (k, k, want[0])),
                      R.PADDING)
        _, oh, ow, _ = y_t.shape
        eh, ew = (h, w) if s == 1 else (h // 2, w // 2)
        if (oh, ow) != (eh, ew):
            self.fail("output %dx%d but the KPU gives %dx%d from a %dx%d input at stride %d (stride 2 needs even "
                      "sizes)" % (ow, oh, ew, eh, w, h, s), R.STRIDE2_SIZE)
        self.check_map(c, h, w, "conv input")
        self.check_map(oc, eh, ew, "conv output")
        inp = self.as_kpu(src, *_quant(x_t))
        layer = self.make_conv(op, inp, w_t, b_t, x_t, y_t, depthwise, k, (oc, eh, ew))
        layer.pool = 0 if s == 1 else SAMPLE_LT
        self.env[op.outputs[0]] = layer.out

    def make_conv(self, op, inp, w_t, b_t, x_t, y_t, depthwise, k, out_shape):
        if depthwise:
            w = w_t.data[0].transpose(2, 0, 1)           # (1, k, k, C) -> (C, k, k)
        elif w_t.data.ndim == 2:
            w = w_t.data[:, :, None, None]               # dense (O, I) -> (O, I, 1, 1)
        else:
            w = w_t.data.transpose(0, 3, 1, 2)           # OHWI -> OIHW
        bias = b_t.data if b_t is not None and b_t.data is not None else None
        return self.conv_layer(op, inp, w, w_t.zero_point, w_t.scale, bias, x_t, y_t, depthwise, k, out_shape)

    def conv_layer(self, op, inp, w, zw, sw, bias, x_t, y_t, depthwise, k, out_shape):
        """A ConvLayer from int8 weights w (OIHW or depthwise (C, k, k)), their zero points and scales."""
        sx, x0 = _quant(x_t)
        so, zo = _quant(y_t)
        oc = out_shape[0]
        try:
            hw.weight_loads(k, inp.shape[0], oc, depthwise)
        except hw.WeightLoadError as e:
            self.fail("%d -> %d channels, %dx%d: %s" % (inp.shape[0], oc, k, k, e), R.WEIGHT_LOADS)
        zw = np.unique(zw)
        if len(zw) != 1:
            self.fail("weights have per-channel zero points", R.INT8)
        w0 = int(zw[0]) + 128
        w = np.ascontiguousarray(w.astype(np.int16) + 128).astype(np.uint8)
        sw = np.broadcast_to(sw, (oc,)).astype(np.float64)
        bias = bias.astype(np.int64) if bias is not None else np.zeros(oc, np.int64)
        # the multiplier exactly as LiteRT's default (XNNPACK) kernels compute it: in float32, this order
        mults = ((np.float32(sx) * sw.astype(np.float32)) / np.float32(so)).astype(np.float64)
        act = ACTIVATIONS.get(self.op.options.get("activation", 0))
        if act is None:
            self.fail("fused activation code %d; the KPU table does linear, ReLU, ReLU6"
                      % self.op.options["activation"], R.ACTIVATION)
        lo, hi = 0, 255
        if act in ("relu", "relu6"):
            lo = max(lo, zo)
        if act == "relu6":
            hi = min(hi, zo + int(math.floor(6.0 / so + 0.5)))
        out = ir.Value(self.tensor(op.outputs[0]).name, out_shape, "u8", so, zo, in_kpu=True)
        layer = ir.ConvLayer(op.index, op.kind, inp, out, w, k, depthwise, 0, x0, w0, mults, bias, conv_zero=zo,
                             clamp=(lo, hi))
        return self.emit(layer)

    def conv_on_vector(self, op, src, x_t, w_t, b_t, y_t, depthwise):
        """A 1x1 conv of a 1x1 map (a dense layer in conv form): K210_ADD_PADDING spreads it to 4x4 for the KPU."""
        c = src.shape[0]
        oc = w_t.shape[3] if depthwise else w_t.shape[0]
        if c > hw.MAX_CHANNELS or oc > hw.MAX_CHANNELS:
            self.fail("%d -> %d channels; the KPU takes at most %d" % (c, oc, hw.MAX_CHANNELS), R.CHANNELS)
        u = self.as_u8(src, *_quant(x_t))
        spread = ir.Value(u.name + "/4x4", (c, 4, 4), "u8", u.scale, u.zero, in_kpu=True)
        self.cpu(ir.K210_ADD_PADDING, [u], spread)
        layer = self.make_conv(op, spread, w_t, b_t, x_t, y_t, depthwise, 1, (oc, 4, 4))
        self.env[op.outputs[0]] = Spread(layer.out)

    # ---- what folds into the conv before it ----

    def open_conv(self, t):
        """The conv whose output is tensor t, if t feeds only this op (so its output stage may still change)."""
        e = self.env.get(t)
        v = e.value if isinstance(e, Spread) else e
        layer = self.producer.get(id(v)) if isinstance(v, ir.Value) else None
        if isinstance(layer, ir.ConvLayer) and self.sole_use(t) and not layer.main_out:
            return layer
        return None

    def fold_activation(self, op, alpha, relu6=False):
        x_t, y_t = self.tensor(op.inputs[0]), self.tensor(op.outputs[0])
        self.need_int8(x_t, "input")
        self.need_int8(y_t, "output")
        layer = self.open_conv(op.inputs[0])
        if layer is None or layer.post is not None or layer.pool in MEAN_POOLS:
            self.fail("%s must directly follow a conv (it runs in the conv's activation table)" % op.kind,
                      R.ACTIVATION)
        s1, _ = _quant(x_t)
        s2, z2 = _quant(y_t)
        lo, hi = 0, 255
        if alpha == 0.0:
            lo = z2
        if relu6:
            hi = min(255, z2 + int(math.floor(6.0 / s2 + 0.5)))
        layer.post = (alpha, s1 / s2, z2, lo, hi)
        layer.out.scale, layer.out.zero, layer.out.name = s2, z2, y_t.name
        self.env[op.outputs[0]] = self.env[op.inputs[0]]

    def op_leaky_relu(self, op):
        alpha = op.options["alpha"]
        if not 0.0 <= alpha < 1.0:
            self.fail("LeakyReLU alpha %g; the activation table takes 0 <= alpha < 1" % alpha, R.ACTIVATION)
        self.fold_activation(op, alpha)

    def op_relu(self, op):
        self.fold_activation(op, 0.0)

    def op_relu6(self, op):
        self.fold_activation(op, 0.0, relu6=True)

    def pool(self, op):
        o = op.options
        x_t, y_t = self.tensor(op.inputs[0]), self.tensor(op.outputs[0])
        self.need_int8(x_t, "input")
        self.need_int8(y_t, "output")
        if _quant(x_t) != _quant(y_t):
            self.fail("pool changes the quantization", R.POOL)
        fh, fw = o["filter"]
        sh, sw = o["stride"]
        _, oh, ow, _ = y_t.shape
        v = self.get(op.inputs[0]) if not isinstance(self.env.get(op.inputs[0]), ir.Value) else self.env[op.inputs[0]]
        c, h, w = v.shape
        ptype = hw.pool_type(POOL_KINDS[op.kind], fh, sh) if fh == fw and sh == sw else None
        layer = self.open_conv(op.inputs[0])
        if ptype is not None and layer is not None and layer.pool == 0 and o["activation"] == 0:
            stride = POOL_TYPES[ptype][2]
            same_size = (oh, ow) == (h // stride, w // stride)
            if same_size and (stride > 1 or o["padding"] == "same"):
                layer.pool = ptype
                layer.out.shape = (c, oh, ow)
                layer.out.name = y_t.name
                self.env[op.outputs[0]] = layer.out
                return
        # not foldable: the stock runtime's CPU pools (max on bytes, average on floats)
        if o["activation"] != 0:
            self.fail("pool with a fused activation", R.POOL)
        pt = _tf_same_pads(h, fh, sh)[0] if o["padding"] == "same" else 0
        pl = _tf_same_pads(w, fw, sw)[0] if o["padding"] == "same" else 0
        geo = dict(kernel=(fh, fw), stride=(sh, sw), pad=(pt, pl))
        if op.kind == "MAX_POOL_2D":
            u = self.as_u8(v, *_quant(x_t))
            out = ir.Value(y_t.name, (c, oh, ow), "u8", u.scale, u.zero, in_main=True)
            self.cpu(ir.QUANTIZED_MAX_POOL2D, [u], out, **geo)
        else:
            f = self.as_float(v)
            out = ir.Value(y_t.name, (c, oh, ow), "f32", *_quant(y_t), in_main=True)
            self.cpu(ir.AVERAGE_POOL2D, [f], out, **geo)
        self.env[op.outputs[0]] = out

    def op_max_pool_2d(self, op):
        self.pool(op)

    def op_average_pool_2d(self, op):
        self.pool(op)

    # ---- CPU layers ----

    def op_pad(self, op):
        x_t, y_t = self.tensor(op.inputs[0]), self.tensor(op.outputs[0])
        p = self.tensor(op.inputs[1]).data
        if p is None or p.shape != (4, 2) or p[0].any() or p[3].any():
            self.fail("PAD must pad height and width only", R.GRAPH)
        if _quant(x_t) != _quant(y_t):
            self.fail("PAD changes the quantization", R.GRAPH)
        self.env[op.outputs[0]] = Padded(self.get(op.inputs[0]), (int(p[1][0]), int(p[1][1]), int(p[2][0]),
                                                                   int(p[2][1])), op.index)

    def op_mean(self, op):
        axes = self.tensor(op.inputs[1]).data
        if axes is None or sorted(int(a) for a in np.ravel(axes)) != [1, 2]:
            self.fail("MEAN over axes %s; only the global average over height and width runs"
                      % (None if axes is None else list(np.ravel(axes))), R.GRAPH)
        v = self.as_float(self.get(op.inputs[0]))
        c, h, w = v.shape
        y_t = self.tensor(op.outputs[0])
        out = ir.Value(y_t.name, (c, 1, 1), "f32", *(_quant(y_t) if y_t.quantized else (1.0, 0)), in_main=True)
        self.cpu(ir.GLOBAL_AVERAGE_POOL2D, [v], out, kernel_size=h * w, channels=c)
        self.env[op.outputs[0]] = out

    def op_fully_connected(self, op):
        x_t, w_t, y_t = self.tensor(op.inputs[0]), self.tensor(op.inputs[1]), self.tensor(op.outputs[0])
        b_t = self.tensor(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
        if w_t.data is None or w_t.dtype != "int8" or not w_t.quantized or not x_t.quantized:
            self.fail("dense weights must be constant int8", R.INT8)
        act = ACTIVATIONS.get(op.options["activation"])
        if act is None:
            self.fail("fused activation code %d" % op.options["activation"], R.ACTIVATION)
        e = self.env.get(op.inputs[0])
        n_out, n_in = w_t.shape
        vec = not isinstance(e, Flat) or e.value.shape[1:] == (1, 1)
        if vec and n_in <= hw.MAX_CHANNELS and n_out <= hw.MAX_CHANNELS and x_t.quantized and y_t.quantized \
                and np.all(w_t.zero_point == w_t.zero_point[0]):
            # on the KPU as a 1x1 conv of a 4x4 map (uint8 weights, TFLite's integer arithmetic)
            src = e.value if isinstance(e, Flat) else self.get(op.inputs[0])
            if src.count != n_in:
                self.fail("dense expects %d inputs, gets %d" % (n_in, src.count), R.GRAPH)
            u = self.as_u8(src, *_quant(x_t))
            spread = ir.Value(u.name + "/4x4", (n_in, 4, 4), "u8", u.scale, u.zero, in_kpu=True)
            self.cpu(ir.K210_ADD_PADDING, [u], spread)
            layer = self.make_conv(op, spread, w_t, b_t, x_t, y_t, False, 1, (n_out, 4, 4))
            self.env[op.outputs[0]] = Spread(layer.out)
            return
        if isinstance(e, Flat):
            v, hwc = self.as_float(e.value), True
        else:
            v, hwc = self.as_float(self.get(op.inputs[0])), False
        c, h, w = v.shape
        if n_in != c * h * w:
            self.fail("dense expects %d inputs, gets %d" % (n_in, c * h * w), R.GRAPH)
        sx = float(x_t.scale[0])
        sw = np.broadcast_to(w_t.scale, (n_out,)).astype(np.float64)
        zw = np.broadcast_to(w_t.zero_point, (n_out,)).astype(np.float64)
        wf = (w_t.data.astype(np.float64) - zw[:, None]) * sw[:, None]
        if hwc and h * w > 1:
            wf = wf.reshape(n_out, h, w, c).transpose(0, 3, 1, 2).reshape(n_out, -1)
        bias = b_t.data.astype(np.float64) * sx * sw if b_t is not None and b_t.data is not None else np.zeros(n_out)
        out = ir.Value(y_t.name, (n_out, 1, 1), "f32", *(_quant(y_t) if y_t.quantized else (1.0, 0)), in_main=True)
        self.cpu(ir.FULLY_CONNECTED, [v], out, weights=wf.astype(np.float32), bias=bias.astype(np.float32),
                 act={"linear": 0, "relu": 1, "relu6": 2}[act])
        self.env[op.outputs[0]] = out

    def op_softmax(self, op):
        if op.options.get("beta", 1.0) != 1.0:
            self.fail("softmax beta %g; the runtime's softmax has beta 1" % op.options["beta"], R.OP)
        v = self.as_float(self.get(op.inputs[0]))
        if v.shape[1] * v.shape[2] != 1:
            self.fail("softmax over a %dx%d map; the runtime's softmax takes a vector" % v.shape[1:],
                      R.GRAPH)
        y_t = self.tensor(op.outputs[0])
        out = ir.Value(y_t.name, v.shape, "f32", *(_quant(y_t) if y_t.quantized else (1.0, 0)), in_main=True)
        self.cpu(ir.SOFTMAX, [v], out, channels=v.count)
        self.env[op.outputs[0]] = out

    def op_logistic(self, op):
        v = self.as_float(self.get(op.inputs[0]))
        y_t = self.tensor(op.outputs[0])
        out = ir.Value(y_t.name, v.shape, "f32", *(_quant(y_t) if y_t.quantized else (1.0, 0)), in_main=True)
        self.cpu(ir.LOGISTIC, [v], out, channels=v.count)
        self.env[op.outputs[0]] = out

    def op_reshape(self, op):
        e = self.env.get(op.inputs[0])
        v = e.value if isinstance(e, (Flat, Spread)) else self.get(op.inputs[0])
        if isinstance(e, Spread):
            v = self.get(op.inputs[0])
        y_t = self.tensor(op.outputs[0])
        dims = [d for d in y_t.shape]
        c, h, w = v.shape
        if int(np.prod(dims)) != c * h * w or dims[0] != 1:
            self.fail("reshape to %s" % dims, R.GRAPH)
        rest = [d for d in dims[1:] if d != 1]
        if h * w == 1 and len(rest) <= 1:
            self.env[op.outputs[0]] = v                       # (c,1,1) <-> [1, c] / [1,1,1,c]: same bytes
        elif len(rest) == 1:
            self.env[op.outputs[0]] = Flat(v)
        else:
            self.fail("reshape of a %dx%dx%d map to %s" % (c, h, w, dims), R.GRAPH)

    op_squeeze = op_reshape

    def op_concatenation(self, op):
        if op.options.get("activation", 0) != 0:
            self.fail("concat with a fused activation", R.GRAPH)
        y_t = self.tensor(op.outputs[0])
        rank = len(y_t.shape)
        axis = op.options["axis"] % rank
        if axis != rank - 1:
            self.fail("concat on axis %d; the runtime concatenates channels (the last axis)" % axis,
                      R.GRAPH)
        vals = [self.get(i) for i in op.inputs]
        if len({v.shape[1:] for v in vals}) != 1:
            self.fail("concat of maps of different sizes", R.GRAPH)
        q = _quant(y_t) if y_t.quantized else None
        same = q is not None and all(v.dtype == "u8" and math.isclose(v.scale, q[0], rel_tol=1e-6)
                                     and v.zero == q[1] for v in vals)
        ins = [self.ensure_main(v) for v in vals] if same else [self.as_float(v) for v in vals]
        c = sum(v.shape[0] for v in ins)
        out = ir.Value(y_t.name, (c,) + ins[0].shape[1:], ins[0].dtype, *(q or (1.0, 0)), in_main=True)
        self.cpu(ir.CONCAT, ins, out)
        self.env[op.outputs[0]] = out

    def op_dequantize(self, op):
        self.env[op.outputs[0]] = self.as_float(self.get(op.inputs[0]))

    def op_quantize(self, op):
        y_t = self.tensor(op.outputs[0])
        self.need_int8(y_t, "output")
        self.env[op.outputs[0]] = self.as_u8(self.get(op.inputs[0]), *_quant(y_t))


def move_depthwise_stride(prog: ir.Program):
    """A depthwise conv's stride-2 sampling moves into the 1x1 conv that alone consumes it (as nncase's files
    do): sampling commutes with a pointwise conv, so the result is the same."""
    uses = {}
    for L in prog.layers:
        for v in ([L.inp] if isinstance(L, ir.ConvLayer) else L.inputs):
            uses.setdefault(id(v), []).append(L)
    outs = {id(v) for v in prog.outputs}
    for L in prog.layers:
        if not (isinstance(L, ir.ConvLayer) and L.depthwise and L.pool == SAMPLE_LT and not L.main_out):
            continue
        nxt = uses.get(id(L.out), [])
        if len(nxt) != 1 or id(L.out) in outs:
            continue
        M = nxt[0]
        if isinstance(M, ir.ConvLayer) and M.kernel == 1 and M.pool == 0 and not M.depthwise:
            full = L.inp.shape
            L.pool = 0
            L.out.shape = (L.out.shape[0],) + full[1:]
            M.pool = SAMPLE_LT
