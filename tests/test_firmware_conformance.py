"""docs/firmware-conformance.md names every firmware call the device app makes (found by reading device/'s code):
module functions (`sensor.snapshot`), classes (`GPIO(...)`) and methods of the firmware's objects (`img.cut`)."""
import ast
import re

from conftest import ROOT

DEVICE = ROOT / "device"
TABLE = ROOT / "docs" / "firmware-conformance.md"
LIB = {p.stem for p in (DEVICE / "lib").glob("*.py")} | {"boot", "main"}
# methods of MicroPython's own types (str, list, dict, tuple, file): not firmware calls
BUILTIN_METHODS = {name for t in (str, list, dict, tuple, bytes) for name in dir(t)} | {"read", "close", "write"}


def device_calls():
    """({'module.function' | 'Class'}, {'method'}): the firmware calls in device/."""
    modules, methods, defined = set(), set(), set()
    trees = [ast.parse(p.read_text(), str(p)) for p in sorted(DEVICE.rglob("*.py"))]
    for tree in trees:
        defined |= {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    for tree in trees:
        aliases = {}                                    # local name -> firmware module or module.name
        for n in ast.walk(tree):
            if isinstance(n, ast.Import):
                aliases.update({a.asname or a.name: a.name for a in n.names if a.name not in LIB})
            elif isinstance(n, ast.ImportFrom) and n.module not in LIB:
                aliases.update({a.asname or a.name: "%s.%s" % (n.module, a.name) for a in n.names})
        for n in ast.walk(tree):
            if not isinstance(n, ast.Call):
                continue
            f = n.func
            if isinstance(f, ast.Name) and f.id in aliases:
                modules.add(aliases[f.id])               # a firmware class: GPIO(...)
            elif isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id in aliases:
                modules.add("%s.%s" % (aliases[f.value.id].split(".")[-1], f.attr))   # fm.register, kpu.load
            elif isinstance(f, ast.Attribute) and not (isinstance(f.value, ast.Name) and f.value.id in LIB) \
                    and f.attr not in defined and f.attr not in BUILTIN_METHODS:
                methods.add(f.attr)                      # img.cut(), pin.irq(), fmap.typecode()
    return modules, methods


def table_calls():
    rows = [line for line in TABLE.read_text().splitlines() if line.startswith("| ") and "---" not in line]
    return " ".join(row.split("|")[1] for row in rows[1:])


def spelt(call):
    """How the table writes a call: `KPU.forward(`, `sensor.snapshot(`, a class by its name: `GPIO(`."""
    module, _, name = call.rpartition(".")
    return (name if name[:1].isupper() else call) + "("


def test_every_firmware_call_in_device_code_has_a_row():
    modules, methods = device_calls()
    calls = table_calls()
    missing = [spelt(m) for m in sorted(modules) if not re.search(r"(^|[\s`])" + re.escape(spelt(m)), calls)]
    missing += [".%s(" % m for m in sorted(methods) if ".%s(" % m not in calls]
    assert not missing, "docs/firmware-conformance.md has no row for: %s" % ", ".join(missing)
    # the scan finds what it should (a scan that finds nothing would pass)
    assert {"KPU.forward", "sensor.snapshot", "lcd.draw_string", "fm.register", "Maix.GPIO", "gc.collect",
            "time.ticks_ms", "ujson.loads"} <= modules
    assert {"cut", "resize", "pix_to_ai", "irq", "typecode", "draw_string", "value"} <= methods


def test_the_table_names_a_c_source_for_every_row():
    rows = [line.split("|") for line in TABLE.read_text().splitlines() if line.startswith("| `")]
    assert len(rows) > 30
    for row in rows:
        assert re.search(r"\.(c|py)\b|ROM", row[2]), row
