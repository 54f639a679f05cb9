"""kmodel V3: reader, KPU emulator, model summary. See docs/ARCHITECTURE.md.

    from host_tools.kmodel import load, run, netinfo, KmodelError
    m = load("yolo.kmodel"); outs = run(m, planar_uint8_chw)
"""
from host_tools.kmodel.errors import KmodelError
from host_tools.kmodel.reader import Kmodel, Layer, load, parse
from host_tools.kmodel.emulator import run

__all__ = ["KmodelError", "Kmodel", "Layer", "load", "parse", "run", "netinfo", "NetInfo"]


def __getattr__(name):
    # netinfo is imported lazily so the reader does not depend on it
    if name in ("netinfo", "NetInfo"):
        from host_tools.kmodel import netinfo as mod
        return getattr(mod, name)
    raise AttributeError(name)
