"""Serialise a planned program as a kmodel V3 file (little-endian).

Body layout as nncase writes it: every body starts at a multiple of 8 (the first one right after the headers);
inside a K210_CONV body the registers sit at a multiple of 8, weights and BN table at multiples of 128 and the
activation table at a multiple of 256, all as absolute file offsets. The file length is a multiple of 8.
"""
import struct

from host_tools.compiler import ir
from host_tools.compiler.errors import CompileError
from host_tools.compiler.kpu_layer import conv_regs, layer_arith, tables
from host_tools.k210 import registers as R

VERSION = 3
FLAGS_8BIT = 1


def _align(n, a):
    return -(-n // a) * a


def _conv_body(L: ir.ConvLayer, at: int) -> bytes:
    a = layer_arith(L)
    regs = conv_regs(L.inp.shape, L.out_ch, L.kernel, L.depthwise, L.pool, L.inp.kpu_row, L.out.kpu_row, a)
    bn, act = tables(a)
    reg_at = _align(at + 24, 8)
    w_at = _align(reg_at + R.LAYER_REGS_BYTES, 128)
    bn_at = _align(w_at + L.weights.size, 128)
    act_at = _align(bn_at + 8 * len(bn), 256)
    body = bytearray(act_at + R.ACT_TABLE_BYTES - at)
    struct.pack_into("<6I", body, 0, 1 if L.main_out else 0, L.out.main_addr if L.main_out else 0,
                     reg_at, w_at, bn_at, act_at)
    for off, blob in ((reg_at, R.encode_layer_regs(regs)), (w_at, L.weights.tobytes()), (bn_at, R.encode_bn(bn)),
                      (act_at, R.encode_act(act))):
        body[off - at:off - at + len(blob)] = blob
    return bytes(body)


def _cpu_body(L: ir.CpuLayer) -> bytes:
    t, p, out = L.type, L.params, L.out
    src = L.inputs[0] if L.inputs else None
    if t in (ir.QUANTIZE, ir.DEQUANTIZE):
        return struct.pack("<4I2f", 0, src.main_addr, out.main_addr, out.count, p["scale"], p["bias"])
    if t == ir.REQUANTIZE:
        return struct.pack("<4I", 0, src.main_addr, out.main_addr, out.count) + p["table"].tobytes()
    if t in (ir.SOFTMAX, ir.LOGISTIC):
        return struct.pack("<4I", 0, src.main_addr, out.main_addr, p["channels"])
    if t == ir.GLOBAL_AVERAGE_POOL2D:
        return struct.pack("<5I", 0, src.main_addr, out.main_addr, p["kernel_size"], p["channels"])
    if t in (ir.QUANTIZED_MAX_POOL2D, ir.AVERAGE_POOL2D):
        c, h, w = src.shape
        oc, oh, ow = out.shape
        (kh, kw), (sh, sw), (ph, pw) = p["kernel"], p["stride"], p["pad"]
        fields = [0, src.main_addr, out.main_addr, w, h, c, ow, oh, oc, kw, kh, sw, sh, pw, ph]
        if t == ir.AVERAGE_POOL2D:
            fields.append(0)
        return struct.pack("<%dI" % len(fields), *fields)
    if t == ir.CONCAT:
        ranges = [x for v in L.inputs for x in (v.main_addr, v.nbytes)]
        return struct.pack("<%dI" % (3 + len(ranges)), 0, out.main_addr, len(L.inputs), *ranges)
    if t == ir.FULLY_CONNECTED:
        wf, b = p["weights"], p["bias"]
        return (struct.pack("<6I", 0, src.main_addr, out.main_addr, wf.shape[1], wf.shape[0], p["act"])
                + wf.astype("<f4").tobytes() + b.astype("<f4").tobytes())
    if t == ir.TENSORFLOW_FLATTEN:
        c, h, w = src.shape
        return struct.pack("<6I", 0, src.main_addr, out.main_addr, w, h, c)
    if t == ir.K210_UPLOAD:
        c, h, w = src.shape
        return struct.pack("<6I", 0, src.main_addr, out.kpu_row, w, h, c)
    if t == ir.K210_ADD_PADDING:
        return struct.pack("<4I", 0, src.main_addr, out.kpu_row, src.shape[0])
    if t == ir.K210_REMOVE_PADDING:
        return struct.pack("<4I", 0, src.main_addr, out.main_addr, out.shape[0])
    raise AssertionError("no writer for layer type %d" % t)


def write(prog: ir.Program, main_mem: int) -> bytes:
    """The kmodel V3 bytes of a planned program."""
    n = len(prog.layers)
    head = 28 + 8 * len(prog.outputs) + 8 * n
    bodies, at = [], head
    for L in prog.layers:
        try:
            body = _conv_body(L, at) if isinstance(L, ir.ConvLayer) else _cpu_body(L)
        except CompileError:
            raise
        except Exception as e:  # e.g. a register value that does not fit: still this layer's
            raise CompileError.internal(e, prog.source, L.op_index, L.op) from None
        body += bytes(_align(at + len(body), 8) - at - len(body))
        bodies.append(body)
        at += len(body)
    kpu_starts = [v.kpu_row for L in prog.layers for v in ([L.out] + ([L.inp] if isinstance(L, ir.ConvLayer) else []))
                  if v.kpu_row is not None]
    out = bytearray()
    out += struct.pack("<7I", VERSION, FLAGS_8BIT, 0, n, min(kpu_starts, default=0), max(main_mem, 1),
                       len(prog.outputs))
    for v in prog.outputs:
        out += struct.pack("<2I", v.main_addr, v.nbytes)
    for L, body in zip(prog.layers, bodies):
        out += struct.pack("<2I", L.type, len(body))
    for body in bodies:
        out += body
    assert len(out) % 8 == 0
    return bytes(out)

