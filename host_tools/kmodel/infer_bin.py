"""`kmodel run --output-dir DIR`: the outputs as `ncc infer` writes them (nncase src/cli/inference.cpp): one
<input name>.bin per input, every output in turn, each as float32 NCHW (N = 1) little-endian."""
from pathlib import Path

import numpy as np

from host_tools.files import write_atomic


def bin_name(spec: str, index: int) -> str:
    """<stem>.bin for a file input (ncc's rule); input<N>.bin for numbers given on the command line."""
    p = Path(spec)
    return (p.stem if p.is_file() else "input%d" % index) + ".bin"


def to_bytes(outs) -> bytes:
    """The outputs, each (C, H, W) -> float32 in that order, one after the other."""
    return b"".join(np.ascontiguousarray(o, dtype="<f4").tobytes() for o in outs)


def write(out_dir, spec: str, index: int, outs) -> Path:
    return write_atomic(Path(out_dir) / bin_name(spec, index), to_bytes(outs))


def read(path, shapes) -> list:
    """The outputs back from a .bin, given their (C, H, W) shapes."""
    data = np.frombuffer(Path(path).read_bytes(), "<f4")
    out, at = [], 0
    for s in shapes:
        n = int(np.prod(s))
        if at + n > data.size:
            raise ValueError("%s: %d floats, the outputs %s need %d" % (path, data.size, shapes, at + n))
        out.append(data[at:at + n].reshape(s))
        at += n
    if at != data.size:
        raise ValueError("%s: %d floats, the outputs %s need %d" % (path, data.size, shapes, at))
    return out
