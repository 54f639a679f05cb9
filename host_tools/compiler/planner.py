"""Addresses for every value: 64-byte rows in the 2 MiB KPU RAM and byte offsets in main memory.

A value lives from the layer that writes it to the last layer that reads it (graph outputs to the end); two
values whose lives overlap get disjoint space (first fit). A conv's input and output overlap at the conv itself,
so the KPU never reads a row it is writing.
"""
from host_tools.compiler import ir
from host_tools.compiler.errors import CompileError
from host_tools.k210 import kpu as hw
from host_tools.k210 import rules as R
from host_tools.k210.firmware import SRAM_BYTES

MAIN_ALIGN = 8


def kpu_rows(v: ir.Value) -> int:
    return hw.ram_rows(*v.shape)


def _reads(L):
    return [L.inp] if isinstance(L, ir.ConvLayer) else list(L.inputs)


def _first_fit(items, capacity, what, rule, source):
    """items: [(start, end, size, value, layer)] -> {id(value): offset}."""
    placed = []          # (offset, size, start, end)
    where = {}
    for start, end, size, v, L in sorted(items, key=lambda t: (t[0], -t[2])):
        live = sorted((o, s) for o, s, a, b in placed if a <= end and start <= b)
        at = 0
        for o, s in live:
            if at + size <= o:
                break
            at = max(at, o + s)
        if at + size > capacity:
            unit = "rows of 64 bytes" if what == "KPU RAM" else "bytes"
            raise CompileError("%s (%s) does not fit: it needs %d %s from %d, past the %d available in %s with what "
                               "else is live at this layer" % (v.name, "x".join(map(str, v.shape)), size, unit, at,
                                                               capacity, what),
                               source, getattr(L, "op_index", None), getattr(L, "op", None), rule)
        placed.append((at, size, start, end))
        where[id(v)] = at
    return where


def plan(prog: ir.Program) -> dict:
    """Assign kpu_row / main_addr on every value; return {'main_mem': bytes, 'kpu_rows': peak rows used}."""
    end = len(prog.layers)
    first, last, writer = {}, {}, {}
    values = {id(prog.input): prog.input}
    first[id(prog.input)] = -1
    writer[id(prog.input)] = prog.layers[0]
    for i, L in enumerate(prog.layers):
        values[id(L.out)] = L.out
        first.setdefault(id(L.out), i)
        writer.setdefault(id(L.out), L)
        for v in _reads(L):
            values[id(v)] = v
            last[id(v)] = i
    for v in prog.outputs:
        last[id(v)] = end
    kpu_items, main_items = [], []
    for k, v in values.items():
        a, b = first[k], max(last.get(k, first[k]), first[k])
        if v.in_kpu:
            kpu_items.append((a, b, kpu_rows(v), v, writer[k]))
        if v.in_main:
            main_items.append((a, b, -(-v.nbytes // MAIN_ALIGN) * MAIN_ALIGN, v, writer[k]))
    rows = _first_fit(kpu_items, hw.RAM_ROWS, "KPU RAM", R.KPU_RAM, prog.source)
    addrs = _first_fit(main_items, SRAM_BYTES, "main memory", R.MAIN_MEMORY, prog.source)
    for k, v in values.items():
        v.kpu_row = rows.get(k)
        v.main_addr = addrs.get(k)
    main_mem = max((addrs[id(v)] + v.nbytes for _, _, _, v, _ in main_items), default=0)
    peak = max((rows[id(v)] + kpu_rows(v) for _, _, _, v, _ in kpu_items), default=0)
    return {"main_mem": main_mem, "kpu_rows": peak}
