# The model registry: models.json (written by host_tools/manifest.py device_manifest()) read and checked on the
# device. A bad entry never stops the app: it becomes a problem message for its mode and the other mode runs.
import ubinascii
import ujson

SCHEMA = 1
KINDS = ("classifier", "detector")
FRAMINGS = ("crop", "stretch")  # host_tools/framing.py: how the camera frame becomes the model input
MAX_W = 320  # the KPU takes camera input up to QVGA
MAX_H = 240
MAX_HEAD = 256  # bytes of a model's start that models.json may give to compare with the flash


class RegistryError(ValueError):
    pass


def _need(d, key, types, where):
    if key not in d:
        raise RegistryError("%s: missing field '%s'" % (where, key))
    v = d[key]
    if not isinstance(v, types) or (isinstance(v, bool) and int in types):
        raise RegistryError("%s: field '%s' has the wrong type: %r" % (where, key, v))
    return v


def _number(d, key, where):
    v = d.get(key, 0.5)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or v > 1:
        raise RegistryError("%s: field '%s' must be a number in [0, 1], got %r" % (where, key, v))
    return float(v)


def check_entry(d, where):
    """Return the entry with its fields checked (and numbers normalised); RegistryError names the field."""
    if not isinstance(d, dict):
        raise RegistryError("%s: not a JSON object" % where)
    name = _need(d, "name", (str,), where)
    where = "%s (%s)" % (where, name)
    kind = _need(d, "kind", (str,), where)
    if kind not in KINDS:
        raise RegistryError("%s: field 'kind' is %r, expected classifier or detector" % (where, kind))
    src = _need(d, "source", (dict,), where)
    if ("flash" in src) == ("path" in src):
        raise RegistryError("%s: field 'source' needs exactly one of 'flash' or 'path'" % where)
    if "flash" in src:
        off = _need(src, "flash", (int,), where + " source")
        if off <= 0:
            raise RegistryError("%s: field 'source.flash' must be > 0, got %r" % (where, off))
        head = src.get("head", "")
        if not isinstance(head, str) or len(head) % 2 or len(head) > 2 * MAX_HEAD:
            raise RegistryError("%s: field 'source.head' must be hex text of at most %d bytes" % (where, MAX_HEAD))
    else:
        path = _need(src, "path", (str,), where + " source")
        if ".kmodel" not in path:
            raise RegistryError("%s: field 'source.path' must name a .kmodel file, got %r" % (where, path))
    version = d.get("kmodel_version", 3)
    if version not in (3, 4):
        raise RegistryError("%s: field 'kmodel_version' is %r, expected 3 or 4" % (where, version))
    load = d.get("load", "ram")
    if load not in ("ram", "flash"):
        raise RegistryError("%s: field 'load' is %r, expected ram or flash" % (where, load))
    if load == "flash" and "flash" not in src:
        raise RegistryError("%s: field 'load' is flash but 'source' has no flash offset" % where)
    inp = _need(d, "input", (dict,), where)
    for k in ("w", "h", "c"):
        v = _need(inp, k, (int,), where + " input")
        if v <= 0:
            raise RegistryError("%s: field 'input.%s' must be > 0, got %r" % (where, k, v))
    if inp["c"] not in (1, 3):
        raise RegistryError("%s: field 'input.c' is %d, the camera gives 1 (gray) or 3 (RGB)" % (where, inp["c"]))
    if inp["w"] > MAX_W or inp["h"] > MAX_H:
        raise RegistryError("%s: field 'input' is %dx%d, the KPU takes camera input up to %dx%d"
                            % (where, inp["w"], inp["h"], MAX_W, MAX_H))
    if inp.get("format", "planar_u8") != "planar_u8":
        raise RegistryError("%s: field 'input.format' is %r, camera frames need planar_u8"
                            % (where, inp.get("format")))
    framing = d.get("framing", "crop")
    if framing not in FRAMINGS:
        raise RegistryError("%s: field 'framing' is %r, expected crop or stretch" % (where, framing))
    outs = _need(d, "outputs", (list,), where)
    if not outs:
        raise RegistryError("%s: field 'outputs' is empty" % where)
    shapes = []
    for i in range(len(outs)):
        shp = outs[i].get("shape") if isinstance(outs[i], dict) else None
        if not isinstance(shp, list) or len(shp) != 3 or not all(isinstance(v, int) and v > 0 for v in shp):
            raise RegistryError("%s: field 'outputs[%d].shape' must be [c, h, w], got %r" % (where, i, shp))
        shapes.append(tuple(shp))
    labels = _need(d, "labels", (list, str), where)
    if isinstance(labels, str):
        # a labels file on the board, one label per line (read_labels reads it), as the seed's scripts keep them
        if not labels.endswith(".txt"):
            raise RegistryError("%s: field 'labels' names %r: a labels file must be a .txt" % (where, labels))
    else:
        for i in range(len(labels)):
            if not isinstance(labels[i], str):
                raise RegistryError("%s: field 'labels[%d]' is not a string" % (where, i))
    anchors = d.get("anchors", [])
    if not isinstance(anchors, list):
        raise RegistryError("%s: field 'anchors' must be a list" % where)
    for a in anchors:
        if isinstance(a, bool) or not isinstance(a, (int, float)):
            raise RegistryError("%s: field 'anchors' must hold numbers, got %r" % (where, a))
    if kind == "detector" and (not anchors or len(anchors) % 2):
        raise RegistryError("%s: field 'anchors' must hold an even, non-zero count of numbers" % where)
    return {
        "name": name, "kind": kind, "source": src, "load": load,
        "w": inp["w"], "h": inp["h"], "c": inp["c"], "framing": framing,
        "labels": labels, "anchors": tuple([float(a) for a in anchors]),
        "threshold": _number(d, "threshold", where), "nms": _number(d, "nms", where),
        "kmodel_version": version, "out_shapes": shapes,
    }


def parse(text, where="models.json"):
    """(entries, problems): the good entries in file order; problems are (kind or None, message), one per bad
    entry, or one for a file that cannot be used at all."""
    try:
        doc = ujson.loads(text)
    except ValueError as e:
        return [], [(None, "%s: not valid JSON (%s)" % (where, e))]
    if not isinstance(doc, dict):
        return [], [(None, "%s: not a JSON object" % where)]
    if doc.get("schema", SCHEMA) != SCHEMA:
        return [], [(None, "%s: field 'schema' is %r, this app reads %d" % (where, doc.get("schema"), SCHEMA))]
    models = doc.get("models")
    if not isinstance(models, list):
        return [], [(None, "%s: field 'models' must be a list" % where)]
    entries = []
    problems = []
    for i in range(len(models)):
        d = models[i]
        try:
            e = check_entry(d, "%s models[%d]" % (where, i))
        except RegistryError as err:
            # Keep the kind when it is readable so the right mode shows the message.
            kind = d.get("kind") if isinstance(d, dict) else None
            problems.append((kind if kind in KINDS else None, str(err)))
            continue
        entries.append(e)
    return entries, problems


def flash_problem(e, flash_read):
    """None, or why entry e's model is not in flash: the first bytes at its offset must be its 'head'. A deploy
    cut short, or another tool, may have left other bytes there; kpu.load would then fail or run garbage."""
    src = e["source"]
    head = src.get("head")
    if "flash" not in src or not head:
        return None
    try:
        got = ubinascii.hexlify(flash_read(src["flash"], len(head) // 2)).decode()
    except Exception:
        got = None
    if got != head.lower():
        return "model %s not at 0x%X (deploy interrupted?)" % (e["name"], src["flash"])
    return None


def check_flash(entries, problems, flash_read=None):
    """The entries whose model is where models.json says; the others become problems of their kind."""
    if flash_read is None:
        from Maix import utils
        flash_read = utils.flash_read
    good = []
    for e in entries:
        msg = flash_problem(e, flash_read)
        if msg is None:
            good.append(e)
        else:
            problems.append((e["kind"], msg))
    return good, problems


def _text(path):
    f = open(path)
    try:
        return f.read()
    finally:
        f.close()


def read_labels(entries, problems):
    """Entries whose 'labels' names a file get its lines (one label each, blank lines skipped); an entry whose
    file cannot be read becomes a problem of its kind, so the other mode still runs."""
    good = []
    for e in entries:
        name = e["labels"]
        if isinstance(name, str):
            try:
                text = _text(name)
            except OSError as err:
                problems.append((e["kind"], "%s: labels file %s: cannot read (%s)" % (e["name"], name, err)))
                continue
            e["labels"] = [ln.strip() for ln in text.split("\n") if ln.strip()]
        good.append(e)
    return good, problems


def read(path="models.json"):
    """parse() of the file at path (relative to the current directory, /flash or /sd, like the firmware), each
    flash model checked against the flash (check_flash), labels files read (read_labels)."""
    try:
        text = _text(path)
    except OSError as e:
        return [], [(None, "%s: cannot read (%s)" % (path, e))]
    entries, problems = parse(text, path)
    entries, problems = check_flash(entries, problems)
    return read_labels(entries, problems)
