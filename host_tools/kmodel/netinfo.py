"""Model summary: per-layer shapes, kernels, pools, weight bytes, and the memory a kmodel needs on a K210.

heap is what `kpu.load` from a file or flash offset into RAM takes from the system heap: the whole file
(the SDK runs it in place), main memory (malloc'd at load), and during a forward the largest
FULLY_CONNECTED layer's weight copy (the SDK mallocs and copies them on every run).
heap_flash approximates `kpu.load_flash`: main memory plus two buffers of the largest layer body
(dual-buffer streaming); the firmware's exact buffering is not public.
"""
from dataclasses import dataclass, field

from host_tools.k210 import envelope as E
from host_tools.k210 import kpu as hw
from host_tools.k210 import registers as R
from host_tools.k210.arith import conv_arith
from host_tools.k210.firmware import ModelMemory
from host_tools.kmodel.reader import K210_CONV, K210_ADD_PADDING, K210_UPLOAD, FULLY_CONNECTED, Kmodel


# the compilers each kmodel version comes from (ours writes V3 too)
GENERATORS = {3: "nncase v0.1 format", 4: "nncase v0.2"}
DTYPES = {"B": "u8", "f": "f32"}


@dataclass
class NetInfo:
    name: str
    version: int
    layers: list                    # dicts, see layer_info()
    main_mem: int                   # bytes of main memory (header main_mem_usage)
    kpu_ram: int                    # bytes of the 2 MiB KPU RAM the feature maps span (lowest to highest byte)
    weights: int                    # parameter bytes: conv weights + BN + activation tables, FC floats, tables
    heap: int                       # system-heap bytes kpu.load into RAM needs (see module doc)
    heap_flash: int                 # approximate system-heap bytes for kpu.load_flash
    largest_layer: int              # bytes of the largest layer body (kpu.load_flash streams one at a time)
    file_size: int
    input_shape: tuple
    input_is_float: bool
    output_shapes: list
    output_typecodes: list
    macs: int                       # multiply-accumulates of the KPU conv layers per frame
    notes: list = field(default_factory=list)
    envelope: dict = field(default_factory=dict)    # conv layer index -> [k210.envelope.Excess]; empty: inside
    widths: dict = field(default_factory=dict)      # each envelope quantity's worst value over the conv layers

    @property
    def memory(self) -> ModelMemory:
        """What the model asks of a firmware build (host_tools.k210.firmware.verdict reads it)."""
        return ModelMemory(self.heap, self.heap_flash, self.largest_layer)


def _weight_bytes(L, weight_bits) -> int:
    if L.type == K210_CONV:
        return L.weights.size * weight_bits // 8 + 8 * L.regs.out_shape[0] + R.ACT_TABLE_BYTES
    if L.type == FULLY_CONNECTED:
        return 4 * (L.fields["in_channels"] + 1) * L.fields["out_channels"]
    if L.type == 13:
        return 256
    if L.type == 24:
        return 8 * L.fields["channels"]
    return 0


def _kpu_extent(L):
    """(first, one past the last) KPU RAM byte this layer touches, or None."""
    if L.type == K210_CONV:
        r = L.regs
        ends, starts = [], []
        for addr, shape, g, rl, cs in ((r.image_addr.image_src_addr, L.in_shape, r.kernel_calc_type_cfg.coef_group,
                                        r.kernel_calc_type_cfg.row_switch_addr,
                                        r.kernel_calc_type_cfg.channel_switch_addr),
                                       (r.image_addr.image_dst_addr, L.out_shape, r.write_back_cfg.wb_group,
                                        r.write_back_cfg.wb_row_switch_addr,
                                        r.write_back_cfg.wb_channel_switch_addr)):
            c, h, _ = shape
            starts.append(64 * addr)
            ends.append(64 * (addr + (-(-c // g) - 1) * cs + rl * h))
        return min(starts), max(ends)
    if L.type == K210_UPLOAD:
        f = L.fields
        return 64 * f["kpu_out"], 64 * (f["kpu_out"] + hw.ram_rows(f["c"], f["h"], f["w"]))
    if L.type == K210_ADD_PADDING:
        return 64 * L.fields["kpu_out"], 64 * (L.fields["kpu_out"] + hw.ram_rows(L.fields["channels"], 4, 4))
    return None


def runs_on(L, kpu_type=K210_CONV) -> str:
    """Where a layer runs: "KPU", or the CPU on uint8 or float32 data ("CPU u8->f32" where it converts)."""
    if L.type == kpu_type:
        return "KPU"
    i, o = DTYPES.get(L.in_dtype, L.in_dtype), DTYPES.get(L.out_dtype, L.out_dtype)
    return "CPU " + (i if i == o else i + "->" + o)


def layer_info(L, weight_bits) -> dict:
    d = {"index": L.index, "type": L.type_name, "type_id": L.type, "runs": runs_on(L), "in_shape": L.in_shape,
         "out_shape": L.out_shape, "kernel": None, "pool": None, "depthwise": False,
         "weight_bytes": _weight_bytes(L, weight_bits), "macs": 0,
         "main_mem_out": L.type != K210_CONV or bool(L.fields["flags"] & 1), "stock_sdk": L.stock_sdk}
    if L.type == K210_CONV:
        r = L.regs
        d.update(kernel=r.kernel, pool=r.kernel_pool_type_cfg.pool_type, depthwise=r.depthwise)
        ic, ih, iw = L.in_shape
        d["macs"] = r.out_shape[0] * (1 if r.depthwise else ic) * r.kernel ** 2 * ih * iw
    return d


def envelope(model: Kmodel):
    """({conv layer index: [Excess]} for the layers outside the vendor envelope, {quantity: worst over the conv
    layers}): fields as (lowest, highest), widths in bits (k210.envelope)."""
    out, worst = {}, {}
    for L in model.layers:
        if L.regs is None:          # not a KPU conv (V3 K210_CONV or V4 KPUConv2D)
            continue
        a = conv_arith(L.regs, L.weights, L.bn, L.act)
        for k, v in E.measure(a).items():
            old = worst.get(k, v)
            worst[k] = (min(old[0], v[0]), max(old[1], v[1])) if isinstance(v, tuple) else max(old, v)
        bad = E.excesses(a)
        if bad:
            out[L.index] = bad
    return out, worst


def netinfo(model: Kmodel) -> NetInfo:
    if model.version == 4:
        from host_tools.kmodel import netinfo_v4     # it builds on this module
        return netinfo_v4.netinfo(model)
    layers = [layer_info(L, model.weight_bits) for L in model.layers]
    fc_copy = max([4 * (L.fields["in_channels"] + 1) * L.fields["out_channels"]
                   for L in model.layers if L.type == FULLY_CONNECTED] or [0])
    max_body = max(L.body_size for L in model.layers)
    spans = [e for e in (_kpu_extent(L) for L in model.layers) if e]
    outside, worst = envelope(model)
    notes = []
    for L in model.layers:
        if not L.stock_sdk:
            notes.append("layer %d: %s runs only on Maix-EMC's patched driver, not stock MaixPy"
                         % (L.index, L.type_name))
    return NetInfo(
        name=model.name, version=model.version, layers=layers, main_mem=model.main_mem_usage,
        kpu_ram=max(e for _, e in spans) - min(s for s, _ in spans) if spans else 0,
        weights=sum(d["weight_bytes"] for d in layers),
        heap=model.size + model.main_mem_usage + fc_copy,
        heap_flash=model.main_mem_usage + 2 * max_body + fc_copy, largest_layer=max_body,
        file_size=model.size, input_shape=model.input_shape, input_is_float=model.input_is_float,
        output_shapes=list(model.output_shapes), output_typecodes=list(model.output_typecodes),
        macs=sum(d["macs"] for d in layers), notes=notes, envelope=outside, widths=worst)


def format_envelope(info: NetInfo) -> str:
    """Whether the conv layers stay inside the arithmetic envelope of vendor-made kmodels, and where not."""
    w = info.widths
    head = "arithmetic envelope of vendor-made kmodels (k210/envelope.py): %s; widest: %s" % (
        "inside" if not info.envelope else "OUTSIDE at %d conv layers" % len(info.envelope),
        ", ".join("%s %d/%d bits" % (k, w[k], E.WIDTHS[k]) for k in E.WIDTHS))
    return "\n".join([head] + ["  layer %d: %s" % (i, "; ".join(str(e) for e in bad))
                               for i, bad in sorted(info.envelope.items())])


def format_netinfo(info: NetInfo) -> str:
    """The summary as `kmodel info` prints it."""
    def shp(s):
        return "x".join(str(v) for v in s) if s else "-"
    lines = ["%s: kmodel V%d (%s), %d layers, input %s %s, outputs %s" % (
        info.name, info.version, GENERATORS.get(info.version, "unknown compiler"), len(info.layers),
        shp(info.input_shape),
        "float32" if info.input_is_float else "uint8 planar",
        ", ".join("%s '%s'" % (shp(s), c) for s, c in zip(info.output_shapes, info.output_typecodes))),
        "%3s  %-34s %-11s %-13s %-13s %6s %4s %10s" % ("#", "type", "runs on", "in (c,h,w)", "out (c,h,w)",
                                                       "kernel", "pool", "weights")]
    for d in info.layers:
        k = "-" if d["kernel"] is None else "%dx%d%s" % (d["kernel"], d["kernel"], " dw" if d["depthwise"] else "")
        lines.append("%3d  %-34s %-11s %-13s %-13s %6s %4s %10d" % (
            d["index"], d["type"], d["runs"], shp(d["in_shape"]), shp(d["out_shape"]), k,
            "-" if d["pool"] is None else d["pool"], d["weight_bytes"]))
    lines += ["file %d B, weights %d B, main memory %d B, KPU RAM %d B of 2 MiB, conv MACs %d per frame"
              % (info.file_size, info.weights, info.main_mem, info.kpu_ram, info.macs),
              "system heap for kpu.load (RAM): %d B; for kpu.load_flash about %d B" % (info.heap, info.heap_flash)]
    if info.widths:
        lines.append(format_envelope(info))
    lines += ["note: " + n for n in info.notes]
    return "\n".join(lines)
