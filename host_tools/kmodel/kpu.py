"""One K210_CONV layer by the reference: k210.arith's int64 stages on the numbers the layer holds.

The plain model of the KPU's arithmetic, no proofs and no shortcuts: the emulator runs it with
run(..., exact=True), the tests hold the fast path (kpu_fast) to it, and the compiler predicts its layers with the
same stages (compiler.kpu_layer.layer_arith).
"""
import numpy as np

from host_tools.k210 import arith as A


def layer_arith(layer) -> A.ConvArith:
    """The numbers of a K210_CONV layer (a reader.Layer, or anything with its regs, weights, bn and act)."""
    return A.conv_arith(layer.regs, layer.weights, layer.bn, layer.act)


def forward(layer, x: np.ndarray) -> np.ndarray:
    """The layer's uint8 output map from its (c, h, w) input map."""
    return A.forward(layer_arith(layer), x)
