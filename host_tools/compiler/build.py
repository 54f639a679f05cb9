"""compile_tflite (bytes + summary) and compile_file (kmodel + manifest on disk, nothing written on refusal)."""
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from host_tools import manifest as M
from host_tools.framing import DEFAULT as DEFAULT_FRAMING
from host_tools.compiler import dump, emit, float_lower, float_quant, ir, normalize, planner, tflite_graph
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


def compile_graph(graph, problems: list = None) -> Compiled:
    """A read tflite graph as kmodel V3 bytes, parsed back with the kmodel reader as a check.

    problems=None: the first refusal raises CompileError. A list (the checker): every refusal is appended to it and
    None is returned when there is any; once lowering has refused something only the KPU RAM is still planned.
    """
    def refuse(err):
        if problems is None:
            raise err
        problems.append(err)

    if float_lower.is_float(graph):            # a float vector model: float CPU layers (ncc's float inference)
        try:
            prog = float_lower.lower(graph)
        except CompileError as e:
            return refuse(e)
    elif graph.calibrated:                     # a float image model: convs on the KPU, dense layers float
        prog = float_lower.lower_calibrated(graph, problems)
    elif float_quant.needs_calibration(graph):
        return float_lower.refuse_uncalibrated(graph, problems)
    else:
        prog = lower(graph, problems)
    if problems:
        try:
            if prog is not None:
                planner.plan(prog)
        except CompileError as e:
            problems.append(e)
        except Exception:  # planning around placeholders is a bonus, never an error of its own
            pass
        return None
    try:
        mem = planner.plan(prog)
        data = emit.write(prog, mem["main_mem"])
    except CompileError as e:
        return refuse(e)
    try:
        km = parse(data, name=graph.source + " (compiled)")
    except KmodelError as e:       # our own output must read back: a compiler bug, still named at its layer
        L = prog.layers[e.layer] if e.layer is not None and e.layer < len(prog.layers) else None
        return refuse(CompileError.internal(e, graph.source, getattr(L, "op_index", None), getattr(L, "op", None)))
    foreign = [L.type_name for L in km.layers if not L.stock_sdk or L.type not in ir.EMITTED_TYPES]
    if foreign:
        return refuse(CompileError.internal(AssertionError("layers the stock runtime lacks: %s" % foreign),
                                            graph.source))
    try:
        check_envelope(km, prog)
    except CompileError as e:
        return refuse(e)
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


def compile_tflite(tflite_path, input_norm=None, dataset=None, framing=DEFAULT_FRAMING) -> Compiled:
    """Compile one tflite file to kmodel V3 bytes (CompileError naming layer, op and rule when it cannot).
    input_norm: (mean, std) of a model trained on (pixel / 255 - mean) / std (compiler/normalize.py); dataset: the
    folder of calibration images a float image model needs (float_quant.py), framed by `framing`."""
    graph = tflite_graph.read(tflite_path)
    if float_quant.needs_calibration(graph):
        if input_norm is not None:
            graph = normalize.camera(graph, *input_norm)
        if dataset is not None:
            graph = float_quant.calibrated(graph, Path(tflite_path).read_bytes(), dataset, framing)
    else:
        if dataset is not None:
            raise CompileError("--dataset %s: calibration images are for a float image model; this one is %s" % (
                dataset, "a float vector model (its float layers need none)" if float_lower.is_float(graph)
                else "quantized already"), graph.source, rule=rules.CALIBRATION)
        if input_norm is not None:
            graph = normalize.absorb(graph, *input_norm)
    return compile_graph(graph)


def load_verdict(info, source) -> firmware.Verdict:
    """The firmware build and load mode the compiled model needs; CompileError when it loads on none."""
    fit = firmware.verdict(info.memory)
    if fit is None:
        raise CompileError("loads on no firmware build: %s" % firmware.no_fit_reason(info.memory), source,
                           rule=rules.MEMORY)
    return fit


def compile_file(tflite_path, out_dir, name, kind, labels, anchors=(), threshold=0.5, nms=0.3,
                 big_endian=None, framing=DEFAULT_FRAMING, dump_dir=None, input_norm=None, dataset=None) -> M.Manifest:
    """Write <out_dir>/<name>.kmodel and <name>.json (+ <name>_be.kmodel when the model must use load_flash,
    or always with big_endian=True); dump_dir: also the lowered graph there (compiler/dump.py); input_norm and
    dataset: see compile_tflite.

    A model that cannot compile raises CompileError naming the layer, op and rule, and nothing is written.
    """
    if kind not in M.KINDS:
        raise CompileError("kind %r, expected one of %s" % (kind, M.KINDS), str(tflite_path), rule="kind")
    if kind == "detector" and (not anchors or len(anchors) % 2):
        raise CompileError("a detector needs anchors: an even, non-zero count of numbers (w, h pairs), got %d"
                           % len(anchors), str(tflite_path), rule="detector anchors")
    c = compile_tflite(tflite_path, input_norm, dataset, framing)
    info, km = c.info, c.kmodel
    if dump_dir is not None:
        dump.write(c.program, dump_dir, name)
    fit = load_verdict(info, str(tflite_path))
    out_dir = Path(out_dir)
    be_name = M.big_endian_name(name) if big_endian or fit.load == "flash" else ""
    cin, h, w = km.input_shape
    man = M.Manifest(
        name=name, kind=kind, kmodel=name + ".kmodel", kmodel_version=3, sha256=hashlib.sha256(c.data).hexdigest(),
        size=len(c.data),
        input={"w": w, "h": h, "c": cin, "format": "float" if km.input_is_float else "planar_u8"},
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
