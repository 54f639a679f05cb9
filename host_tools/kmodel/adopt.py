"""Other people's kmodels (nncase, maix_train, MaixPy examples): a manifest made from the file itself.

Input size, output shapes, memory and the firmware verdict come from the kmodel (reader + netinfo), exactly as
`compile` fills them for ours; what the file cannot say (kind, labels, anchors, threshold, nms) comes from the
user and is checked against the file: a classifier's labels against its output count, a YOLOv2 detector's
anchors against its output channels (anchor_num x (5 + classes)). The planner, deploy, sim and `kmodel run`
then read the manifest like any other.
"""
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from host_tools import framing as F
from host_tools import manifest as mf
from host_tools.files import write_atomic
from host_tools.k210 import firmware
from host_tools.k210.bigendian import from_big_endian, to_big_endian
from host_tools.kmodel import identify
from host_tools.kmodel.netinfo import netinfo
from host_tools.kmodel.reader import parse


@dataclass(frozen=True)
class Facts:
    """What the user says of a model (the file does not): the manifest's fields beyond the file's."""
    kind: str
    labels: tuple = ()
    anchors: tuple = ()
    threshold: float = 0.5
    nms: float = 0.3
    framing: str = F.DEFAULT
    labels_file: bool = False      # the labels go onto the board as <name>_labels.txt (models.json names it)


def detector_classes(channels: int, anchors) -> int:
    """Classes of a YOLOv2 region output with `channels` channels and these anchors (w, h pairs); ValueError
    naming both when they do not fit: run_yolo2 reads anchor_num x (4 box + 1 objectness + classes) channels."""
    n = len(anchors) // 2
    if not anchors or len(anchors) % 2:
        raise ValueError("--anchors: a detector needs w,h pairs (an even, non-zero count of numbers), got %d"
                         % len(anchors))
    if channels % n or channels // n <= 5:
        raise ValueError("--anchors: %d anchors do not fit the output's %d channels (YOLOv2 needs anchor_num x "
                         "(5 + classes) channels%s)" % (n, channels, _fitting(channels)))
    return channels // n - 5


def _fitting(channels: int) -> str:
    ns = [n for n in range(1, 17) if channels % n == 0 and channels // n > 5]
    return "; %d channels fit %s anchors" % (channels, " or ".join(map(str, ns))) if ns else ""


def check(model, facts: Facts):
    """ValueError naming the option when the user's facts contradict the file."""
    if facts.kind not in mf.KINDS:
        raise ValueError("--kind %r: expected one of %s" % (facts.kind, ", ".join(mf.KINDS)))
    outs = model.output_shapes
    if facts.kind == "detector":
        c, h, w = outs[0]
        if model.output_typecodes[0] != "f" or h * w == 1:
            raise ValueError("%s: --kind detector needs a float (C, H, W) region map as output 0; this model "
                             "gives %s '%s'" % (model.name, "x".join(map(str, outs[0])), model.output_typecodes[0]))
        classes = detector_classes(c, facts.anchors)
        if facts.labels and len(facts.labels) != classes:
            raise ValueError("--labels: %d labels, but %d anchors in %d channels mean %d classes"
                             % (len(facts.labels), len(facts.anchors) // 2, c, classes))
    else:
        if facts.anchors:
            raise ValueError("--anchors: only a detector has anchors (give --kind detector)")
        n = outs[0][0] * outs[0][1] * outs[0][2]
        if facts.labels and len(facts.labels) != n:
            raise ValueError("--labels: %d labels, but output 0 of %s has %d values (one per class)"
                             % (len(facts.labels), model.name, n))


def manifest_for(data: bytes, kmodel_name: str, name: str, facts: Facts, where: str = "<bytes>") -> mf.Manifest:
    """The manifest of the little-endian kmodel `data` (V3, or V4 from nncase v0.2), stored as kmodel_name beside
    it. KmodelError for bytes that are no kmodel MaixPy loads, ValueError for facts the file contradicts or a model no firmware build loads."""
    km = parse(data, where)
    check(km, facts)
    ni = netinfo(km)
    fit = firmware.verdict(ni.memory)
    if fit is None:
        raise ValueError("%s: loads on no firmware build: %s" % (where, firmware.no_fit_reason(ni.memory)))
    # a build without the file's kmodel version cannot load it at all (V4: full builds only)
    fits = {b: ok and km.version in firmware.build(b).kmodel_versions for b, ok in fit.fits.items()}
    if not any(fits.values()):
        raise ValueError("%s: kmodel V%d loads only on builds with V%d support (%s), where it does not fit in %s"
                         % (where, km.version, km.version, ", ".join(b for b in firmware.BUILDS if km.version in
                                                                       firmware.build(b).kmodel_versions),
                            firmware.LOAD_CALLS[fit.load]))
    c, h, w = km.input_shape
    return mf.Manifest(
        name=name, kind=facts.kind, kmodel=kmodel_name, kmodel_version=km.version,
        sha256=hashlib.sha256(data).hexdigest(), size=km.size,
        input={"w": w, "h": h, "c": c, "format": "float" if km.input_is_float else "planar_u8"},
        outputs=[{"shape": list(s), "type": t} for s, t in zip(km.output_shapes, km.output_typecodes)],
        labels=list(facts.labels),
        memory={"main_mem": ni.main_mem, "kpu_ram": ni.kpu_ram, "weights": ni.weights, "heap": ni.heap},
        fits=fits, load=fit.load, anchors=[float(a) for a in facts.anchors], threshold=float(facts.threshold),
        nms=float(facts.nms), framing=facts.framing,
        big_endian=mf.big_endian_name(name) if fit.load == "flash" else "",
        labels_file=name + "_labels.txt" if facts.labels_file and facts.labels else "")


def little_endian(data: bytes) -> bytes:
    """The kmodel's bytes as kpu.load reads them: a big-endian V3 (the load_flash form) is swapped back."""
    return from_big_endian(data) if data[:4] == identify.BIG_ENDIAN_V3 else data


def add(src, out_dir, name: str, facts: Facts) -> Path:
    """Copy the kmodel to <out_dir>/<name>.kmodel (little-endian: a big-endian one is swapped back), write
    <name>.json (and <name>_be.kmodel when the model needs kpu.load_flash, <name>_labels.txt when the labels go
    onto the board); returns the manifest's path. Everything is checked before the first byte is written."""
    src, out_dir = Path(src), Path(out_dir)
    data = little_endian(src.read_bytes())
    man = manifest_for(data, name + ".kmodel", name, facts, str(src))     # refuses before anything is written
    mf.validate(json.loads(man.to_json()), str(out_dir / (name + ".json")))
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(out_dir / man.kmodel, data)
    if man.big_endian:
        # MaixPy's model_le2be.py pads a length that is not a multiple of 4 (real files may end short)
        write_atomic(out_dir / man.big_endian, to_big_endian(data + bytes(-len(data) % 4)))
    if man.labels_file:
        write_atomic(out_dir / man.labels_file, "".join(label + "\n" for label in man.labels))
    return mf.save(out_dir / (name + ".json"), man)
