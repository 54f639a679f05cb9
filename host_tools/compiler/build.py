"""compile_tflite (bytes + summary) and compile_file (kmodel + manifest on disk, nothing written on refusal)."""
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from host_tools import manifest as M
from host_tools.framing import DEFAULT as DEFAULT_FRAMING
from host_tools.compiler import emit, ir, planner, tflite_graph
from host_tools.compiler.errors import CompileError
from host_tools.compiler.lower import lower
from host_tools.files import write_atomic
from host_tools.k210 import firmware, rules
from host_tools.k210.bigendian import to_big_endian
from host_tools.kmodel import KmodelError, netinfo, parse
from host_tools.kmodel.netinfo import envelope


@dataclass
class Compiled:
    data: bytes                  # the little-endian kmodel
    program: ir.Program
    kmodel: object               # host_tools.kmodel.Kmodel parsed back from data
    info: object                 # host_tools.kmodel.NetInfo


def compile_tflite(tflite_path) -> Compiled:
    """Compile one tflite file to kmodel V3 bytes, parsed back with the kmodel reader as a check."""
    graph = tflite_graph.read(tflite_path)
    prog = lower(graph)
    mem = planner.plan(prog)
    data = emit.write(prog, mem["main_mem"])
    try:
        km = parse(data, name=str(tflite_path) + " (compiled)")
    except KmodelError as e:       # our own output must read back: a bug here, never the user's model
        raise AssertionError("compiled kmodel does not parse: %s" % e) from e
    foreign = [L.type_name for L in km.layers if not L.stock_sdk or L.type not in ir.EMITTED_TYPES]
    if foreign:
        raise AssertionError("compiled kmodel has layers the stock runtime lacks: %s" % foreign)
    check_envelope(km, prog)
    return Compiled(data, prog, km, netinfo(km))


def check_envelope(km, prog: ir.Program):
    """Refuse a kmodel whose conv arithmetic leaves the envelope of vendor-made files (k210.envelope), naming the
    first such layer and what is outside: no silicon is known to compute it right."""
    outside = envelope(km)[0]
    if outside:
        i = min(outside)
        L = prog.layers[i]          # the kmodel's layers are the program's, in order
        raise CompileError("its KPU arithmetic leaves what vendor-made kmodels use: %s"
                           % "; ".join(str(e) for e in outside[i]), prog.source, L.op_index, L.op, rules.ENVELOPE)


def compile_file(tflite_path, out_dir, name, kind, labels, anchors=(), threshold=0.5, nms=0.3,
                 big_endian=None, framing=DEFAULT_FRAMING) -> M.Manifest:
    """Write <out_dir>/<name>.kmodel and <name>.json (+ <name>_be.kmodel when the model must use load_flash,
    or always with big_endian=True).

    A model that cannot compile raises CompileError naming the layer, op and rule, and nothing is written.
    """
    if kind not in M.KINDS:
        raise CompileError("kind %r, expected one of %s" % (kind, M.KINDS), str(tflite_path), rule="kind")
    if kind == "detector" and (not anchors or len(anchors) % 2):
        raise CompileError("a detector needs anchors: an even, non-zero count of numbers (w, h pairs), got %d"
                           % len(anchors), str(tflite_path), rule="detector anchors")
    c = compile_tflite(tflite_path)
    info, km = c.info, c.kmodel
    fit = firmware.verdict(info.memory)
    if fit is None:
        raise CompileError("loads on no firmware build: %s" % firmware.no_fit_reason(info.memory),
                           str(tflite_path), rule=rules.MEMORY)
    out_dir = Path(out_dir)
    be_name = name + "_be.kmodel" if big_endian or fit.load == "flash" else ""
    cin, h, w = km.input_shape
    man = M.Manifest(
        name=name, kind=kind, kmodel=name + ".kmodel", kmodel_version=3, sha256=hashlib.sha256(c.data).hexdigest(),
        size=len(c.data),
        input={"w": w, "h": h, "c": cin, "format": "planar_u8"},
        outputs=[{"shape": list(v.shape), "type": "f"} for v in c.program.outputs],
        labels=list(labels),
        memory={"main_mem": info.main_mem, "kpu_ram": info.kpu_ram, "weights": info.weights, "heap": info.heap},
        fits=fit.fits, load=fit.load, anchors=[float(a) for a in anchors], threshold=float(threshold),
        nms=float(nms), framing=framing, big_endian=be_name)
    try:
        M.validate(json.loads(man.to_json()), name)     # refuse a bad manifest before writing anything
    except M.ManifestError as e:
        raise CompileError(str(e), str(tflite_path), rule="manifest") from None
    write_atomic(out_dir / man.kmodel, c.data)
    if be_name:
        write_atomic(out_dir / be_name, to_big_endian(c.data))
    M.save(out_dir / (name + ".json"), man)
    return man
