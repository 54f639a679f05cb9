"""What each calibration method costs: validation accuracy of the float model, its int8 tflite (LiteRT) and its
kmodel (KPU emulator) per method, as a table (`quantize` writes it beside the tflite, bench/calibration.py prints
it)."""
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from host_tools.pipeline.calibration import METHODS, PERCENTILE, Calibration


@dataclass(frozen=True)
class Row:
    method: str
    float: float
    int8: float
    kmodel: float
    tflite: bytes

    def figures(self) -> dict:
        return {"method": self.method, "float": self.float, "int8": self.int8, "kmodel": self.kmodel}


def compare(model, calib_float, x_val_u8, y_val, percentile=PERCENTILE, methods=METHODS, progress=False) -> list:
    """One Row per method: the model quantized with it, measured on the same validation images."""
    from host_tools.compiler import tflite_graph
    from host_tools.compiler.build import compile_graph
    from host_tools.pipeline import evaluate, quantize, train
    y = np.asarray(y_val)

    def acc(p):
        return float((np.asarray(p).reshape(len(y), -1).argmax(1) == y).mean())
    p_float = acc(train.predict(model, x_val_u8))
    rows = []
    for m in methods:
        tfl = quantize.to_int8_tflite(model, calib_float, Calibration(m, percentile))
        km = compile_graph(tflite_graph.parse(tfl)).kmodel
        rows.append(Row(m, p_float, acc(quantize.run_int8(tfl, x_val_u8)),
                        acc(evaluate.kmodel_outputs(km, x_val_u8, "kmodel (%s)" % m, progress)), tfl))
    return rows


def table(rows, images: int, percentile=PERCENTILE) -> str:
    lines = ["| calibration | float (Keras) | int8 (LiteRT) | kmodel (KPU emulator) |", "|---|---|---|---|"]
    for r in rows:
        name = "percentile %g" % percentile if r.method == "percentile" else r.method
        lines.append("| %s | %.4f | %.4f | %.4f |" % (name, r.float, r.int8, r.kmodel))
    return "\n".join(lines + ["", "Validation accuracy on %d images." % images])


def write(out_stem, rows, images, source, percentile=PERCENTILE) -> dict:
    """<stem>_calibration.md and .json."""
    from host_tools.files import write_atomic
    stem = Path(out_stem)
    md = write_atomic(stem.with_name(stem.name + "_calibration.md"),
                      "# Calibration methods: %s\n\n%s\n" % (source, table(rows, images, percentile)))
    js = write_atomic(stem.with_name(stem.name + "_calibration.json"),
                      json.dumps({"source": source, "images": images, "percentile": percentile,
                                  "methods": [r.figures() for r in rows]}, indent=1) + "\n")
    return {"md": md, "json": js}
