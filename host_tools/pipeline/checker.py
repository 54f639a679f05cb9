"""The K210 checker: what `compile` will say of a model, said before training or compiling it.

It runs the compiler itself (host_tools.compiler.build.compile_graph: lowering, KPU RAM and main memory planning,
register emission, read-back) on an int8 tflite, or on a Keras model through its int8 tflite calibrated on random
data. So `check` accepts exactly what `compile` accepts and names the same layer index, op and rule (ids in
host_tools.k210.rules); where `compile` stops at the first refusal, `check` lists them all. When the model
compiles, the memory verdict is the compiler's too: the firmware build and load mode it needs
(host_tools.k210.firmware.verdict).
"""
import contextlib
import io
import re
from dataclasses import dataclass, field

import numpy as np

from host_tools.compiler import tflite_graph
from host_tools.compiler.build import compile_graph, load_verdict
from host_tools.compiler.errors import CompileError
from host_tools.k210 import firmware, rules

CALIBRATION_FRAMES = 8       # random images calibrate a Keras model's int8 conversion: its ranges, not its accuracy


@dataclass
class Finding:
    index: int               # tflite operator index, as `compile` names it (None: the model as a whole)
    op: str                  # the tflite op
    name: str                # the layer: its Keras name when checked from Keras, else its tflite tensor's
    rule: str                # a host_tools.k210.rules id
    message: str

    def __str__(self):
        where = "model" if self.index is None else "layer %d (%s) %s" % (self.index, self.op, self.name)
        return "%s: %s [rule: %s]" % (where, self.message, self.rule)


@dataclass
class Memory:
    known: bool = False      # False while a layer is refused: the figures need the compiled kmodel
    file_size: int = 0
    weights: int = 0
    main_mem: int = 0
    kpu_ram: int = 0
    heap: int = 0            # system heap kpu.load takes
    heap_flash: int = 0      # system heap kpu.load_flash takes (about)
    largest_layer: int = 0
    budgets: dict = field(default_factory=dict)   # build -> system-heap bytes left for models
    build: str = None        # the build and load mode the model needs (None: it loads on none)
    load: str = None
    fits: dict = field(default_factory=dict)      # build -> the model loads on it in that load mode


@dataclass
class Report:
    source: str
    ops: int
    findings: list
    memory: Memory
    advice: list

    @property
    def ok(self) -> bool:
        """`compile` would write this model."""
        return not self.findings

    def rules(self):
        return sorted({f.rule for f in self.findings})

    def text(self) -> str:
        m = self.memory
        lines = ["%s: %d ops, %s" % (self.source, self.ops,
                                     "K210 rules OK" if self.ok else "%d problem(s)" % len(self.findings))]
        lines += ["  " + str(f) for f in self.findings]
        if not m.known:
            lines.append("memory: known once every layer compiles")
        else:
            lines.append("memory: kmodel %s, main memory %s, KPU RAM %s; system heap for kpu.load %s, for "
                         "kpu.load_flash about %s (largest layer %s)"
                         % (_kib(m.file_size), _kib(m.main_mem), _kib(m.kpu_ram), _kib(m.heap), _kib(m.heap_flash),
                            _kib(m.largest_layer)))
            for b, budget in m.budgets.items():
                modes = [firmware.LOAD_CALLS[mode] for mode in firmware.LOAD_MODES if _loads(m, b, mode)]
                lines.append("  %-7s firmware (%s for models): %s" % (b, _kib(budget), " or ".join(modes)
                                                                       if modes else "does NOT load"))
        lines += ["advice: " + a for a in self.advice]
        return "\n".join(lines)


def _kib(n):
    return "%.1f KiB" % (n / 1024)


def _mem(m: Memory) -> firmware.ModelMemory:
    return firmware.ModelMemory(m.heap, m.heap_flash, m.largest_layer)


def _loads(m: Memory, build, mode) -> bool:
    return firmware.loads(_mem(m), build, mode)


def _finding(e: CompileError, graph, names=None) -> Finding:
    name = ""
    if e.op_index is not None and graph is not None:
        op = graph.ops[e.op_index]
        tensor = graph.tensors[op.outputs[0]].name if op.outputs else ""
        name = (names or {}).get(e.op_index) or tensor.split(";")[0]
    return Finding(e.op_index, e.op or "", name, e.rule or rules.COMPILER.id, e.message)


def _memory(info, fit) -> Memory:
    """The compiled model's figures and its verdict (fit None: it loads on no build)."""
    m = Memory(True, info.file_size, info.weights, info.main_mem, info.kpu_ram, info.heap, info.heap_flash,
               info.largest_layer, {b: firmware.model_budget(b) for b in firmware.BUILDS})
    if fit is not None:
        m.build, m.load, m.fits = fit.build, fit.load, dict(fit.fits)
    else:
        m.fits = {b: False for b in firmware.BUILDS}
    return m


def advice(mem: Memory, findings) -> list:
    layers = [f for f in findings if f.rule != rules.MEMORY.id]
    if layers or not mem.known:
        n = len({f.index for f in layers or findings})
        return ["fix the %d layer(s) above: `compile` refuses %s" % (n, "it" if n == 1 else "them")]
    full = mem.budgets["full"]
    if mem.build == "full" and mem.load == "ram":
        return ["fits the full firmware: kpu.load from RAM (%s spare)" % _kib(full - mem.heap)]
    if mem.build == "full":
        out = ["too big for kpu.load on the full firmware (%s over): the compiler writes a big-endian copy for "
               "kpu.load_flash, which streams one layer at a time (%s spare)"
               % (_kib(mem.heap - full), _kib(full - mem.heap_flash))]
        if _loads(mem, "minimum", "ram"):
            out.append("or flash the minimum firmware build and kpu.load it from RAM (faster per frame)")
        return out
    if mem.build == "minimum":
        why = "kpu.load needs %s and kpu.load_flash about %s of the full build's %s" % (
            _kib(mem.heap), _kib(mem.heap_flash), _kib(full))
        return ["needs the minimum firmware build, with %s: %s" % (firmware.LOAD_CALLS[mem.load], why),
                _shrink(mem)]
    return ["loads on no firmware build: %s" % firmware.no_fit_reason(_mem(mem)), _shrink(mem)]


def _shrink(mem: Memory) -> str:
    ratio = (mem.budgets["full"] / max(mem.heap, 1)) ** 0.5
    return ("or shrink it for the full firmware's kpu.load: weights scale with width squared, so width x%.2f "
            "(e.g. a smaller MobileNet alpha) fits" % ratio)


def check_graph(graph, names=None) -> Report:
    """Report on a read tflite graph. names: {op index: layer name} to show instead of tensor names."""
    problems = []
    compiled = compile_graph(graph, problems)
    mem = Memory()
    if compiled is not None:
        fit = None
        try:
            fit = load_verdict(compiled.info, graph.source)
        except CompileError as e:
            problems.append(e)
        mem = _memory(compiled.info, fit)
    findings = [_finding(e, graph, names) for e in problems]
    return Report(graph.source, len(graph.ops), findings, mem, advice(mem, findings))


def check_tflite(data, source="<tflite>", names=None) -> Report:
    """A tflite's bytes; ValueError (CompileError) when they are no tflite at all."""
    return check_graph(tflite_graph.parse(bytes(data), source), names)


def int8_tflite(model) -> bytes:
    """The int8 tflite check_keras checks: the pipeline's conversion, calibrated on random images (QuantizeError
    when it cannot convert)."""
    from host_tools.pipeline.quantize import representative, to_int8_tflite
    shape = tuple(model.inputs[0].shape[1:])
    calibration = np.random.default_rng(0).random((CALIBRATION_FRAMES,) + shape, dtype=np.float32)
    with contextlib.redirect_stdout(io.StringIO()):     # the converter's "Saved artifact at ..." chatter
        return to_int8_tflite(model, representative(calibration))


def check_keras(model) -> Report:
    """A Keras model, through the int8 tflite the pipeline would make of it."""
    from host_tools.pipeline.quantize import QuantizeError
    shape = tuple(model.inputs[0].shape[1:])
    if None in shape:
        f = Finding(None, "", "input", rules.INPUT.id, "input size %s is not fixed: build the model at its inference "
                    "size, at most %dx%d" % (shape, firmware.CAMERA_W, firmware.CAMERA_H))
        return Report(model.name, 0, [f], Memory(), advice(Memory(), [f]))
    try:
        data = int8_tflite(model)
    except QuantizeError as e:
        f = Finding(None, "", model.name, rules.INT8.id, str(e))
        return Report(model.name, 0, [f], Memory(), advice(Memory(), [f]))
    graph = tflite_graph.parse(data, model.name)
    return check_graph(graph, keras_names(graph, model))


# the Keras layer classes a tflite op comes from, to pick the right name among an op's fused ones
_OP_LAYERS = {"CONV_2D": ("Conv2D",), "DEPTHWISE_CONV_2D": ("DepthwiseConv2D",), "FULLY_CONNECTED": ("Dense",),
              "MEAN": ("GlobalAveragePooling2D",), "MAX_POOL_2D": ("MaxPooling2D",),
              "AVERAGE_POOL_2D": ("AveragePooling2D",), "PAD": ("ZeroPadding2D",)}


def keras_names(graph, model) -> dict:
    """{op index: Keras layer name} from the converter's tensor names ("model_1/conv1_1/convolution;..."): the
    op's output, else its constant inputs (a model's last op outputs a signature name)."""
    layers = {layer.name: type(layer).__name__ for layer in model.layers}
    out = {}
    for op in graph.ops:
        found = []
        names = [graph.tensors[t].name for t in op.outputs[:1]]
        names += [graph.tensors[t].name for t in op.inputs[1:] if t >= 0 and graph.tensors[t].data is not None]
        for part in ";".join(names).split(";"):
            for seg in part.split("/")[1:]:
                for n in (seg, re.sub(r"_\d+$", "", seg)):
                    if n in layers and n not in found:
                        found.append(n)
                        break
        kinds = _OP_LAYERS.get(op.kind, ())
        best = [n for n in found if layers[n] in kinds] or found
        if best:
            out[op.index] = best[0]
    return out


def check_file(path) -> Report:
    """A .tflite, .keras or .h5 model file."""
    from pathlib import Path
    path = Path(path)
    if path.suffix == ".tflite":
        return check_tflite(path.read_bytes(), str(path))
    if path.suffix in (".keras", ".h5"):
        import keras
        try:
            model = keras.models.load_model(path, compile=False)
        except Exception as e:  # keras raises many types for a bad file; name the file
            raise ValueError("%s: cannot load Keras model: %s" % (path, e)) from None
        rep = check_keras(model)
        rep.source = str(path)
        return rep
    raise ValueError("%s: expected a .tflite, .keras or .h5 model file" % path)
