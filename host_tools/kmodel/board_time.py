"""Predicted Maix Bit time of a parsed kmodel: host_tools.k210.cost applied layer by layer. Calibrated on V3
files; a V4 file (nncase v0.2) is timed with the same KPU and CPU costs, its MatMul nodes as float on the CPU
(cost.v4_matmul_us: the published pairs are in docs/board-time.md).

predict(model) gives the forward from RAM (kpu.load), with kpu.load_flash single and dual buffered, and the
kpu.load itself, in milliseconds; `kmodel info` prints it and the simulator's KPU charges it.
"""
from dataclasses import dataclass

from host_tools.k210 import cost

LOAD_FLASH_SPI_HZ = 80_000_000     # the spi_speed MaixPy's examples (and the published figures) pass


@dataclass(frozen=True)
class Prediction:
    ram: float                  # ms per kpu.forward, model in RAM
    load_flash_dual: float      # ms per forward with kpu.load_flash(..., is_dual_buf=1, ..., spi_hz)
    load_flash_single: float
    load: float                 # ms of kpu.load itself
    layers: tuple               # ms per layer from RAM
    load_flash_load: float      # ms of kpu.load_flash itself

    def as_dict(self) -> dict:
        return {"ram": round(self.ram, 2), "load_flash_dual": round(self.load_flash_dual, 2),
                "load_flash_single": round(self.load_flash_single, 2), "load": round(self.load, 1)}


def _elements(L) -> int:
    sizes = [c * h * w for c, h, w in (L.in_shape, L.out_shape) if c is not None] if L.in_shape and L.out_shape \
        else []
    return max(sizes) if sizes else max([n for _, _, n, _ in L.mem] or [0])


def layer_us(L) -> float:
    if L.regs is not None:              # a KPU conv: V3 K210_CONV or V4 KPUConv2D
        c, h, w = L.regs.in_shape
        oc, oh, ow = L.regs.out_shape
        out = oc * oh * ow if L.fields["flags"] & 1 else 0
        return cost.kpu_conv_us(c, h, w, oc, L.regs.depthwise, L.weights.nbytes, out, L.weights.itemsize * 8)
    if L.type_name == "MatMul":         # V4: float on the CPU
        return cost.v4_matmul_us(L.fields["a_rows"] * L.fields["a_cols"] * L.fields["b_cols"])
    return cost.cpu_layer_us(L.type_name, _elements(L))


def predict(model, spi_hz: int = LOAD_FLASH_SPI_HZ, batch: int = cost.LOAD_FLASH_BATCH) -> Prediction:
    runs = [layer_us(L) for L in model.layers]
    bodies = [(t, L.body_size) for t, L in zip(runs, model.layers)]
    return Prediction(sum(runs) / 1e3, cost.load_flash_forward_us(bodies, True, spi_hz, batch) / 1e3,
                      cost.load_flash_forward_us(bodies, False, spi_hz) / 1e3, cost.kpu_load_us(model.size) / 1e3,
                      tuple(t / 1e3 for t in runs), cost.load_flash_load_us(spi_hz) / 1e3)


def figure_ms(model, fig: cost.Figure) -> float:
    """The prediction for a published figure (cost.PUBLISHED) at its stated SPI clock and batch; run_yolo2
    figures add the region layer over the model's outputs."""
    ms = getattr(predict(model, fig.spi_hz or LOAD_FLASH_SPI_HZ, fig.batch), fig.quantity)
    if fig.yolo2:
        ms += cost.region_us(sum(c * h * w for c, h, w in model.output_shapes)) / 1e3
    return ms


def format_prediction(p: Prediction, spi_hz: int = LOAD_FLASH_SPI_HZ) -> str:
    """The predictions as `kmodel info` prints them."""
    return ("predicted Maix Bit time (host_tools/k210/cost.py, docs/board-time.md): kpu.forward %.1f ms from RAM; "
            "with kpu.load_flash at %g MHz SPI %.1f ms dual-buffered (batch 0x%X), %.1f ms single; kpu.load %.0f ms"
            % (p.ram, spi_hz / 1e6, p.load_flash_dual, cost.LOAD_FLASH_BATCH, p.load_flash_single, p.load))


def forward_us(model, flash_mode: str = None, spi_hz: int = LOAD_FLASH_SPI_HZ,
               batch: int = cost.LOAD_FLASH_BATCH) -> float:
    """One kpu.forward on the board: flash_mode None (in RAM), 'single' or 'dual' (kpu.load_flash buffers)."""
    p = predict(model, spi_hz, batch)
    return 1e3 * {None: p.ram, "single": p.load_flash_single, "dual": p.load_flash_dual}[flash_mode]
