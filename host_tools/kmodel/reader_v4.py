"""kmodel V4 reader (nncase v0.2): header, input/output memory ranges, constants, every node body decoded.

The format is in docs/kmodel-v4.md. Validation works as the V3 reader's does: every count, size and memory range
is checked against the file and the model's memories BEFORE anything is sliced or allocated, and any problem is
one KmodelError naming the node and the field. Arrays (weights, tables) are read-only views into the file bytes.
Nodes are reader.Layer objects (type = the V4 opcode), so the tools that list or time layers take both formats;
KPU conv nodes carry the same regs / bn / act / weights as a V3 K210_CONV layer.
"""
import struct
from dataclasses import dataclass

import numpy as np

from host_tools.k210 import kpu as hw
from host_tools.k210 import registers as R
from host_tools.k210.bigendian import LDMK
from host_tools.k210.errors import ERR_KMODEL_FORMAT, ERR_KMODEL_VERSION, ERR_NO_MEM
from host_tools.k210.firmware import SRAM_BYTES
from host_tools.kmodel.errors import KmodelError
from host_tools.kmodel.reader import Layer, conv_regs_problem

VERSION = 4
HEADER = struct.Struct("<10I")      # identifier, version, flags, target, constants, main_mem, nodes, inputs,
                                    # outputs, reserved (nncase leaves it uninitialised: never checked)
TARGETS = {0: "CPU", 1: "K210"}
MEM_CONST, MEM_MAIN, MEM_KPU = 0, 1, 2
MEM_NAMES = {MEM_CONST: "const", MEM_MAIN: "main", MEM_KPU: "kpu"}
DT_F32, DT_U8 = 0, 1
DT_BYTES = {DT_F32: 4, DT_U8: 1}
BODY_ALIGN = 8                      # nncase pads each body to a file offset that is a multiple of 8
MAX_NODES = 1 << 16                 # counts beyond these are refused before any table is read
MAX_IO = 256

KPU_UPLOAD, KPU_CONV2D = 0x2001, 0x2002
OPCODES = {
    0x00: "Binary", 0x01: "Concat", 0x02: "Conv2D", 0x03: "Dequantize", 0x04: "MatMul", 0x05: "Pad",
    0x06: "Quantize", 0x07: "Reduce", 0x08: "ReduceWindow2D", 0x09: "MemoryCopy", 0x0A: "ResizeImage",
    0x0B: "Softmax", 0x0C: "Transpose", 0x0D: "StridedSlice", 0x0E: "Unary", 0x0F: "QuantizedConv2D",
    0x10: "QuantizedMatMul", 0x11: "QuantizedBinary", 0x12: "TableLookup1D", 0x13: "Conv2DTranspose",
    0x14: "NNILUnaryMethod",
    0x1001: "CPUConv2D", 0x1002: "CPUDepthwiseConv2D", 0x1003: "CPUReduceWindow2D", 0x1004: "CPUQuantizedConv2D",
    0x1005: "CPUQuantizedDepthwiseConv2D",
    KPU_UPLOAD: "KPUUpload", KPU_CONV2D: "KPUConv2D",
}
BINARY_OPS = ("add", "sub", "mul", "div", "min", "max")
REDUCE_OPS = ("mean", "min", "max", "sum")
UNARY_OPS = ("abs", "ceil", "cos", "exp", "floor", "log", "neg", "rsqrt", "sin", "square")
RESIZE_MODES = ("bilinear", "nearest_neighbor")

# Field codes of a body: R memory range (16 B), S shape (4 x i32), P padding (2 x i32), V value range (2 x f32),
# Q quant param (i32 zero point, f32 scale), X scalar (u32 datatype + 4 bytes), i i32, I u32, f f32,
# B bool padded to 4 bytes (the end of resize_image_options).
_CODE = {"R": (16, "4I"), "S": (16, "4i"), "P": (8, "2i"), "V": (8, "2f"), "Q": (8, "if"), "X": (8, "I4s"),
         "i": (4, "i"), "I": (4, "I"), "f": (4, "f"), "B": (4, "?3x")}
_CONV_W = ("filter_h:i filter_w:i stride_h:i stride_w:i dilation_h:i dilation_w:i")
_QUANT_OUT = "input_offset:i filter_offset:i output_mul:i output_shift:i output_offset:i"
FIXED = {
    0x00: "input_a:R input_b:R output:R binary_op:I in_a_shape:S in_b_shape:S out_shape:S fused_activation:V",
    0x01: "output:R inner_size:I outer_size:I inputs_count:I",
    0x02: "input:R output:R in_shape:S groups:i out_channels:i padding_h:P padding_w:P " + _CONV_W
          + " fused_activation:V",
    0x03: "input:R output:R quant_param:Q",
    0x04: "input_a:R input_b:R output:R a_rows:i a_cols:i b_cols:i fused_activation:V",
    0x05: "input:R output:R in_shape:S pad0:P pad1:P pad2:P pad3:P pad_value:X",
    0x06: "input:R output:R quant_param:Q",
    0x07: "input:R output:R reduce_op:I in_shape:S out_shape:S init_value:f",
    0x08: "input:R output:R reduce_op:I in_shape:S padding_h:P padding_w:P " + _CONV_W
          + " init_value:f fused_activation:V",
    0x09: "input:R output:R",
    0x0A: "input:R output:R in_shape:S out_h:i out_w:i mode:I align_corners:B",
    0x0B: "input:R output:R inner_size:i outer_size:i beta:f",
    0x0C: "input:R output:R in_shape:S perm:S",
    0x0D: "input:R output:R in_shape:S begin:S end:S strides:S begin_mask:i end_mask:i ellipsis_mask:i "
          "new_axis_mask:i shrink_axis_mask:i",
    0x0E: "input:R output:R unary_op:I",
    0x0F: "input:R output:R in_shape:S groups:i out_channels:i padding_h:P padding_w:P " + _CONV_W + " "
          + _QUANT_OUT,
    0x10: "input_a:R input_b:R output:R a_rows:i a_cols:i b_cols:i input_a_offset:i input_b_offset:i "
          "output_mul:i output_shift:i output_offset:i",
    0x11: "input_a:R input_b:R output:R binary_op:I in_a_shape:S in_b_shape:S out_shape:S input_a_offset:i "
          "input_a_mul:i input_a_shift:i input_b_offset:i input_b_mul:i input_b_shift:i output_offset:i "
          "output_mul:i output_shift:i",
    0x12: "input:R table:R output:R",
    0x13: "input:R output:R in_shape:S out_shape:S groups:i padding_h:P padding_w:P " + _CONV_W
          + " fused_activation:V",
    0x14: "input:R output:R",
    0x1001: "input:R output:R in_shape:S out_channels:i padding_h:P padding_w:P " + _CONV_W + " fused_activation:V",
    0x1002: "input:R output:R in_shape:S padding_h:P padding_w:P " + _CONV_W + " fused_activation:V",
    0x1003: "input:R output:R reduce_op:I in_shape:S padding_h:P padding_w:P " + _CONV_W
            + " init_value:f fused_activation:V",
    0x1004: "input:R output:R in_shape:S out_channels:i padding_h:P padding_w:P " + _CONV_W + " " + _QUANT_OUT,
    0x1005: "input:R output:R in_shape:S padding_h:P padding_w:P " + _CONV_W + " " + _QUANT_OUT,
    KPU_UPLOAD: "input:R output:R in_shape:S",
    KPU_CONV2D: "main_mem_output:R batches:i reserved0:i",
}
FIXED = {op: [tuple(f.split(":")) for f in spec.split()] for op, spec in FIXED.items()}
KPU_CONV_FIXED = 16 + 4 + 4          # main_mem_output, batches, reserved0; then the 96 register bytes


@dataclass(frozen=True)
class MemRange:
    memory: int          # MEM_CONST | MEM_MAIN | MEM_KPU
    dtype: int           # DT_F32 | DT_U8
    start: int           # byte offset in that memory
    size: int            # bytes

    @property
    def end(self) -> int:
        return self.start + self.size

    def __str__(self):
        return "%s[%d:%d] %s" % (MEM_NAMES.get(self.memory, "?"), self.start, self.end,
                                 "f32" if self.dtype == DT_F32 else "u8")


@dataclass
class KmodelV4:
    """A parsed V4 file; `layers` are its nodes (reader.Layer, type = opcode), as the V3 Kmodel's layers."""
    name: str
    data: bytes
    flags: int
    target: int
    constants: tuple             # (file offset, bytes) of the constants blob
    main_mem_usage: int
    inputs: list                 # [MemRange]
    input_shapes: list           # [(n, c, h, w)]
    outputs: list                # [MemRange]
    layers: list
    version: int = VERSION
    input_shape: tuple = None    # (c, h, w) of input 0; a float input: (count, 1, 1) as the V3 FC-first models
    input_is_float: bool = False
    output_shapes: list = None   # [(c, h, w)] as far as the producing nodes state it, else (count, 1, 1)
    output_typecodes: list = None    # ['f' | 'B'] from the output ranges' datatypes

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def weight_bits(self) -> int:
        return 8             # the V4 runtime sets the KPU's eight_bit_mode: weights are always 8-bit

    @property
    def nodes(self) -> list:
        return self.layers


def parse(data: bytes, name: str = "<bytes>") -> KmodelV4:
    return _Parser(bytes(data), name).model()


class _Parser:
    def __init__(self, data: bytes, name: str):
        self.data, self.n, self.name = data, len(data), name
        self.cur = None

    def fail(self, detail, node=None, field=None, code=ERR_KMODEL_FORMAT, type_name=None):
        raise KmodelError(code, detail, name=self.name, layer=node, field=field, type_name=type_name,
                          version=VERSION)

    def nfail(self, detail, field, code=ERR_KMODEL_FORMAT):
        i, tname = self.cur
        self.fail(detail, node=i, field=field, code=code, type_name=tname)

    def model(self) -> KmodelV4:
        if self.n < HEADER.size:
            self.fail("file is %d bytes, shorter than the 40-byte V4 header" % self.n, field="header")
        ident, version, flags, target, consts, main_mem, n_nodes, n_in, n_out, _ = HEADER.unpack_from(self.data)
        if ident != LDMK or version != VERSION:
            self.fail("not a kmodel V4 (identifier %#x, version %d)" % (ident, version), field="version",
                      code=ERR_KMODEL_VERSION)
        if target not in TARGETS:
            self.fail("target is %d: nncase v0.2 writes 0 (CPU) or 1 (K210)" % target, field="target")
        if main_mem > SRAM_BYTES:
            self.fail("main_mem %d bytes exceeds the K210's %d bytes of RAM" % (main_mem, SRAM_BYTES),
                      field="main_mem", code=ERR_NO_MEM)
        if n_nodes == 0 or n_nodes > MAX_NODES:
            self.fail("node count %d" % n_nodes, field="nodes")
        if n_in != 1:
            # MaixPy's runtime feeds input 0 only (nncase_run_kmodel); V4 files by nncase v0.2 have one input
            self.fail("%d inputs: the K210 runtime runs models with one input" % n_in, field="inputs")
        if n_out == 0 or n_out > MAX_IO:
            self.fail("output count %d" % n_out, field="outputs")
        self.sizes = {MEM_CONST: consts, MEM_MAIN: main_mem, MEM_KPU: hw.RAM_BYTES}
        pos = HEADER.size
        need = 32 * n_in + 16 * n_out + consts + 8 * n_nodes
        if pos + need > self.n:
            self.fail("inputs, outputs, %d bytes of constants and %d node headers need %d bytes, the file has %d"
                      % (consts, n_nodes, need, self.n - pos), field="constants")
        inputs = [self.range(pos + 16 * k, "inputs[%d]" % k) for k in range(n_in)]
        pos += 16 * n_in
        shapes = [struct.unpack_from("<4i", self.data, pos + 16 * k) for k in range(n_in)]
        pos += 16 * n_in
        outputs = [self.range(pos + 16 * k, "outputs[%d]" % k) for k in range(n_out)]
        pos += 16 * n_out
        constants = (pos, consts)
        pos += consts
        heads = [struct.unpack_from("<2I", self.data, pos + 8 * k) for k in range(n_nodes)]
        pos += 8 * n_nodes
        self.check_input(inputs[0], shapes[0])
        for k, o in enumerate(outputs):
            if o.memory == MEM_CONST:
                self.fail("output %d lies in constant memory" % k, field="outputs[%d]" % k)
        nodes = []
        for i, (op, size) in enumerate(heads):
            tname = OPCODES.get(op)
            self.cur = (i, tname)
            if tname is None:
                self.nfail("unknown opcode %#x" % op, "opcode")
            if size == 0 or pos + size > self.n:
                self.nfail("body at %d + %d bytes runs past the end of the %d-byte file" % (pos, size, self.n),
                           "body_size")
            nodes.append(self.node(i, op, tname, pos, size))
            pos += size
        c = shapes[0]
        m = KmodelV4(self.name, self.data, flags, target, constants, main_mem, inputs, shapes, outputs, nodes)
        m.input_is_float = inputs[0].dtype == DT_F32
        m.input_shape = (inputs[0].size // 4, 1, 1) if m.input_is_float else (c[1], c[2], c[3])
        _trace_shapes(m)
        return m

    # ---- memory ranges and shapes ----

    def range(self, pos, field) -> MemRange:
        mem, dt, start, size = struct.unpack_from("<4I", self.data, pos)
        if mem not in self.sizes:
            self.fail("memory type %d (0 const, 1 main, 2 kpu)" % mem, field=field)
        if dt not in DT_BYTES:
            self.fail("datatype %d (0 float32, 1 uint8)" % dt, field=field)
        if start + size > self.sizes[mem]:
            self.fail("%s memory %d + %d bytes runs past its %d bytes" % (MEM_NAMES[mem], start, size,
                                                                         self.sizes[mem]), field=field)
        return MemRange(mem, dt, start, size)

    def check_input(self, rng, shape):
        if any(d <= 0 for d in shape) or shape[0] != 1:
            self.fail("input shape %s: one batch of positive dimensions" % (list(shape),), field="input_shapes")
        n = shape[1] * shape[2] * shape[3]
        if n * DT_BYTES[rng.dtype] != rng.size:
            self.fail("input shape %s holds %d elements, its memory range %d bytes" % (list(shape), n, rng.size),
                      field="input_shapes")
        if rng.memory == MEM_KPU:
            self.kpu_map(rng, shape, "inputs[0]")
        elif rng.memory != MEM_MAIN:
            self.fail("input in %s memory" % MEM_NAMES[rng.memory], field="inputs[0]")

    def kpu_map(self, rng, shape, field):
        """A uint8 NCHW map uploaded to KPU RAM by the width rule (kpu_upload): 64-byte aligned, inside it."""
        if rng.memory != MEM_KPU or rng.dtype != DT_U8 or rng.start % hw.ROW_BYTES:
            self.fail("a KPU map must be uint8 in KPU memory at a 64-byte row, not %s" % rng,
                      node=self.cur and self.cur[0], field=field, type_name=self.cur and self.cur[1])
        n, c, h, w = shape
        if rng.start + n * hw.ram_rows(c, h, w) * hw.ROW_BYTES > hw.RAM_BYTES:
            self.fail("%dx%dx%dx%d map at %d runs past the 2 MiB KPU RAM" % (n, c, h, w, rng.start),
                      node=self.cur and self.cur[0], field=field, type_name=self.cur and self.cur[1])

    def shape(self, f, key, lo=1, limit=SRAM_BYTES):
        s = f[key]
        if any(d < lo for d in s) or _prod(s) > limit:
            self.nfail("%s %s: dimensions must be >= %d and hold at most %d elements" % (key, list(s), lo, limit),
                       key)
        return s

    def holds(self, f, key, count, elem=None):
        """Range f[key] holds count elements of its datatype (or of `elem` bytes)."""
        r = f[key]
        e = elem or DT_BYTES[r.dtype]
        if count * e > r.size:
            self.nfail("%s holds %d bytes, %d elements of %d bytes need %d" % (r, r.size, count, e, count * e), key)

    def dtype(self, f, key, dt):
        if f[key].dtype != dt:
            self.nfail("%s must be %s" % (f[key], "float32" if dt == DT_F32 else "uint8"), key)

    def writable(self, f, key):
        if f[key].memory == MEM_CONST:
            self.nfail("output %s lies in constant memory" % f[key], key)

    def array(self, pos, end, count, dtype, field, what):
        nbytes = count * np.dtype(dtype).itemsize
        if count < 0 or pos + nbytes > end:
            self.nfail("%s: %d bytes at %d run past the body's end at %d" % (what, nbytes, pos, end), field)
        return np.frombuffer(self.data, dtype, count, pos), pos + nbytes

    # ---- one node ----

    def node(self, i, op, tname, start, size) -> Layer:
        end = start + size
        f, pos = {}, start
        for key, code in FIXED[op]:
            nbytes, fmt = _CODE[code]
            if pos + nbytes > end:
                self.nfail("body has %d bytes, %s's fixed fields need more" % (size, tname), key)
            v = struct.unpack_from("<" + fmt, self.data, pos)
            pos += nbytes
            if code == "R":
                v = self.range(pos - nbytes, key)
            elif code not in "SPVQX":
                v = v[0]
            f[key] = v
        L = Layer(i, op, tname, start, size, f)
        getattr(self, "_node_%x" % op)(L, f, pos, end)
        for key, v in f.items():
            if isinstance(v, MemRange):
                L.mem.append((key, v.start, v.size, "w" if key.startswith("output") or key == "main_mem_output"
                              else "r"))
        return L

    def _elementwise(self, L, f, in_dt, out_dt):
        self.dtype(f, "input", in_dt), self.dtype(f, "output", out_dt), self.writable(f, "output")
        n = f["input"].size // DT_BYTES[in_dt]
        self.holds(f, "output", n)
        L.in_dtype, L.out_dtype = _code(in_dt), _code(out_dt)

    def _node_0(self, L, f, pos, end):         # binary (float)
        self._binary(L, f, DT_F32)
        L.fields["op_name"] = self.choice(f, "binary_op", BINARY_OPS)

    def _node_11(self, L, f, pos, end):        # quantized binary
        self._binary(L, f, DT_U8)
        L.fields["op_name"] = self.choice(f, "binary_op", BINARY_OPS)
        for k in ("input_a_shift", "input_b_shift", "output_shift"):
            if not 0 <= f[k] <= 63:
                self.nfail("shift %d outside 0..63" % f[k], k)

    def _binary(self, L, f, dt):
        a, b, o = (self.shape(f, k) for k in ("in_a_shape", "in_b_shape", "out_shape"))
        for k, s in (("in_a_shape", a), ("in_b_shape", b)):
            if any(x != y and x != 1 for x, y in zip(s, o)):
                self.nfail("%s %s does not broadcast to out_shape %s" % (k, list(s), list(o)), k)
        for k, s in (("input_a", a), ("input_b", b), ("output", o)):
            self.dtype(f, k, dt)
            self.holds(f, k, _prod(s))
        self.writable(f, "output")
        L.in_shape = L.out_shape = _chw(o)
        L.in_dtype = L.out_dtype = _code(dt)

    def choice(self, f, key, names):
        if f[key] >= len(names):
            self.nfail("%s %d (0..%d)" % (key, f[key], len(names) - 1), key)
        return names[f[key]]

    def _node_1(self, L, f, pos, end):         # concat
        n = f["inputs_count"]
        if n == 0 or n > MAX_IO:
            self.nfail("inputs_count %d" % n, "inputs_count")
        if pos + 20 * n > end:
            self.nfail("%d inputs need %d bytes" % (n, 20 * n), "inputs_count")
        ins = [self.range(pos + 16 * k, "inputs[%d]" % k) for k in range(n)]
        dims = struct.unpack_from("<%di" % n, self.data, pos + 16 * n)
        if any(d < 0 for d in dims):
            self.nfail("negative concat dimension", "dims")
        inner, outer = f["inner_size"], f["outer_size"]
        for k, (r, d) in enumerate(zip(ins, dims)):
            if inner * d * outer > r.size:
                self.nfail("input %d holds %d bytes, %d x %d x %d needed" % (k, r.size, outer, d, inner),
                           "inputs[%d]" % k)
            L.mem.append(("inputs[%d]" % k, r.start, r.size, "r"))
        total = inner * outer * sum(dims)
        if total > f["output"].size:
            self.nfail("output holds %d bytes, the inputs %d" % (f["output"].size, total), "output")
        self.writable(f, "output")
        L.fields["inputs"], L.fields["dims"] = ins, dims
        L.out_dtype = L.in_dtype = _code(f["output"].dtype)

    def _window(self, f, h, w):
        """(out_h, out_w) of a windowed op from its fields (nncase's get_windowed_output_size), checked."""
        for k in ("filter_h", "filter_w", "stride_h", "stride_w", "dilation_h", "dilation_w"):
            if not 1 <= f[k] <= 1 << 12:
                self.nfail("%s %d" % (k, f[k]), k)
        out = []
        for size, (k, d, s, p) in ((h, ("filter_h", "dilation_h", "stride_h", "padding_h")),
                                   (w, ("filter_w", "dilation_w", "stride_w", "padding_w"))):
            before, after = f[p]
            if not 0 <= before <= 1 << 12 or not 0 <= after <= 1 << 12:
                self.nfail("%s %s" % (p, list(f[p])), p)
            eff = (f[k] - 1) * f[d] + 1
            o = (size + before + after - eff + f[s]) // f[s]
            if o <= 0:
                self.nfail("window %d of size %d gives no output" % (eff, size), k)
            out.append(o)
        return out

    def _conv(self, L, f, pos, end, nhwc, quant, depthwise=False, groups=1, bias_first=False):
        s = self.shape(f, "in_shape")
        n, c = s[0], (s[3] if nhwc else s[1])
        h, w = (s[1], s[2]) if nhwc else (s[2], s[3])
        oc = c if depthwise else f["out_channels"]
        if oc <= 0 or groups <= 0 or c % groups or oc % groups or oc > 1 << 16:
            self.nfail("%d input and %d output channels in %d groups" % (c, oc, groups), "out_channels")
        oh, ow = self._window(f, h, w)
        nw = (1 if depthwise else oc * (c // groups)) * (c if depthwise else 1) * f["filter_h"] * f["filter_w"]
        wt, bt = (np.uint8, "<i4") if quant else ("<f4", "<f4")
        if bias_first:
            f["bias"], pos = self.array(pos, end, oc, bt, "out_channels", "bias")
            f["weights"], pos = self.array(pos, end, nw, wt, "out_channels", "weights")
        else:
            f["weights"], pos = self.array(pos, end, nw, wt, "out_channels", "weights")
            f["bias"], pos = self.array(pos, end, oc, bt, "out_channels", "bias")
        dt = DT_U8 if quant else DT_F32
        self.dtype(f, "input", dt), self.dtype(f, "output", dt), self.writable(f, "output")
        self.holds(f, "input", _prod(s))
        self.holds(f, "output", n * oc * oh * ow)
        if quant and not 0 <= f["output_shift"] <= 63:
            self.nfail("output_shift %d outside 0..63" % f["output_shift"], "output_shift")
        L.fields["out_hw"] = (oh, ow)
        L.in_dtype = L.out_dtype = _code(dt)
        L.in_shape = (c, h, w)
        L.out_shape = (oc, oh, ow)

    def _node_2(self, L, f, pos, end):         # conv2d (float, NCHW)
        self._conv(L, f, pos, end, nhwc=False, quant=False, groups=f["groups"])

    def _node_f(self, L, f, pos, end):         # quantized conv2d (NCHW)
        self._conv(L, f, pos, end, nhwc=False, quant=True, groups=f["groups"], bias_first=True)

    def _node_1001(self, L, f, pos, end):
        self._conv(L, f, pos, end, nhwc=True, quant=False)

    def _node_1002(self, L, f, pos, end):
        self._conv(L, f, pos, end, nhwc=True, quant=False, depthwise=True)

    def _node_1004(self, L, f, pos, end):
        self._conv(L, f, pos, end, nhwc=True, quant=True)

    def _node_1005(self, L, f, pos, end):
        self._conv(L, f, pos, end, nhwc=True, quant=True, depthwise=True)

    def _node_13(self, L, f, pos, end):        # conv2d transpose (float)
        s, o = self.shape(f, "in_shape"), self.shape(f, "out_shape")
        g = f["groups"]
        if g <= 0 or s[1] % g or o[1] % g or s[0] != o[0]:
            self.nfail("%d input and %d output channels in %d groups" % (s[1], o[1], g), "groups")
        self._window(f, s[2], s[3])
        nw = o[1] * (s[1] // g) * f["filter_h"] * f["filter_w"]
        f["weights"], pos = self.array(pos, end, nw, "<f4", "out_shape", "weights")
        f["bias"], pos = self.array(pos, end, o[1], "<f4", "out_shape", "bias")
        for k, sh in (("input", s), ("output", o)):
            self.dtype(f, k, DT_F32)
            self.holds(f, k, _prod(sh))
        self.writable(f, "output")
        L.in_shape, L.out_shape, L.in_dtype, L.out_dtype = _chw(s), _chw(o), "f", "f"

    def _node_3(self, L, f, pos, end):         # dequantize
        self._elementwise(L, f, DT_U8, DT_F32)
        self.scale(f)

    def _node_6(self, L, f, pos, end):         # quantize
        self._elementwise(L, f, DT_F32, DT_U8)
        self.scale(f)

    def scale(self, f):
        zp, sc = f["quant_param"]
        if not np.isfinite(sc) or sc == 0:
            self.nfail("quant scale %r" % sc, "quant_param")

    def _node_4(self, L, f, pos, end):         # matmul (float)
        self._matmul(L, f, DT_F32)
        f["bias"], _ = self.array(pos, end, f["b_cols"], "<f4", "b_cols", "bias")

    def _node_10(self, L, f, pos, end):        # quantized matmul
        self._matmul(L, f, DT_U8)
        f["bias"], _ = self.array(pos, end, f["b_cols"], "<i4", "b_cols", "bias")
        if not 0 <= f["output_shift"] <= 63:
            self.nfail("output_shift %d outside 0..63" % f["output_shift"], "output_shift")

    def _matmul(self, L, f, dt):
        r, k, c = f["a_rows"], f["a_cols"], f["b_cols"]
        for key, v in (("a_rows", r), ("a_cols", k), ("b_cols", c)):
            if not 1 <= v <= SRAM_BYTES:
                self.nfail("%s %d" % (key, v), key)
        for key, n in (("input_a", r * k), ("input_b", k * c), ("output", r * c)):
            self.dtype(f, key, dt)
            self.holds(f, key, n)
        self.writable(f, "output")
        L.in_shape, L.out_shape = (k, r, 1), (c, r, 1)
        L.in_dtype = L.out_dtype = _code(dt)

    def _node_5(self, L, f, pos, end):         # pad
        s = self.shape(f, "in_shape")
        pads = [f["pad%d" % k] for k in range(4)]
        out = []
        for k, (b, a) in enumerate(pads):
            if not -s[k] < b <= 1 << 12 or not -s[k] < a <= 1 << 12 or s[k] + b + a <= 0:
                self.nfail("paddings[%d] %s of a dimension of %d" % (k, [b, a], s[k]), "pad%d" % k)
            out.append(s[k] + b + a)
        if f["input"].dtype != f["output"].dtype:
            self.nfail("input %s and output %s differ in datatype" % (f["input"], f["output"]), "output")
        self.holds(f, "input", _prod(s))
        self.holds(f, "output", _prod(out))
        self.writable(f, "output")
        L.fields["paddings"], L.fields["out_shape"] = pads, tuple(out)
        L.in_shape, L.out_shape = _chw(s), _chw(out)
        L.in_dtype = L.out_dtype = _code(f["input"].dtype)

    def _node_7(self, L, f, pos, end):         # reduce
        s, o = self.shape(f, "in_shape"), self.shape(f, "out_shape")
        if any(y != x and y != 1 for x, y in zip(s, o)):
            self.nfail("out_shape %s is not a reduction of %s" % (list(o), list(s)), "out_shape")
        self.choice(f, "reduce_op", REDUCE_OPS)
        for k, sh in (("input", s), ("output", o)):
            self.dtype(f, k, DT_F32)
            self.holds(f, k, _prod(sh))
        self.writable(f, "output")
        L.in_shape, L.out_shape, L.in_dtype, L.out_dtype = _chw(s), _chw(o), "f", "f"

    def _node_8(self, L, f, pos, end):         # reduce_window2d (NCHW)
        self._reduce_window(L, f, nhwc=False)

    def _node_1003(self, L, f, pos, end):      # cpu reduce_window2d (NHWC)
        self._reduce_window(L, f, nhwc=True)

    def _reduce_window(self, L, f, nhwc):
        s = self.shape(f, "in_shape")
        ops = REDUCE_OPS[:3] if nhwc else REDUCE_OPS        # the CPU kernel has no sum
        self.choice(f, "reduce_op", ops)
        h, w, c = (s[1], s[2], s[3]) if nhwc else (s[2], s[3], s[1])
        oh, ow = self._window(f, h, w)
        for k, n in (("input", _prod(s)), ("output", s[0] * c * oh * ow)):
            self.dtype(f, k, DT_F32)
            self.holds(f, k, n)
        self.writable(f, "output")
        L.fields["out_hw"] = (oh, ow)
        L.in_shape, L.out_shape, L.in_dtype, L.out_dtype = (c, h, w), (c, oh, ow), "f", "f"

    def _node_9(self, L, f, pos, end):         # memory copy
        if f["output"].size < f["input"].size:
            self.nfail("output %s is smaller than input %s" % (f["output"], f["input"]), "output")
        self.writable(f, "output")
        L.in_dtype = L.out_dtype = _code(f["input"].dtype)

    def _node_a(self, L, f, pos, end):         # resize image
        s = self.shape(f, "in_shape")
        oh, ow = f["out_h"], f["out_w"]
        if not 1 <= oh <= 1 << 14 or not 1 <= ow <= 1 << 14:
            self.nfail("output size %dx%d" % (ow, oh), "out_h")
        self.choice(f, "mode", RESIZE_MODES)
        if f["input"].dtype != f["output"].dtype:
            self.nfail("input %s and output %s differ in datatype" % (f["input"], f["output"]), "output")
        self.holds(f, "input", _prod(s))
        self.holds(f, "output", s[0] * s[1] * oh * ow)
        self.writable(f, "output")
        L.in_shape, L.out_shape = _chw(s), (s[1], oh, ow)
        L.in_dtype = L.out_dtype = _code(f["input"].dtype)

    def _node_b(self, L, f, pos, end):         # softmax
        inner, outer = f["inner_size"], f["outer_size"]
        if inner <= 0 or outer <= 0 or inner * outer > SRAM_BYTES:
            self.nfail("inner_size %d, outer_size %d" % (inner, outer), "inner_size")
        for k in ("input", "output"):
            self.dtype(f, k, DT_F32)
            self.holds(f, k, inner * outer)
        self.writable(f, "output")
        L.in_shape = L.out_shape = (inner * outer, 1, 1)
        L.in_dtype = L.out_dtype = "f"

    def _node_c(self, L, f, pos, end):         # transpose
        s = self.shape(f, "in_shape")
        perm = f["perm"]
        if sorted(perm) != [0, 1, 2, 3]:
            self.nfail("perm %s is not a permutation of 0..3" % (list(perm),), "perm")
        if f["input"].dtype != f["output"].dtype:
            self.nfail("input %s and output %s differ in datatype" % (f["input"], f["output"]), "output")
        self.holds(f, "input", _prod(s))
        self.holds(f, "output", _prod(s))
        self.writable(f, "output")
        out = tuple(s[p] for p in perm)
        L.in_shape, L.out_shape = _chw(s), _chw(out)
        L.in_dtype = L.out_dtype = _code(f["input"].dtype)

    def _node_d(self, L, f, pos, end):         # strided slice
        s = self.shape(f, "in_shape")
        out = []
        for k in range(4):
            b, e, st = f["begin"][k], f["end"][k], f["strides"][k]
            if st == 0 or not -1 <= b <= s[k] or not -1 <= e <= s[k]:
                self.nfail("dimension %d: begin %d, end %d, stride %d of %d" % (k, b, e, st, s[k]), "begin")
            n = len(range(b, e, st))
            if st < 0 and (b >= s[k] or b < 0):
                self.nfail("dimension %d: begin %d outside 0..%d" % (k, b, s[k] - 1), "begin")
            if n and st > 0 and b < 0:
                self.nfail("dimension %d: begin %d" % (k, b), "begin")
            out.append(n)
        if f["input"].dtype != f["output"].dtype:
            self.nfail("input %s and output %s differ in datatype" % (f["input"], f["output"]), "output")
        self.holds(f, "input", _prod(s))
        self.holds(f, "output", _prod(out))
        self.writable(f, "output")
        L.fields["out_shape"] = tuple(out)
        L.in_shape, L.out_shape = _chw(s), _chw(out)
        L.in_dtype = L.out_dtype = _code(f["input"].dtype)

    def _node_e(self, L, f, pos, end):         # unary
        self._elementwise(L, f, DT_F32, DT_F32)
        L.fields["op_name"] = self.choice(f, "unary_op", UNARY_OPS)

    def _node_12(self, L, f, pos, end):        # table lookup
        self._elementwise(L, f, DT_U8, DT_U8)
        if f["table"].size < 256:
            self.nfail("table %s holds %d bytes, a uint8 lookup needs 256" % (f["table"], f["table"].size),
                       "table")

    def _node_14(self, L, f, pos, end):        # nnil unary method: the rest of the body is the program
        self._elementwise(L, f, DT_F32, DT_F32)
        L.fields["program"] = _nnil_program(self, self.data[pos:end])

    def _node_2001(self, L, f, pos, end):      # kpu upload
        s = self.shape(f, "in_shape")
        self.dtype(f, "input", DT_U8)
        self.holds(f, "input", _prod(s))
        self.kpu_map(f["output"], s, "output")
        L.in_shape = L.out_shape = _chw(s)

    def _node_2002(self, L, f, pos, end):      # kpu conv2d
        if pos + R.LAYER_REGS_BYTES > end:
            self.nfail("body has %d bytes, the layer registers need %d more" % (end - pos, R.LAYER_REGS_BYTES),
                       "layer")
        regs = R.decode_layer_regs(memoryview(self.data)[pos:pos + R.LAYER_REGS_BYTES])
        pos += R.LAYER_REGS_BYTES
        L.regs = regs
        if f["batches"] != 1:
            self.nfail("batches %d: the MaixPy runtime runs one" % f["batches"], "batches")
        problem = conv_regs_problem(regs)
        if problem:
            self.nfail(*problem)
        ic, ih, iw = regs.in_shape
        oc, oh, ow = regs.out_shape
        # the layout registers must place both maps inside KPU RAM (the SDK's width rule, as V3's reader checks)
        for addr, shape, key in ((regs.image_addr.image_src_addr, (1, ic, ih, iw), "image_src_addr"),
                                 (regs.image_addr.image_dst_addr, (1, oc, oh, ow), "image_dst_addr")):
            self.kpu_map(MemRange(MEM_KPU, DT_U8, addr * hw.ROW_BYTES, 0), shape, key)
        c, wb = regs.kernel_calc_type_cfg, regs.write_back_cfg
        for (g, rl, cs), shape, key in (((c.coef_group, c.row_switch_addr, c.channel_switch_addr), (ih, iw),
                                         "coef_group"),
                                        ((wb.wb_group, wb.wb_row_switch_addr, wb.wb_channel_switch_addr), (oh, ow),
                                         "wb_group")):
            lay = hw.row_layout(shape[1])
            if (g, rl, cs) != (lay.groups, lay.row_len, lay.row_len * shape[0]):
                self.nfail("layout (%d channels per row, %d rows per line, channel step %d) is not the width "
                           "rule's for a %d-wide map" % (g, rl, cs, shape[1]), key)
        # BN table, activation table and weights each follow a skip stored in the address registers
        skips = (regs.kernel_pool_type_cfg.bwsx_base_addr, regs.kernel_calc_type_cfg.active_addr,
                 regs.kernel_load_cfg.para_start_addr)
        pos += skips[0]
        bn, pos = self.array(pos, end, oc * R.BN_ENTRY_BYTES, np.uint8, "bwsx_base_addr", "BN table")
        L.bn = R.bn_arrays(bn.data, oc)
        pos += skips[1]
        act, pos = self.array(pos, end, R.ACT_TABLE_BYTES, np.uint8, "active_addr", "activation table")
        L.act = R.decode_act(act.data)
        pos += skips[2]
        k = regs.kernel
        nw = hw.weight_count(k, ic, oc, regs.depthwise)
        w, pos = self.array(pos, end, nw, np.uint8, "para_start_addr", "%d weights" % nw)
        L.weights = w.reshape((oc, k, k) if regs.depthwise else (oc, ic, k, k))
        out = f["main_mem_output"]
        if out.size:
            self.writable(f, "main_mem_output")
            if out.size != oc * oh * ow:
                self.nfail("main_mem_output holds %d bytes, the %dx%dx%d output %d" % (out.size, oc, oh, ow,
                                                                                        oc * oh * ow),
                           "main_mem_output")
        L.fields["flags"] = 1 if out.size else 0      # as V3's K210_CONV flags bit 0: also written to main memory
        L.fields["out"] = out.start
        L.in_shape, L.out_shape = (ic, ih, iw), (oc, oh, ow)


NNIL_OPS = {0x00: "nop", 0x01: "dup", 0x02: "pop", 0x03: "lda_0", 0x04: "ldc_r4_0", 0x05: "ldc_r4_1",
            0x06: "ldc_r4", 0x20: "abs", 0x21: "ceil", 0x22: "cos", 0x23: "exp", 0x24: "floor", 0x25: "log",
            0x26: "neg", 0x27: "rsqrt", 0x28: "sin", 0x29: "square", 0x40: "add", 0x41: "sub", 0x42: "mul",
            0x43: "div", 0x44: "min", 0x45: "max", 0x80: "clamp", 0xA0: "ret"}
NNIL_STACK = 64            # nnil_evalstack's depth
_NNIL_POPS = {"pop": (1, 0), "dup": (1, 2), "lda_0": (0, 1), "ldc_r4_0": (0, 1), "ldc_r4_1": (0, 1),
              "ldc_r4": (0, 1), "clamp": (3, 1), "ret": (1, 0), "nop": (0, 0)}


def _nnil_program(p, code: bytes) -> list:
    """[(op name, constant)] of an nnil program up to its ret, checked to keep the stack within 0..64."""
    out, depth, k = [], 0, 0
    while k < len(code):
        name = NNIL_OPS.get(code[k])
        if name is None:
            p.nfail("nnil opcode %#x at byte %d" % (code[k], k), "program")
        k += 1
        const = None
        if name == "ldc_r4":
            if k + 4 > len(code):
                p.nfail("nnil ldc_r4 at byte %d runs past the body" % (k - 1), "program")
            const = struct.unpack_from("<f", code, k)[0]
            k += 4
        pops, pushes = _NNIL_POPS.get(name, (1, 1) if code[k - 1] < 0x40 else (2, 1))
        if depth < pops or depth - pops + pushes > NNIL_STACK:
            p.nfail("nnil stack under- or overflow at byte %d (%s)" % (k - 1, name), "program")
        depth += pushes - pops
        out.append((name, const))
        if name == "ret":
            return out
    p.nfail("nnil program has no ret", "program")


def _prod(s) -> int:
    n = 1
    for d in s:
        n *= int(d)
    return n


def _chw(s) -> tuple:
    """A 4-D NCHW shape as (c, h, w), the batch folded into channels."""
    return (int(s[0]) * int(s[1]), int(s[2]), int(s[3]))


def _code(dt) -> str:
    return "f" if dt == DT_F32 else "B"


def _trace_shapes(m: KmodelV4):
    """Carry shapes through memory: an elementwise node's output has its input's shape; each output range gets
    the shape of the node that last wrote it (else (count, 1, 1))."""
    producers = {}
    first = m.inputs[0]
    producers[(first.memory, first.start)] = m.input_shape if not m.input_is_float else None
    for L in m.layers:
        f = L.fields
        if L.type in (0x03, 0x06, 0x0E, 0x12, 0x14, 0x09):
            src = f["input"]
            shp = producers.get((src.memory, src.start))
            n = src.size // DT_BYTES[src.dtype]
            L.in_shape = L.out_shape = shp if shp is not None and _prod(shp) == n else (n, 1, 1)
        for key, v in f.items():
            if isinstance(v, MemRange) and (key.startswith("output") or key == "main_mem_output") and v.size:
                producers[(v.memory, v.start)] = L.out_shape
    m.output_shapes, m.output_typecodes = [], []
    for o in m.outputs:
        n = o.size // DT_BYTES[o.dtype]
        shp = producers.get((o.memory, o.start))
        m.output_shapes.append(shp if shp is not None and _prod(shp) == n else (n, 1, 1))
        m.output_typecodes.append(_code(o.dtype))
