"""Run a parsed kmodel V3 the way a K210 does: main memory, 2 MiB KPU RAM, layer by layer.

Input: uint8 planar (C, H, W) as the camera's AI buffer holds it (uploaded to KPU RAM like the SDK does), or a
float32 vector for FULLY_CONNECTED-first models. Output: one array per model output, read from main memory as
the firmware's fmap hands it over (float32 for typecode 'f', uint8 for 'B'), shaped model.output_shapes.

Exact (integer, as the SDK and nncase v0.1's emulator compute): conv sums, the floor shifts of arg_x/arg_w and
of the BN stage, the SDK's rounding shift (kpu_carry_shift) in the activation stage, max pooling, sampling
pools, every uint8 CPU layer. Approximate or chosen, because nothing public settles them:
- activation segment: the last segment whose x_start <= bn (SDK, nncase v0.1); nncase v0.2+ use <; below every
  start, segment 0 (nncase v0.1's emulator has no rule there).
- rounding in the activation: the SDK's kpu_carry_shift as written: half up for values >= 0 (nncase v1 rounds
  half to even); odd negative values go one further down (our compiler's tables never make negative values).
- mean pooling (types 2, 4, 8): floor(sum / count), as nncase v0.1's emulator; hardware rounding unknown.
  Pool 8/9 (2x2 window, stride 1) at the last row/column use only the pixels inside the map.
- accumulator and BN output wrap to 36 signed bits (the register width; nncase asserts no overflow).
- float CPU layers: float32 throughout, except FULLY_CONNECTED dot products and (channelwise) dequantize,
  computed in float64 and rounded once to float32 (the board sums in float32 and may fuse multiply-add),
  and exp (the host's float32 exp); global average pooling and softmax sum in order, as the SDK's loops.
- K210_ADD_PADDING leaves the other 15 pixels of each 4x4 map as KPU RAM held them (zeros in a fresh run).
With these choices the Maix-EMC cifar10 logits come within 0.0063 of the K210 hardware values.
Conv layers run on the fast path (kpu_fast.py: an integer GEMM and compiled stages, with what each layer may
skip proved in kpu_proofs.py), which gives the same integers as the reference (kpu.py: k210.arith's int64
stages; `run(..., exact=True)` forces it). KPU RAM is written lazily (kpu_ram.py); a depthwise layer followed by
a 1x1 conv is computed right into that conv's GEMM columns, only at the pixels it samples (nncase moves a
depthwise stride 2 into the next 1x1 conv); layers with few pixels and many channels hand their maps on
pixel-major (kpu_ram.Layout); a dense layer on the KPU (K210_ADD_PADDING, a 1x1 conv of the 4x4 map,
K210_REMOVE_PADDING) computes only the pixel REMOVE_PADDING reads, where nothing else reads the other 15 (_one_pixel).
"""
import contextlib
import time
from dataclasses import dataclass

import numpy as np

from host_tools.k210 import kpu as hw
from host_tools.k210.errors import ERR_RUN_MODEL
from host_tools.kmodel import cpu_layers
from host_tools.kmodel.errors import KmodelError
from host_tools.k210 import arith as A
from host_tools.kmodel import kpu
from host_tools.kmodel.kpu_fast import FastConv, conv_params
from host_tools.kmodel.kpu_ram import Deferred, KpuRam, RamMap, spans_overlap
from host_tools.kmodel.reader import K210_ADD_PADDING, K210_CONV, K210_REMOVE_PADDING, Kmodel
from host_tools.k210 import registers as R
from host_tools.k210.arith import POOL_TYPES


_blas = None


def one_blas_thread():
    """BLAS limited to one thread while a model runs: its GEMMs are small, and on a shared machine extra BLAS
    threads spin against other processes (a yolo20 frame took 5x longer with two threads under load)."""
    global _blas
    try:
        if _blas is None:
            from threadpoolctl import ThreadpoolController
            _blas = ThreadpoolController()
        return _blas.limit(limits=1, user_api="blas")
    except ImportError:         # threadpoolctl comes with scikit-learn; without it, leave BLAS as it is
        return contextlib.nullcontext()


@dataclass(frozen=True, eq=False)
class ConvStep:
    """One conv layer as the emulator runs it: where its maps lie in KPU RAM, its numbers (the reference runs
    k210.arith.forward on them) and its fast path."""
    src: RamMap
    dst: RamMap
    arith: A.ConvArith
    fast: FastConv


def conv_step(L) -> ConvStep:
    regs = L.regs
    c, wb = regs.kernel_calc_type_cfg, regs.write_back_cfg
    src = RamMap(regs.image_addr.image_src_addr, L.in_shape, c.coef_group, c.row_switch_addr, c.channel_switch_addr)
    dst = RamMap(regs.image_addr.image_dst_addr, L.out_shape, wb.wb_group, wb.wb_row_switch_addr,
                 wb.wb_channel_switch_addr)
    a = kpu.layer_arith(L)
    return ConvStep(src, dst, a, FastConv(conv_params(a, L.in_shape, L.out_shape)))


def plans(model: Kmodel) -> dict:
    """Per conv layer index (V3 K210_CONV, V4 KPUConv2D: the layers with KPU registers), its ConvStep (cached on
    the model: weight layouts, proofs, GEMM sessions)."""
    p = model.__dict__.get("_plans")
    if p is None:
        p = {L.index: conv_step(L) for L in model.layers if L.regs is not None}
        model.__dict__["_plans"] = p
        model.__dict__["_deferred"] = _deferrable(model, p)
    return p


def _deferrable(model: Kmodel, conv: dict) -> set:
    """Depthwise layers (no pool, output only in KPU RAM) whose next layer is a 1x1 conv (no pool or a sampling
    one) that reads exactly their output map: they are written to KPU RAM as a kpu_ram.Deferred, and that
    reader has them computed straight into its GEMM's columns (kpu_fast.FastConv.forward). Any other reader of
    those bytes computes the whole map first."""
    out = set()
    for L, nxt in zip(model.layers, model.layers[1:]):
        if L.index in conv and nxt.index in conv and not L.fields["flags"] & 1:
            a, b = conv[L.index].fast.p, conv[nxt.index].fast.p
            if (a.depthwise and POOL_TYPES[a.pool][0] == "none" and not b.depthwise and b.k == 1
                    and POOL_TYPES[b.pool][0] in ("none", "sample_lt", "sample_rt")
                    and conv[L.index].dst.key == conv[nxt.index].src.key):
                out.add(L.index)
    return out


def _one_pixel(model: Kmodel, conv: dict) -> dict:
    """Dense layers on the KPU as nncase and our compiler write them: K210_ADD_PADDING puts a vector at pixel (0, 0)
    of a 4x4 map, a 1x1 conv (no pool) writes its 4x4 output to main memory, K210_REMOVE_PADDING reads back pixel
    (0, 0) of each channel. Where nothing reads the conv's other 15 pixels (no later layer's main-memory read nor
    model output sees those bytes before a later write replaces them; no later conv reads KPU RAM where it
    writes), only that pixel is computed, from the bytes ADD_PADDING spreads. {conv layer index: its ADD_PADDING
    layer}"""
    out = {}
    layers = model.layers
    for i in range(1, len(layers) - 1):
        pad, L, rm = layers[i - 1:i + 2]
        if pad.type != K210_ADD_PADDING or L.index not in conv or rm.type != K210_REMOVE_PADDING:
            continue
        step, c = conv[L.index], pad.fields["channels"]
        p, o = step.fast.p, L.fields["out"]
        oc = p.out_shape[0]
        if (p.depthwise or p.k != 1 or POOL_TYPES[p.pool][0] != "none" or not L.fields["flags"] & 1
                or p.in_shape != (c, 4, 4) or p.out_shape != (oc, 4, 4)
                or rm.fields["in"] != o or rm.fields["channels"] > oc
                or not np.array_equal(step.src.offsets()[:, 0, 0],          # reads the bytes ADD_PADDING put
                                      cpu_layers.pixel_zero(pad.fields["kpu_out"], c)[0])):
            continue
        later = layers[i + 1:]
        if _dead_bytes_unread(o, oc, later, model.outputs) and not any(
                spans_overlap(conv[M.index].src.span, step.dst.span) for M in later if M.index in conv):
            out[L.index] = pad
    return out


def _dead_bytes_unread(o: int, oc: int, later, outputs) -> bool:
    """Whether the bytes of a (oc, 4, 4) map at main memory o other than each channel's pixel (0, 0) are unread:
    each later layer's reads (REMOVE_PADDING's first: pixel (0, 0) only) miss those not yet overwritten by an
    earlier one's writes, and so do the model's outputs."""
    dead = np.ones(16 * oc, bool)
    dead[::16] = False

    def seen(a, n):
        lo, hi = max(a, o), min(a + n, o + dead.size)
        return lo < hi and dead[lo - o:hi - o].any()
    for k, M in enumerate(later):
        if k and any(rw == "r" and seen(a, n) for _, a, n, rw in M.mem):
            return False
        for _, a, n, rw in M.mem:
            if rw == "w" and max(a, o) < min(a + n, o + dead.size):
                dead[max(a, o) - o:min(a + n, o + dead.size) - o] = False
    return not any(seen(r.address, r.size) for r in outputs)


def conv_forward(L, plan: ConvStep, ram: KpuRam, exact: bool, deferred: bool, taps):
    """One KPU conv layer (V3 K210_CONV, V4 KPUConv2D) from KPU RAM to KPU RAM; returns its output map (an array,
    or a Deferred when `deferred`: see _deferrable)."""
    if exact:
        y = A.forward(plan.arith, ram.read(plan.src))
    elif deferred:
        y = Deferred(plan.fast, ram.read(plan.src))
    else:
        y = plan.fast.forward(ram.read(plan.src, deferred=True))
    ram.write(plan.dst, y)
    if taps is not None:
        taps(L, ram.read(plan.src), ram.read(plan.dst))
    return y


def check_input(model: Kmodel, x) -> np.ndarray:
    """The input as the runtime takes it; a wrong shape or type is a ValueError naming what was expected."""
    if model.input_is_float:
        v = np.asarray(x, dtype=np.float32).reshape(-1)
        n = model.input_shape[0]
        if v.size != n:
            raise ValueError("%s: the model takes %d float inputs, got %d" % (model.name, n, v.size))
        return v
    a = np.asarray(x)
    if a.dtype != np.uint8:
        raise ValueError("%s: the model takes uint8 planar input, got dtype %s" % (model.name, a.dtype))
    c, h, w = model.input_shape
    if a.size != c * h * w:
        raise ValueError("%s: the model takes %dx%dx%d (c, h, w) uint8, got shape %s"
                         % (model.name, c, h, w, a.shape))
    return a.reshape(c, h, w)


def run(model: Kmodel, x, upto: int = None, trace=None, exact: bool = False, taps=None) -> list:
    """Execute the model on input x and return its outputs (see module doc).

    upto: run only the first `upto` layers (like kpu.set_layers), trace: called as trace(layer, seconds) (a
    deferred depthwise layer's time shows in the 1x1 layer that computes it), exact: use the int64 reference path
    for every conv layer (same results, slower; for tests), taps: called as taps(layer, input map, output map)
    for each conv layer, with (c, h, w) arrays.
    """
    if model.version == 4:
        from host_tools.kmodel import emulator_v4    # it builds on this module
        return emulator_v4.run(model, x, upto, trace, exact, taps)
    x = check_input(model, x)
    with one_blas_thread():
        return _run(model, x, upto, trace, exact, taps)


def _run(model, x, upto, trace, exact, taps):
    mem = np.zeros(model.main_mem_usage, np.uint8)
    ram = KpuRam()
    conv = plans(model)
    deferred = model.__dict__["_deferred"]
    one_pixel = model.__dict__.get("_one_pixel")
    if one_pixel is None:
        one_pixel = model.__dict__["_one_pixel"] = _one_pixel(model, conv)
    if exact or taps is not None:       # the reference, or every map whole for the taps
        one_pixel = {}
    first = model.layers[0]
    if model.input_is_float:
        cpu_layers.wr_f32(mem, first.fields["in"], x)
    else:
        c, h, w = first.in_shape
        lay = hw.row_layout(w)     # the runtime uploads the input by the width rule (SDK kpu_upload_core)
        ram.write(RamMap(first.regs.image_addr.image_src_addr, first.in_shape, lay.groups, lay.row_len,
                         lay.row_len * h), x)
    layers = model.layers if upto is None else model.layers[:upto]
    for L in layers:
        if trace is not None:
            t0 = time.perf_counter()
        try:
            if L.index in one_pixel:
                pad, o = one_pixel[L.index].fields, L.fields["out"]
                y = conv[L.index].fast.one_pixel(mem[pad["in"]:pad["in"] + pad["channels"]])
                mem[o:o + 16 * y.size:16] = y
            elif L.type == K210_CONV:
                y = conv_forward(L, conv[L.index], ram, exact, L.index in deferred, taps)
                if L.fields["flags"] & 1:
                    mem[L.fields["out"]:L.fields["out"] + y.size] = y.reshape(-1)
            else:
                cpu_layers.RUN[L.type](L, mem, ram)
        except (IndexError, ValueError) as e:    # only a malformed file can get here; name the layer
            raise KmodelError(ERR_RUN_MODEL, "cannot run: %s" % e, name=model.name, layer=L.index,
                              type_name=L.type_name) from None
        if trace is not None:
            trace(L, time.perf_counter() - t0)
    outs = []
    for o, code, shp in zip(model.outputs, model.output_typecodes, model.output_shapes):
        raw = mem[o.address:o.address + o.size]
        if code == "f":
            arr = raw[:o.size // 4 * 4].view("<f4").astype(np.float32)
        else:
            arr = raw.copy()
        outs.append(arr.reshape(shp))
    return outs
