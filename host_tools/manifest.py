"""The model manifest: the one source of truth about a compiled model.

The compiler writes `<name>.json` beside each `<name>.kmodel`; the flash planner, the deployer and the simulator
read it; the device reads the `models.json` made from these manifests by `device_manifest()` (same fields, plus
where the model lives on the board). Change a field here and in device/lib/registry.py, nowhere else.
"""
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from host_tools import framing as F
from host_tools.files import write_atomic
from host_tools.k210 import firmware

SCHEMA = 1
KINDS = ("classifier", "detector")
LOADS = ("ram", "flash")
INPUT_FORMATS = ("planar_u8", "float")
OUTPUT_TYPES = ("B", "f")  # the fmap typecodes the firmware hands over
KMODEL_VERSIONS = (3, 4)   # what MaixPy loads (V4 on builds with V4 support)


class ManifestError(ValueError):
    """A manifest that cannot be used; the message names the file and the field."""


def big_endian_name(name: str) -> str:
    """The file name of a model's big-endian copy for kpu.load_flash (compile and model add write it)."""
    return name + "_be.kmodel"


@dataclass
class Manifest:
    name: str
    kind: str                      # "classifier" | "detector"
    kmodel: str                    # file name of the little-endian kmodel, relative to the manifest
    kmodel_version: int            # 3, or 4 (nncase v0.2: full firmware builds only, kpu.set_outputs on the device)
    sha256: str                    # of the kmodel file
    size: int                      # bytes of the kmodel file
    input: dict                    # {"w": int, "h": int, "c": int, "format": "planar_u8" | "float"}
    outputs: list                  # [{"shape": [c, h, w], "type": "f" | "B"}]
    labels: list                   # class names, index = class id
    memory: dict                   # {"main_mem": int, "kpu_ram": int, "weights": int, "heap": int} bytes
    fits: dict                     # {"full": bool, "minimum": bool}: loads into RAM with that firmware
    load: str = "ram"              # "ram" (kpu.load) | "flash" (kpu.load_flash, needs big_endian)
    anchors: list = field(default_factory=list)   # detector: 2 * anchor_num floats
    threshold: float = 0.5
    nms: float = 0.3
    framing: str = F.DEFAULT       # how a camera frame or photo becomes the input (host_tools/framing.py)
    big_endian: str = ""           # file name of the big-endian copy for kpu.load_flash, "" when none
    labels_file: str = ""          # a labels file beside the manifest (one per line, = labels) that goes onto the
                                   # board; models.json then names it instead of listing the labels
    schema: int = SCHEMA

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


def _need(d, key, types, where):
    if key not in d:
        raise ManifestError("%s: missing field %r" % (where, key))
    v = d[key]
    if not isinstance(v, types) or (isinstance(v, bool) and types is int):  # JSON true is not a count
        raise ManifestError("%s: field %r has type %s" % (where, key, type(v).__name__))
    return v


def validate(d: dict, where: str = "manifest") -> Manifest:
    """Check a decoded manifest dict field by field and return it as a Manifest."""
    if not isinstance(d, dict):
        raise ManifestError("%s: not a JSON object" % where)
    if d.get("schema", SCHEMA) != SCHEMA:
        raise ManifestError("%s: field 'schema' is %r, this tool reads %d" % (where, d.get("schema"), SCHEMA))
    kind = _need(d, "kind", str, where)
    if kind not in KINDS:
        raise ManifestError("%s: field 'kind' is %r, expected one of %s" % (where, kind, KINDS))
    inp = _need(d, "input", dict, where)
    for k in ("w", "h", "c"):
        v = _need(inp, k, int, where + " input")
        if v <= 0:
            raise ManifestError("%s: field 'input.%s' must be > 0, got %r" % (where, k, v))
    if inp.get("format", "planar_u8") not in INPUT_FORMATS:
        raise ManifestError("%s: field 'input.format' is %r" % (where, inp.get("format")))
    outs = _need(d, "outputs", list, where)
    for i, o in enumerate(outs):
        if not isinstance(o, dict) or o.get("type") not in OUTPUT_TYPES or not isinstance(o.get("shape"), list):
            raise ManifestError("%s: field 'outputs[%d]' must be {shape: [c,h,w], type: 'B'|'f'}" % (where, i))
    load = d.get("load", "ram")
    if load not in LOADS:
        raise ManifestError("%s: field 'load' is %r, expected one of %s" % (where, load, LOADS))
    anchors = d.get("anchors", [])
    if kind == "detector" and (not anchors or len(anchors) % 2):
        raise ManifestError("%s: field 'anchors' must hold an even, non-zero count of numbers for a detector"
                            % where)
    for k in ("threshold", "nms"):
        v = d.get(k, 0.5)
        if not isinstance(v, (int, float)) or not 0 <= v <= 1:
            raise ManifestError("%s: field %r must be a number in [0, 1], got %r" % (where, k, v))
    if d.get("framing", F.DEFAULT) not in F.FRAMINGS:
        raise ManifestError("%s: field 'framing' is %r, expected one of %s"
                            % (where, d.get("framing"), ", ".join(F.FRAMINGS)))
    for k in ("name", "kmodel", "sha256"):
        _need(d, k, str, where)
    for k in ("kmodel_version", "size"):
        _need(d, k, int, where)
    if d["kmodel_version"] not in KMODEL_VERSIONS:
        raise ManifestError("%s: field 'kmodel_version' is %r, expected one of %s"
                            % (where, d["kmodel_version"], KMODEL_VERSIONS))
    _need(d, "labels", list, where)
    lf = d.get("labels_file", "")
    if not isinstance(lf, str) or "/" in lf or "\\" in lf or (lf and not lf.endswith(".txt")):
        raise ManifestError("%s: field 'labels_file' must be a .txt file name beside the manifest, got %r"
                            % (where, lf))
    _need(d, "memory", dict, where)
    _need(d, "fits", dict, where)
    known = set(Manifest.__dataclass_fields__)
    extra = set(d) - known
    if extra:
        raise ManifestError("%s: unknown field(s) %s" % (where, ", ".join(sorted(extra))))
    return Manifest(**d)


def load(path) -> Manifest:
    path = Path(path)
    try:
        d = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ManifestError("%s: %s" % (path, e)) from None
    return validate(d, str(path))


def find(folder) -> list:
    """The model manifests in a folder, sorted: every *.json naming a kmodel. Other JSON (training reports) is
    not one. Never a silent drop: ManifestError names a *.json that is not valid JSON, a manifest that does not
    validate, and a *.kmodel that no manifest names (it would otherwise vanish from the plan unsaid)."""
    folder = Path(folder)
    out, named = [], set()
    for p in sorted(folder.glob("*.json")):
        try:
            d = json.loads(p.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ManifestError("%s: not a readable JSON file (%s); fix or move it" % (p, e)) from None
        if isinstance(d, dict) and "kmodel" in d:
            m = validate(d, str(p))
            out.append(p)
            named.update({m.kmodel, m.big_endian})
    for k in sorted(folder.glob("*.kmodel")):
        if k.name not in named:
            raise ManifestError("%s: no manifest names this kmodel (expected %s beside it, as `compile` and `train` "
                                "write it)" % (k, k.with_suffix(".json").name))
    return out


def save(path, m: Manifest) -> Path:
    validate(json.loads(m.to_json()), str(path))  # never write what we could not read back
    return write_atomic(path, m.to_json())


def sha256_file(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def summary(m: Manifest, kmodel_file) -> str:
    """What `compile` and `model add` print of the model they wrote: file, shapes, memory, the firmware it needs."""
    mem = m.memory
    fit = firmware.Verdict(next(b for b in firmware.BUILDS if m.fits.get(b)), m.load, m.fits)
    return ("%s: %s (kmodel V%d, %d bytes), input %dx%dx%d%s, outputs %s\n"
            "  main memory %d B, KPU RAM %d B, weights %d B, system heap %d B; runs on %s%s" % (
                m.name, kmodel_file, m.kmodel_version, m.size, m.input["w"], m.input["h"], m.input["c"],
                "" if m.input.get("format", "planar_u8") == "planar_u8" else " " + m.input["format"],
                ", ".join("x".join(map(str, o["shape"])) for o in m.outputs), mem["main_mem"], mem["kpu_ram"],
                mem["weights"], mem["heap"], fit.text(), ", big-endian copy %s" % m.big_endian if m.big_endian else ""))


def kmodel_path(manifest_path, m: Manifest) -> Path:
    return Path(manifest_path).parent / m.kmodel


def flash_file(manifest_path, m: Manifest) -> Path:
    """The file whose bytes go into flash for this model: the kmodel (load "ram", checked against its sha256) or
    its big-endian copy (load "flash")."""
    le = kmodel_path(manifest_path, m)
    if not le.is_file():
        raise ManifestError("%s: kmodel file %s is missing" % (m.name, le))
    if sha256_file(le) != m.sha256:
        raise ManifestError("%s: %s does not match the sha256 in %s (recompile the model)"
                            % (m.name, le, manifest_path))
    if m.load != "flash":
        return le
    if not m.big_endian:
        raise ManifestError("%s: load is 'flash' but the manifest names no big-endian copy (field big_endian)"
                            % m.name)
    be = Path(manifest_path).parent / m.big_endian
    if not be.is_file():
        raise ManifestError("%s: big-endian copy %s is missing" % (m.name, be))
    return be


def labels_file_text(manifest_path, m: Manifest) -> bytes:
    """The bytes of a model's labels file (labels_file), checked against its labels: one per line."""
    p = Path(manifest_path).parent / m.labels_file
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ManifestError("%s: labels file %s: cannot read (%s)" % (m.name, p, getattr(e, "strerror", e))) \
            from None
    if [ln.strip() for ln in text.splitlines() if ln.strip()] != list(m.labels):
        raise ManifestError("%s: labels file %s does not hold the manifest's %d labels, one per line"
                            % (m.name, p, len(m.labels)))
    return text.encode()


def board_files(manifest_paths) -> dict:
    """{board file name: bytes} the models need beside models.json: their labels files. ManifestError for two
    models naming one file with different contents (the board's /flash is one flat folder)."""
    out, owner = {}, {}
    for p in manifest_paths:
        m = load(p)
        if not m.labels_file:
            continue
        data = labels_file_text(p, m)
        if m.labels_file in out and out[m.labels_file] != data:
            raise ManifestError("%s and %s both put a different %s on the board; rename one (field labels_file)"
                                % (owner[m.labels_file], m.name, m.labels_file))
        out[m.labels_file], owner[m.labels_file] = data, m.name
    return out


# ---- the device's view: models.json ----

DEVICE_FIELDS = ("name", "kind", "input", "outputs", "labels", "anchors", "threshold", "nms", "load", "framing",
                 "kmodel_version")
# A flash source also says what its bytes are: size and sha256 (the deployer's record of what the board's flash
# holds, so a later plan never overwrites a model the board still lists) and the first HEAD_BYTES as hex (the
# device compares them with the flash before loading: a model not where models.json says is named, not loaded).
HEAD_BYTES = 64


def flash_source(offset: int, stored: bytes = None) -> dict:
    """models.json's `source` for a model stored at `offset`; `stored`: the bytes there (the kmodel, or its
    big-endian copy for load_flash)."""
    src = {"flash": int(offset)}
    if stored is not None:
        src.update(size=len(stored), sha256=hashlib.sha256(stored).hexdigest(), head=bytes(stored[:HEAD_BYTES]).hex())
    return src


def device_entry(m: Manifest, flash_offset: int = None, path: str = None, stored: bytes = None) -> dict:
    """One model as device/lib/registry.py reads it: where it lives on the board plus what the app needs.
    stored: for a flash model, the bytes at flash_offset (see flash_source)."""
    if (flash_offset is None) == (path is None):
        raise ManifestError("%s: give exactly one of flash offset or file path" % m.name)
    if m.load == "flash" and flash_offset is None:
        raise ManifestError("%s: load 'flash' needs a flash offset (kpu.load_flash reads flash)" % m.name)
    entry = {k: getattr(m, k) for k in DEVICE_FIELDS}
    if m.labels_file:
        entry["labels"] = m.labels_file        # the device reads the labels from this file (registry.py)
    entry["source"] = flash_source(flash_offset, stored) if flash_offset is not None else {"path": path}
    return entry


def device_manifest(entries) -> str:
    return json.dumps({"schema": SCHEMA, "models": list(entries)}, indent=1) + "\n"
