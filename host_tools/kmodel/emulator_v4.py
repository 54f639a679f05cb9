"""Run a parsed kmodel V4 the way MaixPy's nncase v0.2 runtime does: constants, main memory and the 2 MiB KPU RAM.

The input goes where input 0's memory range says (nncase_run_kmodel): a main-memory input is copied in, a KPU one
is uploaded by the width rule (kpu_upload). Nodes run in order. KPU conv nodes are the V3 K210_CONV layers' very
arithmetic (emulator.conv_step: host_tools.k210.arith's stages and the fast path, choices listed in emulator.py); a node with a main
memory output is then downloaded into it (CHW order). CPU nodes: cpu_nodes_v4. Outputs are read from their
ranges, float32 for a float range, uint8 else, shaped model.output_shapes.
"""
import time

import numpy as np

from host_tools.k210 import kpu as hw
from host_tools.k210.errors import ERR_RUN_MODEL
from host_tools.kmodel import cpu_nodes_v4
from host_tools.kmodel.emulator import check_input, conv_forward, one_blas_thread, plans  # input rules as V3
from host_tools.kmodel.errors import KmodelError
from host_tools.kmodel.kpu_ram import Deferred, KpuRam, RamMap, rule_index
from host_tools.kmodel.reader_v4 import DT_F32, KPU_CONV2D, KPU_UPLOAD, MEM_CONST, MEM_KPU, KmodelV4


class Memory:
    """The three memories of a V4 run; ranges (reader_v4.MemRange) are read and written as typed arrays."""

    def __init__(self, model: KmodelV4):
        off, n = model.constants
        self.const = np.frombuffer(model.data, np.uint8, n, off)
        self.main = np.zeros(model.main_mem_usage, np.uint8)
        self.ram = KpuRam()

    def read_bytes(self, r) -> np.ndarray:
        if r.memory == MEM_KPU:
            self.ram.flush()
            return self.ram.bytes[r.start:r.end]
        return (self.const if r.memory == MEM_CONST else self.main)[r.start:r.end]

    def read(self, r) -> np.ndarray:
        raw = self.read_bytes(r)
        if r.dtype == DT_F32:
            return raw[:raw.size // 4 * 4].view("<f4")
        return raw

    def write_bytes(self, r, raw: np.ndarray):
        raw = np.ascontiguousarray(raw).view(np.uint8).reshape(-1)
        if raw.size > r.size:
            raise ValueError("%d bytes do not fit %s" % (raw.size, r))
        if r.memory == MEM_KPU:
            idx = np.arange(r.start, r.start + raw.size)
            self.ram.put(idx, (r.start, r.start + raw.size), raw.copy())
        else:
            self.main[r.start:r.start + raw.size] = raw

    def write(self, r, values):
        self.write_bytes(r, np.ascontiguousarray(values, "<f4" if r.dtype == DT_F32 else np.uint8))

    def upload(self, start: int, shape, x: np.ndarray):
        """kpu_upload: an NCHW uint8 map into KPU RAM at byte `start`, each batch by the width rule."""
        n, c, h, w = shape
        x = np.asarray(x, np.uint8).reshape(n, c, h, w)
        lay = hw.row_layout(w)
        rows = hw.ram_rows(c, h, w)
        for b in range(n):
            base = start + b * rows * hw.ROW_BYTES
            if base % hw.ROW_BYTES == 0:
                self.ram.write(RamMap(base // hw.ROW_BYTES, (c, h, w), lay.groups, lay.row_len, lay.row_len * h),
                               np.ascontiguousarray(x[b]))
            else:
                idx = rule_index(0, (c, h, w)).reshape(-1) + base
                self.ram.put(idx, (int(idx.min()), int(idx.max()) + 1), x[b].reshape(-1).copy())


def run(model: KmodelV4, x, upto: int = None, trace=None, exact: bool = False, taps=None) -> list:
    """As emulator.run for V3: the outputs of the model (or of its first `upto` nodes) on input x."""
    x = check_input(model, x)
    with one_blas_thread():
        return _run(model, x, upto, trace, exact, taps)


def _run(model, x, upto, trace, exact, taps):
    mem = Memory(model)
    conv = plans(model)
    deferred = model.__dict__["_deferred"]
    first = model.inputs[0]
    if first.memory == MEM_KPU:
        mem.upload(first.start, model.input_shapes[0], x)
    else:
        mem.write(first, x)
    for L in model.layers if upto is None else model.layers[:upto]:
        t0 = time.perf_counter()
        try:
            if L.type == KPU_CONV2D:
                y = conv_forward(L, conv[L.index], mem.ram, exact, L.index in deferred, taps)
                if L.fields["flags"]:
                    mem.write(L.fields["main_mem_output"], y.array() if isinstance(y, Deferred) else y)
            elif L.type == KPU_UPLOAD:
                f = L.fields
                s = f["in_shape"]
                mem.upload(f["output"].start, s, mem.read(f["input"])[:int(np.prod(s))])
            else:
                with np.errstate(all="ignore"):      # float overflow and NaN are the board's too
                    cpu_nodes_v4.RUN[L.type](L, mem)
        except (IndexError, ValueError, ZeroDivisionError, OverflowError, FloatingPointError) as e:
            raise KmodelError(ERR_RUN_MODEL, "cannot run: %s" % e, name=model.name, layer=L.index,
                              type_name=L.type_name, version=4) from None
        if trace is not None:
            trace(L, time.perf_counter() - t0)
    outs = []
    for o, shp in zip(model.outputs, model.output_shapes):
        outs.append(np.array(mem.read(o)).reshape(shp))
    return outs
