"""kmodel V3 reader: header, outputs, every layer body decoded into named fields, validated against the file.
(V4 files go to reader_v4 from parse().)

Every size, count and offset is checked against the file length (and main memory against main_mem_usage)
BEFORE anything is allocated or sliced, so a corrupted file gives one KmodelError naming layer and field,
never a crash, a hang or a huge allocation. Arrays (weights, tables) are read-only views into the file bytes.
"""
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from host_tools.k210 import kpu as hw
from host_tools.k210 import registers as R
from host_tools.k210.arith import POOL_TYPES
from host_tools.k210.bigendian import LDMK
from host_tools.k210.errors import ERR_KMODEL_FORMAT, ERR_NO_MEM, ERR_READ_FILE
from host_tools.k210.firmware import SRAM_BYTES
from host_tools.kmodel import identify
from host_tools.kmodel.errors import KmodelError

HEADER = struct.Struct("<7I")
LAST_BODY_SLACK = 7                # real files end up to 7 bytes short of the last body's padded size

LAYER_TYPES = {
    0: "INVALID", 1: "ADD", 2: "QUANTIZED_ADD", 3: "GLOBAL_MAX_POOL2D", 4: "QUANTIZED_GLOBAL_MAX_POOL2D",
    5: "GLOBAL_AVERAGE_POOL2D", 6: "QUANTIZED_GLOBAL_AVERAGE_POOL2D", 7: "MAX_POOL2D", 8: "QUANTIZED_MAX_POOL2D",
    9: "AVERAGE_POOL2D", 10: "QUANTIZED_AVERAGE_POOL2D", 11: "QUANTIZE", 12: "DEQUANTIZE", 13: "REQUANTIZE",
    14: "L2_NORMALIZATION", 15: "SOFTMAX", 16: "CONCAT", 17: "QUANTIZED_CONCAT", 18: "FULLY_CONNECTED",
    19: "QUANTIZED_FULLY_CONNECTED", 20: "TENSORFLOW_FLATTEN", 21: "QUANTIZED_TENSORFLOW_FLATTEN",
    22: "RESIZE_NEAREST_NEIGHBOR", 23: "QUANTIZED_RESIZE_NEAREST_NEIGHBOR", 24: "CHANNELWISE_DEQUANTIZE",
    25: "LOGISTIC", 10240: "K210_CONV", 10241: "K210_ADD_PADDING", 10242: "K210_REMOVE_PADDING",
    10243: "K210_UPLOAD",
}
K210_CONV, K210_ADD_PADDING, K210_REMOVE_PADDING, K210_UPLOAD = 10240, 10241, 10242, 10243
FULLY_CONNECTED = 18
# In LAYER_TYPES but not run by the stock SDK runtime (it asserts); 21 runs only on Maix-EMC's patched driver.
NOT_IN_STOCK_SDK = {0, 3, 4, 6, 7, 10, 19, 21}
NOT_RUNNABLE = {0, 3, 4, 6, 7, 10, 19}

_SHAPE = ("in_w", "in_h", "in_c")
# type -> u32/i32/f32 fixed fields in body order ('I' u32, 'i' i32, 'f' f32)
BODY_FIELDS = {
    1: ("IIIII", ("flags", "in_a", "in_b", "out", "count")),
    2: ("IIIIIiiiiiiiii", ("flags", "in_a", "in_b", "out", "count", "a_offset", "a_mul", "a_shift",
                           "b_offset", "b_mul", "b_shift", "out_offset", "out_mul", "out_shift")),
    5: ("IIIII", ("flags", "in", "out", "kernel_size", "channels")),
    8: ("I" * 15, ("flags", "in", "out") + _SHAPE + ("out_w", "out_h", "out_c", "kernel_w", "kernel_h",
                                                    "stride_w", "stride_h", "pad_w", "pad_h")),
    9: ("I" * 16, ("flags", "in", "out") + _SHAPE + ("out_w", "out_h", "out_c", "kernel_w", "kernel_h",
                                                    "stride_w", "stride_h", "pad_w", "pad_h", "act")),
    11: ("IIIIff", ("flags", "in", "out", "count", "scale", "bias")),
    12: ("IIIIff", ("flags", "in", "out", "count", "scale", "bias")),
    13: ("IIII", ("flags", "in", "out", "count")),
    14: ("IIII", ("flags", "in", "out", "channels")),
    15: ("IIII", ("flags", "in", "out", "channels")),
    16: ("III", ("flags", "out", "input_count")),
    17: ("III", ("flags", "out", "input_count")),
    18: ("IIIIII", ("flags", "in", "out", "in_channels", "out_channels", "act")),
    20: ("IIIIII", ("flags", "in", "out", "w", "h", "c")),
    21: ("IIIIII", ("flags", "in", "out", "w", "h", "c")),
    22: ("I" * 9, ("flags", "in", "out") + _SHAPE + ("out_w", "out_h", "align_corners")),
    23: ("I" * 9, ("flags", "in", "out") + _SHAPE + ("out_w", "out_h", "align_corners")),
    24: ("IIIII", ("flags", "in", "out", "channels", "channel_size")),
    25: ("IIII", ("flags", "in", "out", "channels")),
    K210_CONV: ("IIIIII", ("flags", "out", "layer_offset", "weights_offset", "bn_offset", "act_offset")),
    K210_ADD_PADDING: ("IIII", ("flags", "in", "kpu_out", "channels")),
    K210_REMOVE_PADDING: ("IIII", ("flags", "in", "out", "channels")),
    K210_UPLOAD: ("IIIIII", ("flags", "in", "kpu_out", "w", "h", "c")),
}
ACTIVATIONS = {0: "linear", 1: "relu", 2: "relu6"}


@dataclass
class Layer:
    """One decoded layer. Body fields are attributes too (layer.count, layer.in_c, ...)."""
    index: int
    type: int
    type_name: str
    offset: int                      # file offset of the body
    body_size: int
    fields: dict
    # main-memory accesses: (field, address, bytes, 'r' | 'w'); the emulator and netinfo use them
    mem: list = field(default_factory=list)
    in_shape: tuple = None           # (c, h, w) of the main input as far as the file states it
    out_shape: tuple = None
    in_dtype: str = "B"              # 'B' uint8 or 'f' float32
    out_dtype: str = "B"
    # K210_CONV only
    regs: R.LayerRegs = None
    bn: tuple = None                 # (mul, add, shift) int64 arrays, one per output channel
    act: list = None                 # 16 regs.ActSegment
    weights: np.ndarray = None       # (OC, IC, k, k) or depthwise (C, k, k), uint8 or uint16 (view)

    def __getattr__(self, name):
        f = self.__dict__.get("fields")
        if f is not None and name in f:
            return f[name]
        raise AttributeError(name)

    @property
    def stock_sdk(self) -> bool:
        return self.type not in NOT_IN_STOCK_SDK


@dataclass
class Output:
    address: int
    size: int


@dataclass
class Kmodel:
    name: str
    data: bytes
    version: int
    flags: int
    arch: int
    max_start_address: int
    main_mem_usage: int
    outputs: list
    layers: list
    input_shape: tuple = None        # (c, h, w); FC-first models: (in_channels, 1, 1)
    input_is_float: bool = False
    output_shapes: list = None       # [(c, h, w)] as the tensors are shaped
    output_typecodes: list = None    # ['f' | 'B'] per the firmware: from the LAST layer's type
    fmap_shapes: list = None         # [(ch, h, w)] as the firmware's fmap reports them (w(), h(), ch())

    @property
    def weight_bits(self) -> int:
        return 8 if self.flags & 1 else 16

    @property
    def size(self) -> int:
        return len(self.data)


def load(path) -> Kmodel:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise KmodelError(ERR_READ_FILE, "cannot read: %s" % e.strerror, name=str(path)) from None
    return parse(data, name=str(path))


def parse(data: bytes, name: str = "<bytes>"):
    """A Kmodel (V3), or a reader_v4.KmodelV4 for a V4 file (nncase v0.2)."""
    data = bytes(data)
    if len(data) >= 8 and struct.unpack_from("<2I", data) == (LDMK, 4):
        from host_tools.kmodel import reader_v4      # it builds on this module's Layer
        return reader_v4.parse(data, name)
    return _Parser(data, name).model()


class _Parser:
    def __init__(self, data: bytes, name: str):
        self.data = data
        self.n = len(data)
        self.name = name

    def fail(self, detail, layer=None, field=None, code=ERR_KMODEL_FORMAT, type_name=None, version=None):
        raise KmodelError(code, detail, name=self.name, layer=layer, field=field, type_name=type_name,
                          version=version)

    def model(self) -> Kmodel:
        self.check_version()
        if self.n < HEADER.size:
            self.fail("file is %d bytes, shorter than the 28-byte V3 header" % self.n, field="header")
        version, flags, arch, n_layers, max_start, main_mem, n_out = HEADER.unpack_from(self.data, 0)
        if arch != 0:
            self.fail("arch is %d, kmodel V3 for the K210 has 0" % arch, field="arch")
        if main_mem > SRAM_BYTES:
            self.fail("main_mem_usage %d bytes exceeds the K210's %d bytes of RAM" % (main_mem, SRAM_BYTES),
                      field="main_mem_usage", code=ERR_NO_MEM)
        if n_layers == 0:
            self.fail("layers_length is 0", field="layers_length")
        pos = HEADER.size
        if pos + 8 * n_out > self.n:
            self.fail("%d outputs need %d bytes, the file has %d" % (n_out, 8 * n_out, self.n - pos),
                      field="output_count")
        outputs = []
        for i in range(n_out):
            a, s = struct.unpack_from("<2I", self.data, pos + 8 * i)
            if a + s > main_mem:
                self.fail("output %d at %d + %d bytes lies outside main memory (%d bytes)" % (i, a, s, main_mem),
                          field="outputs[%d]" % i)
            outputs.append(Output(a, s))
        pos += 8 * n_out
        if pos + 8 * n_layers > self.n:
            self.fail("%d layer headers need %d bytes, the file has %d" % (n_layers, 8 * n_layers, self.n - pos),
                      field="layers_length")
        heads = [struct.unpack_from("<2I", self.data, pos + 8 * i) for i in range(n_layers)]
        pos += 8 * n_layers
        self.main_mem = main_mem
        self.weight_bits = 8 if flags & 1 else 16
        layers = []
        for i, (t, size) in enumerate(heads):
            tname = LAYER_TYPES.get(t)
            if size == 0:
                self.fail("body_size is 0", layer=i, field="body_size", type_name=tname)
            end = pos + size
            last = i == n_layers - 1
            if end > self.n + (LAST_BODY_SLACK if last else 0):
                self.fail("body at %d + %d bytes runs past the end of the %d-byte file" % (pos, size, self.n),
                          layer=i, field="body_size", type_name=tname)
            if tname is None:
                self.fail("unknown layer type %d" % t, layer=i, field="type")
            if t in NOT_RUNNABLE:
                self.fail("layer type %s is not run by the K210 runtime" % tname, layer=i, field="type",
                          type_name=tname)
            layers.append(self.layer(i, t, pos, min(end, self.n), size))
            pos = end
        if layers[0].type not in (K210_CONV, FULLY_CONNECTED):
            self.fail("the first layer must be K210_CONV or FULLY_CONNECTED, not %s" % layers[0].type_name,
                      layer=0, field="type", type_name=layers[0].type_name)
        m = Kmodel(self.name, self.data, version, flags, arch, max_start, main_mem, outputs, layers)
        _trace_shapes(m)
        return m

    def check_version(self):
        if self.n >= 4 and struct.unpack_from("<I", self.data, 0)[0] == 3:
            return
        if not self.n:
            self.fail("file is empty", field="header")
        what = identify.identify(self.data)
        self.fail(what.text, field="version", code=what.code, version=what.version)

    # ---- one layer ----

    def layer(self, i, t, start, end, size) -> Layer:
        tname = LAYER_TYPES[t]
        fmt, names = BODY_FIELDS[t]
        need = 4 * len(fmt)
        if end - start < need:
            self.fail("body has %d bytes, %s needs %d" % (end - start, tname, need), layer=i, field="body_size",
                      type_name=tname)
        values = struct.unpack_from("<" + fmt, self.data, start)
        L = Layer(i, t, tname, start, size, dict(zip(names, values)))
        self.cur = (i, tname, start, end)
        getattr(self, "_body_%d" % t, self._body_generic)(L, start + need, end)
        for fname, addr, nbytes, _ in L.mem:
            if addr + nbytes > self.main_mem:
                self.fail("main memory %d + %d bytes lies past main_mem_usage %d" % (addr, nbytes, self.main_mem),
                          layer=i, field=fname, type_name=tname)
        return L

    def lfail(self, detail, field, code=ERR_KMODEL_FORMAT):
        i, tname, _, _ = self.cur
        self.fail(detail, layer=i, field=field, code=code, type_name=tname)

    def need_in_body(self, off, nbytes, field, what):
        _, _, start, end = self.cur
        if off < start or off + nbytes > end:
            self.lfail("%s at file offset %d + %d bytes lies outside the layer body [%d, %d)"
                       % (what, off, nbytes, start, end), field)

    def _body_generic(self, L, tail, end):
        f, t = L.fields, L.type
        rd = lambda fld, n: L.mem.append((fld, f[fld], n, "r"))   # noqa: E731
        wr = lambda fld, n: L.mem.append((fld, f[fld], n, "w"))   # noqa: E731
        if t == 1:
            for k in ("in_a", "in_b"):
                rd(k, 4 * f["count"])
            wr("out", 4 * f["count"])
        elif t == 2:
            n = -(-f["count"] // 8) * 8      # the SDK loops over count rounded up to 8
            rd("in_a", n), rd("in_b", n), wr("out", n)
            for k in ("a_shift", "b_shift", "out_shift"):
                if not 0 <= f[k] <= 63:
                    self.lfail("shift %d outside 0..63" % f[k], k)
        elif t == 5:
            if f["kernel_size"] == 0:
                self.lfail("kernel_size is 0", "kernel_size")
            rd("in", 4 * f["kernel_size"] * f["channels"]), wr("out", 4 * f["channels"])
        elif t in (8, 9):
            e = 1 if t == 8 else 4
            for k in ("in_w", "in_h", "in_c", "out_w", "out_h", "out_c", "kernel_w", "kernel_h"):
                if f[k] == 0:
                    self.lfail("%s is 0" % k, k)
            for k, lim in (("kernel_w", f["in_w"]), ("kernel_h", f["in_h"]), ("pad_w", f["kernel_w"]),
                           ("pad_h", f["kernel_h"]), ("stride_w", 1 << 16), ("stride_h", 1 << 16)):
                if f[k] > lim:
                    self.lfail("%s %d is larger than %d" % (k, f[k], lim), k)
            if f["out_c"] > f["in_c"]:
                self.lfail("out_c %d exceeds in_c %d" % (f["out_c"], f["in_c"]), "out_c")
            rd("in", e * f["in_w"] * f["in_h"] * f["in_c"]), wr("out", e * f["out_w"] * f["out_h"] * f["out_c"])
            L.in_shape, L.out_shape = (f["in_c"], f["in_h"], f["in_w"]), (f["out_c"], f["out_h"], f["out_w"])
        elif t == 11:
            rd("in", 4 * f["count"]), wr("out", f["count"])
        elif t == 12:
            rd("in", f["count"]), wr("out", 4 * f["count"])
        elif t == 13:
            self.need_in_body(tail, 256, "body_size", "requantize table")
            L.fields["table"] = np.frombuffer(self.data, np.uint8, 256, tail)
            rd("in", f["count"]), wr("out", f["count"])
        elif t in (14, 15, 25):
            rd("in", 4 * f["channels"]), wr("out", 4 * f["channels"])
        elif t in (16, 17):
            n = f["input_count"]
            self.need_in_body(tail, 8 * n, "input_count", "%d input ranges" % n)
            ranges = [struct.unpack_from("<2I", self.data, tail + 8 * k) for k in range(n)]
            L.fields["inputs"] = ranges
            for k, (a, s) in enumerate(ranges):
                L.mem.append(("inputs[%d]" % k, a, s, "r"))
            wr("out", sum(s for _, s in ranges))
        elif t == 18:
            ic, oc = f["in_channels"], f["out_channels"]
            if ic == 0 or oc == 0:
                self.lfail("in_channels and out_channels must be > 0", "in_channels" if ic == 0 else "out_channels")
            self.need_in_body(tail, 4 * (ic * oc + oc), "out_channels", "%dx%d float weights + bias" % (oc, ic))
            L.fields["weights"] = np.frombuffer(self.data, "<f4", ic * oc, tail).reshape(oc, ic)
            L.fields["bias"] = np.frombuffer(self.data, "<f4", oc, tail + 4 * ic * oc)
            rd("in", 4 * ic), wr("out", 4 * oc)
            L.in_shape, L.out_shape, L.in_dtype, L.out_dtype = (ic, 1, 1), (oc, 1, 1), "f", "f"
        elif t in (20, 21):
            e = 4 if t == 20 else 1
            n = f["w"] * f["h"] * f["c"]
            rd("in", e * n), wr("out", e * n)
            L.in_shape, L.out_shape = (f["c"], f["h"], f["w"]), (n, 1, 1)
        elif t in (22, 23):
            e = 4 if t == 22 else 1
            for k in ("in_w", "in_h", "out_w", "out_h"):
                if f[k] == 0:
                    self.lfail("%s is 0" % k, k)
            rd("in", e * f["in_w"] * f["in_h"] * f["in_c"]), wr("out", e * f["out_w"] * f["out_h"] * f["in_c"])
            L.in_shape, L.out_shape = (f["in_c"], f["in_h"], f["in_w"]), (f["in_c"], f["out_h"], f["out_w"])
        elif t == 24:
            c = f["channels"]
            self.need_in_body(tail, 8 * c, "channels", "%d scale/bias pairs" % c)
            qp = np.frombuffer(self.data, "<f4", 2 * c, tail).reshape(c, 2)
            L.fields["scales"], L.fields["biases"] = qp[:, 0], qp[:, 1]
            rd("in", c * f["channel_size"]), wr("out", 4 * c * f["channel_size"])
        elif t == K210_ADD_PADDING:
            rd("in", f["channels"])
            self.kpu_rows(f["kpu_out"], -(-f["channels"] // 4) * 4, "kpu_out")
            L.in_shape, L.out_shape = (f["channels"], 1, 1), (f["channels"], 4, 4)
        elif t == K210_REMOVE_PADDING:
            c = f["channels"]
            rd("in", 16 * (c - 1) + 1 if c else 0), wr("out", c)
            L.in_shape, L.out_shape = (c, 4, 4), (c, 1, 1)
        elif t == K210_UPLOAD:
            c, h, w = f["c"], f["h"], f["w"]
            if w == 0 or h == 0 or c == 0:
                self.lfail("width, height and channels must be > 0", "w")
            rd("in", w * h * c)
            self.kpu_rows(f["kpu_out"], hw.ram_rows(c, h, w), "kpu_out")
            L.in_shape = L.out_shape = (c, h, w)
        dt = {1: "ff", 5: "ff", 9: "ff", 11: "fB", 12: "Bf", 14: "ff", 15: "ff", 16: "ff", 20: "ff", 22: "ff",
              24: "Bf", 25: "ff"}.get(t)
        if dt:
            L.in_dtype, L.out_dtype = dt

    def kpu_rows(self, addr, rows, field):
        if addr + rows > hw.RAM_ROWS:
            self.lfail("KPU RAM rows %d + %d run past the 2 MiB KPU RAM (%d rows)" % (addr, rows, hw.RAM_ROWS),
                       field)

    def _body_10240(self, L, tail, end):
        f = L.fields
        self.need_in_body(f["layer_offset"], R.LAYER_REGS_BYTES, "layer_offset", "layer registers")
        regs = R.decode_layer_regs(memoryview(self.data)[f["layer_offset"]:f["layer_offset"] + 96])
        L.regs = regs
        problem = conv_regs_problem(regs)
        if problem:
            self.lfail(*problem)
        ic, ih, iw = regs.in_shape
        oc, oh, ow = regs.out_shape
        dw = regs.depthwise
        k = regs.kernel
        # KPU RAM: input and output maps must lie inside the 2 MiB as the layout registers place them
        c = regs.kernel_calc_type_cfg
        self.check_layout(regs.image_addr.image_src_addr, (ic, ih, iw), c.coef_group, c.row_switch_addr,
                          c.channel_switch_addr, ("coef_group", "row_switch_addr", "channel_switch_addr"))
        wb = regs.write_back_cfg
        self.check_layout(regs.image_addr.image_dst_addr, (oc, oh, ow), wb.wb_group, wb.wb_row_switch_addr,
                          wb.wb_channel_switch_addr, ("wb_group", "wb_row_switch_addr", "wb_channel_switch_addr"))
        wbytes = self.weight_bits // 8
        nw = hw.weight_count(k, ic, oc, dw)
        self.need_in_body(f["weights_offset"], nw * wbytes, "weights_offset", "%d weights" % nw)
        wt = np.dtype("u1") if wbytes == 1 else np.dtype("<u2")
        w = np.frombuffer(self.data, wt, nw, f["weights_offset"])
        L.weights = w.reshape((oc, k, k) if dw else (oc, ic, k, k))
        self.need_in_body(f["bn_offset"], 8 * oc, "bn_offset", "BN table of %d channels" % oc)
        L.bn = R.bn_arrays(memoryview(self.data)[f["bn_offset"]:f["bn_offset"] + 8 * oc], oc)
        self.need_in_body(f["act_offset"], R.ACT_TABLE_BYTES, "act_offset", "activation table")
        L.act = R.decode_act(memoryview(self.data)[f["act_offset"]:f["act_offset"] + R.ACT_TABLE_BYTES])
        if f["flags"] & 1:
            L.mem.append(("out", f["out"], oc * oh * ow, "w"))
        L.in_shape, L.out_shape = (ic, ih, iw), (oc, oh, ow)

    def check_layout(self, addr, shape, groups, row_len, ch_switch, names):
        c, h, w = shape
        if groups not in (1, 2, 4):
            self.lfail("%s is %d: 1, 2 or 4 channels share a 64-byte row" % (names[0], groups), names[0])
        pitch = 64 // groups
        if row_len == 0 or w > (pitch if groups > 1 else 64 * row_len):
            self.lfail("%s %d rows per line cannot hold a %d-wide map with %d channels per row"
                       % (names[1], row_len, w, groups), names[1])
        if -(-c // groups) > 1 and ch_switch < row_len * h:
            self.lfail("%s %d is smaller than one channel group (%d rows)" % (names[2], ch_switch, row_len * h),
                       names[2])
        last = addr * 64 + (-(-c // groups) - 1) * ch_switch * 64 + (min(c, groups) - 1) * pitch \
            + (h - 1) * row_len * 64 + w
        if last > hw.RAM_BYTES:
            self.lfail("the %dx%dx%d map at row %d runs past the 2 MiB KPU RAM" % (c, h, w, addr), names[2])


def conv_regs_problem(regs):
    """(message, field) of the first thing the KPU cannot run in a conv layer's registers (V3 and V4), or None."""
    ic, ih, iw = regs.in_shape
    oc, oh, ow = regs.out_shape
    kt = regs.kernel_pool_type_cfg.kernel_type
    if kt not in (0, 1):
        return "kernel_type %d: the KPU runs 1x1 (0) and 3x3 (1) kernels" % kt, "kernel_type"
    pool = regs.kernel_pool_type_cfg.pool_type
    if pool not in POOL_TYPES:
        return "pool_type %d: the KPU has pool types 0-9" % pool, "pool_type"
    if ih < 2 or iw < 2:
        # a 3x3 window needs a neighbour; nncase's own limit is 4
        return "input %dx%d is smaller than the KPU's minimum" % (iw, ih), "i_row_wid"
    eh, ew = hw.pooled_size(ih, iw, pool)
    if (oh, ow) != (eh, ew):
        return ("output %dx%d, but pool type %d of a %dx%d input gives %dx%d" % (ow, oh, pool, iw, ih, ew, eh),
                "o_row_wid" if ow != ew else "o_col_high")
    if regs.depthwise and ic != oc:
        return "depthwise layer with %d input and %d output channels" % (ic, oc), "o_ch_num"
    return None


def _trace_shapes(m: Kmodel):
    """Carry tensor shapes through main memory so outputs get their real (c, h, w) where the file implies it."""
    producers = {}      # address -> (shape, dtype) of the last writer

    def inherit(L, addr, count):
        shp = producers.get(addr, (None,))[0]
        return shp if shp is not None and shp[0] * shp[1] * shp[2] == count else (count, 1, 1)

    for L in m.layers:
        f = L.fields
        t = L.type
        if t in (11, 12, 13):
            L.in_shape = L.out_shape = inherit(L, f["in"], f["count"])
        elif t == 24:
            L.in_shape = L.out_shape = inherit(L, f["in"], f["channels"] * f["channel_size"])
        elif t in (14, 15, 25):
            L.in_shape = L.out_shape = inherit(L, f["in"], f["channels"])
        elif t in (1, 2):
            L.in_shape = L.out_shape = inherit(L, f["in_a"], f["count"])
        elif t == 5:
            L.in_shape, L.out_shape = (f["channels"], 1, f["kernel_size"]), (f["channels"], 1, 1)
        elif t in (16, 17):
            e = 4 if t == 16 else 1
            n = sum(s for _, s in f["inputs"]) // e
            L.in_shape, L.out_shape = (n, 1, 1), (n, 1, 1)
        for fname, addr, nbytes, rw in L.mem:
            if rw == "w":
                producers[addr] = (L.out_shape, L.out_dtype)
    first = m.layers[0]
    m.input_is_float = first.type == FULLY_CONNECTED
    m.input_shape = first.in_shape
    last = m.layers[-1]
    code = "B" if last.type == K210_CONV else last.out_dtype
    m.output_typecodes, m.output_shapes, m.fmap_shapes = [], [], []
    for o in m.outputs:
        e = 4 if code == "f" else 1
        n = o.size // e
        shp = producers.get(o.address, (None,))[0]
        if last.type == K210_CONV and o.address == last.fields["out"]:
            shp = last.out_shape
        if shp is None or shp[0] * shp[1] * shp[2] != n:
            shp = (n, 1, 1)
        m.output_typecodes.append(code)
        m.output_shapes.append(shp)
        m.fmap_shapes.append(fmap_shape(last, o.size))


def fmap_shape(last, nbytes: int) -> tuple:
    """(ch, h, w) the firmware's fmap reports for an output when `last` is the last layer run.

    A conv last layer gives its register shape; any other gives (1, 1, bytes): py_kpu.c's get_typecode_size
    falls through every case and always returns 1, so w() of a float output is its byte count.
    """
    return tuple(last.regs.out_shape) if last.type == K210_CONV else (1, 1, int(nbytes))
