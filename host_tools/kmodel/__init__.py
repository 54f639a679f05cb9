"""kmodel V3: reader, KPU emulator, model summary, YOLOv2 region decoder. See docs/ARCHITECTURE.md.

    from host_tools.kmodel import load, run, netinfo, KmodelError
    m = load("yolo.kmodel"); outs = run(m, planar_uint8_chw); info = netinfo(m)
"""
from host_tools.kmodel.errors import KmodelError
from host_tools.kmodel.reader import Kmodel, Layer, load, parse
from host_tools.kmodel.emulator import run
from host_tools.kmodel.netinfo import NetInfo, netinfo  # noqa: F811 (the function shadows its module name)

__all__ = ["KmodelError", "Kmodel", "Layer", "load", "parse", "run", "netinfo", "NetInfo"]
