"""Model summary of a kmodel V4 (as netinfo.NetInfo), and the memory it needs under MaixPy's V4 runtime.

heap (kpu.load into RAM): the whole file (the runtime runs it in place), main memory (allocated at load), and the
V4 runtime's extra working memory (k210.firmware.V4_RUNTIME_EXTRA). heap_flash (kpu.load_flash) approximates
the streaming as for V3: main memory, two buffers of the largest node body, and that extra.
"""
from host_tools.k210 import kpu as hw
from host_tools.k210 import registers as R
from host_tools.k210.firmware import V4_RUNTIME_EXTRA
from host_tools.kmodel.netinfo import NetInfo, envelope, runs_on
from host_tools.kmodel.reader_v4 import KPU_CONV2D, MEM_KPU, TARGETS, KmodelV4



def _weight_bytes(L) -> int:
    if L.type == KPU_CONV2D:
        return L.weights.size + R.BN_ENTRY_BYTES * L.regs.out_shape[0] + R.ACT_TABLE_BYTES
    return sum(int(v.nbytes) for k, v in L.fields.items() if k in ("weights", "bias"))


def layer_info(L) -> dict:
    d = {"index": L.index, "type": L.type_name, "type_id": L.type, "runs": runs_on(L, KPU_CONV2D),
         "in_shape": L.in_shape, "out_shape": L.out_shape, "kernel": None, "pool": None, "depthwise": False,
         "weight_bytes": _weight_bytes(L), "macs": 0,
         "main_mem_out": L.type != KPU_CONV2D or bool(L.fields["flags"]), "stock_sdk": True}
    if L.type == KPU_CONV2D:
        r = L.regs
        ic, ih, iw = L.in_shape
        d.update(kernel=r.kernel, pool=r.kernel_pool_type_cfg.pool_type, depthwise=r.depthwise,
                 macs=r.out_shape[0] * (1 if r.depthwise else ic) * r.kernel ** 2 * ih * iw)
    return d


def _kpu_extent(model: KmodelV4):
    """(lowest, highest) byte of KPU RAM the model's maps and KPU ranges touch, or None."""
    spans = []
    for L in model.layers:
        if L.type == KPU_CONV2D:
            r = L.regs
            for addr, (c, h, w) in ((r.image_addr.image_src_addr, L.in_shape),
                                    (r.image_addr.image_dst_addr, L.out_shape)):
                spans.append((addr * hw.ROW_BYTES, (addr + hw.ram_rows(c, h, w)) * hw.ROW_BYTES))
    for rng in list(model.inputs) + [v for L in model.layers for v in L.fields.values() if hasattr(v, "memory")]:
        if rng.memory == MEM_KPU and rng.size:
            spans.append((rng.start, rng.end))
    return (min(s for s, _ in spans), max(e for _, e in spans)) if spans else None


def netinfo(model: KmodelV4) -> NetInfo:
    layers = [layer_info(L) for L in model.layers]
    span = _kpu_extent(model)
    outside, worst = envelope(model)
    largest = max(L.body_size for L in model.layers)
    notes = ["kmodel V4 (target %s): MaixPy loads it on builds with V4 support (full, not minimum), and needs "
             "kpu.set_outputs(task, idx, w, h, ch) before forward or run_yolo2" % TARGETS.get(model.target, "?")]
    if model.constants[1]:
        notes.append("constants: %d B (read in place from the loaded file)" % model.constants[1])
    return NetInfo(
        name=model.name, version=model.version, layers=layers, main_mem=model.main_mem_usage,
        kpu_ram=span[1] - span[0] if span else 0,
        weights=sum(d["weight_bytes"] for d in layers) + model.constants[1],    # constants: matmul weights
        heap=model.size + model.main_mem_usage + V4_RUNTIME_EXTRA,
        heap_flash=model.main_mem_usage + 2 * largest + V4_RUNTIME_EXTRA, largest_layer=largest,
        file_size=model.size, input_shape=model.input_shape, input_is_float=model.input_is_float,
        output_shapes=list(model.output_shapes), output_typecodes=list(model.output_typecodes),
        macs=sum(d["macs"] for d in layers), notes=notes, envelope=outside, widths=worst)
