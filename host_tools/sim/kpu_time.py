"""Estimated K210 time of one forward pass, from a parsed kmodel (host_tools.kmodel) and COSTS in clock.py.

KPU conv layers: multiply-accumulates at an effective rate + per-layer set-up + weight upload; CPU layers: bytes
they touch at the RISC-V core's rate. With kpu.load_flash the weights stream from SPI flash on every forward.
An estimate for FPS on the virtual board, not a cycle model.
"""
from host_tools.sim.clock import COSTS


def forward_us(model, flash_mode: str = None) -> float:
    """flash_mode: None (weights in RAM), 'single' or 'dual' (kpu.load_flash buffers)."""
    us = 0.0
    weight_bytes = 0
    for L in model.layers:
        if L.regs is not None:          # a KPU conv: V3 K210_CONV or V4 KPUConv2D
            c, h, w = L.regs.in_shape
            oc = L.regs.out_shape[0]
            k = L.regs.kernel
            macs = h * w * k * k * (c if L.regs.depthwise else c * oc)
            wb = L.weights.nbytes if L.weights is not None else 0
            weight_bytes += wb
            us += macs / COSTS["kpu_macs_per_s"] * 1e6 + COSTS["kpu_layer_us"] \
                + wb / COSTS["kpu_weight_bytes_per_s"] * 1e6
        else:
            nbytes = sum(n for _, _, n, _ in L.mem)
            us += nbytes / COSTS["cpu_layer_bytes_per_s"] * 1e6
    if flash_mode is not None:
        rate = COSTS["flash_dual_bytes_per_s"] if flash_mode == "dual" else COSTS["flash_single_bytes_per_s"]
        us += weight_bytes / rate * 1e6
    return us
