"""Compile and cache the emulator's numba kernels once, at install time (the Makefile's venv step runs
`python -m host_tools.kmodel.warm models/*.kmodel`), so a new user's first `kmodel run` or `make sim` does not
spend tens of seconds compiling. numba keeps the machine code beside the sources (cache=True, keyed on each
source file's time stamp); running the shipped demo models on a blank and a random input reaches every kernel
signature the emulator uses (the 20-class YOLO fixture's first run then compiles nothing: bench/cold_start.py).
"""
import sys
import time

import numpy as np

from host_tools.kmodel.emulator import run
from host_tools.kmodel.errors import KmodelError
from host_tools.kmodel.kpu_ram import KpuRam, RamMap
from host_tools.kmodel.reader import load


def warm(paths) -> int:
    rng = np.random.default_rng(0)
    n = 0
    for p in paths:
        m = load(p)
        if m.input_is_float:
            inputs = [np.zeros(m.input_shape[0], np.float32), rng.random(m.input_shape[0], dtype=np.float32)]
        else:
            inputs = [np.zeros(m.input_shape, np.uint8), rng.integers(0, 256, m.input_shape, dtype=np.uint8)]
        for x in inputs:
            run(m, x)
        n += 1
    warm_ram()
    return n


def warm_ram():
    """kpu_ram's kernels rebuild a map from the bytes under it (a CPU layer's bytes, maps of other layouts), a path
    the demo models no longer take: run it on a tiny map, with contiguous and strided arrays as the layers give."""
    y = np.arange(24, dtype=np.uint8).reshape(4, 2, 3)
    for arr in (y, y.transpose(0, 2, 1).copy().transpose(0, 2, 1)):
        ram = KpuRam()
        ram.write(RamMap(0, (4, 2, 3), 4, 1, 1), arr)       # four channels to a 64-byte row
        ram[np.arange(3)] = 7                                 # bytes a CPU layer writes
        ram.read(RamMap(0, (1, 2, 3), 1, 1, 1))
        ram.read(RamMap(0, (2, 2, 3), 2, 1, 1))


def main(argv=None) -> int:
    paths = sys.argv[1:] if argv is None else argv
    t0 = time.perf_counter()
    try:
        n = warm(paths)
    except KmodelError as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    print("emulator kernels compiled and cached (%d models, %.0f s)" % (n, time.perf_counter() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
