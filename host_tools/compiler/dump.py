"""`compile --dump DIR`: the lowered, planned graph as ncc's --dump-ir shows it, as text and Graphviz .dot.

One row per kmodel layer, in file order: index, layer type, the tflite op it comes from, where it runs (KPU for
K210_CONV, CPU for the rest), its input and output values (c x h x w and dtype) and where each lives: KPU RAM as
a byte offset (64-byte rows x 64) and main memory as a byte offset. The text is tab-separated with a header
line, so it reads back (read_table).
"""
from pathlib import Path

from host_tools.compiler import ir
from host_tools.files import write_atomic
from host_tools.kmodel.reader import LAYER_TYPES

COLUMNS = ("index", "type", "op", "runs_on", "inputs", "output", "kpu_in", "kpu_out", "main_in", "main_out",
           "detail")


def _shape(v: ir.Value) -> str:
    return "x".join(map(str, v.shape)) + " " + v.dtype


def _at(v: ir.Value, where: str) -> str:
    if where == "kpu":
        return "0x%06X" % (64 * v.kpu_row) if v.in_kpu and v.kpu_row is not None else "-"
    return "0x%06X" % v.main_addr if v.in_main and v.main_addr is not None else "-"


def _inputs(L):
    return [L.inp] if isinstance(L, ir.ConvLayer) else list(L.inputs)


def _detail(L) -> str:
    if isinstance(L, ir.ConvLayer):
        return "%dx%d%s pool %d%s" % (L.kernel, L.kernel, " depthwise" if L.depthwise else "", L.pool,
                                      ", also to main memory" if L.main_out else "")
    if L.type == ir.FULLY_CONNECTED:
        return "%d -> %d, act %d" % (L.params["weights"].shape[1], L.params["weights"].shape[0], L.params["act"])
    return ""


def rows(prog: ir.Program) -> list:
    """One dict per layer with COLUMNS as keys (strings)."""
    out = []
    for i, L in enumerate(prog.layers):
        ins = _inputs(L)
        kpu = isinstance(L, ir.ConvLayer)
        first = ins[0] if ins else None
        out.append({
            "index": str(i), "type": LAYER_TYPES[L.type],
            "op": "%d %s" % (L.op_index, L.op) if L.op_index is not None and L.op_index >= 0 else "-",
            "runs_on": "KPU" if kpu else "CPU",
            "inputs": ", ".join(_shape(v) for v in ins) or "-", "output": _shape(L.out),
            "kpu_in": _at(first, "kpu") if kpu and first is not None else "-",
            "kpu_out": _at(L.out, "kpu"),
            "main_in": ", ".join(_at(v, "main") for v in ins) if not kpu else "-",
            "main_out": _at(L.out, "main") if not kpu or L.main_out else "-",
            "detail": _detail(L)})
    return out


def text(prog: ir.Program) -> str:
    lines = ["# %s: %d kmodel V3 layers; offsets in bytes (KPU RAM: 64-byte rows x 64)" % (prog.source,
                                                                                         len(prog.layers)),
             "\t".join(COLUMNS)]
    lines += ["\t".join(r[c] for c in COLUMNS) for r in rows(prog)]
    return "\n".join(lines) + "\n"


def read_table(text_: str) -> list:
    """The rows of a dump's text back as dicts."""
    lines = [ln for ln in text_.splitlines() if ln and not ln.startswith("#")]
    head = lines[0].split("\t")
    return [dict(zip(head, ln.split("\t"))) for ln in lines[1:]]


def _q(s: str) -> str:
    return '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def dot(prog: ir.Program) -> str:
    """Graphviz: a node per layer (KPU layers filled), an edge per value from its writer to each reader."""
    writer = {id(prog.input): "input"}
    out = ["digraph kmodel {", "  rankdir=TB;", "  node [shape=box, fontname=monospace];",
           "  input [label=%s, shape=ellipse];" % _q("input\n%s\nKPU RAM %s" % (_shape(prog.input),
                                                                              _at(prog.input, "kpu")))]
    for r, L in zip(rows(prog), prog.layers):
        node = "L%s" % r["index"]
        label = "%s: %s\n%s\n%s -> %s\n%s" % (r["index"], r["type"], r["op"], r["inputs"], r["output"], r["runs_on"])
        if r["kpu_out"] != "-":
            label += " KPU RAM %s" % r["kpu_out"]
        if r["main_out"] != "-":
            label += " main %s" % r["main_out"]
        style = ", style=filled, fillcolor=lightblue" if r["runs_on"] == "KPU" else ""
        out.append("  %s [label=%s%s];" % (node, _q(label), style))
        for v in _inputs(L):
            if id(v) in writer:
                out.append("  %s -> %s;" % (writer[id(v)], node))
        writer[id(L.out)] = node
    for k, v in enumerate(prog.outputs):
        out.append("  out%d [label=%s, shape=ellipse];" % (k, _q("output %d\n%s" % (k, _shape(v)))))
        if id(v) in writer:
            out.append("  %s -> out%d;" % (writer[id(v)], k))
    out.append("}")
    return "\n".join(out) + "\n"


def write(prog: ir.Program, out_dir, name: str) -> list:
    """<out_dir>/<name>.txt and <name>.dot; returns their paths."""
    out_dir = Path(out_dir)
    return [write_atomic(out_dir / (name + ".txt"), text(prog)), write_atomic(out_dir / (name + ".dot"), dot(prog))]
