"""KPU layer registers, BN table and activation table of a kmodel V3 K210_CONV layer; the fields the layout sets.
(What the registers' numbers compute: host_tools.k210.arith; the KPU's limits and layout rules: k210.kpu.)

Field positions follow the K210 SDK's kpu.h (LSB-first bit ranges). Every register is a dataclass with a
FIELDS table (name, first bit, width, signed); `decode_reg` / `encode_reg` convert between the dataclass and
its u64. The reader decodes with these and the compiler encodes with these, so both agree by construction.
"""
import struct
from dataclasses import dataclass, fields as dc_fields

import numpy as np

from host_tools.k210 import kpu as hw

LAYER_REGS_BYTES = 12 * 8
ACT_TABLE_BYTES = 16 * 8 + 2 * 8
BN_ENTRY_BYTES = 8


class RegisterValueError(ValueError):
    """A value that does not fit its register field (raised by encode)."""


def _signed(v: int, bits: int) -> int:
    return v - (1 << bits) if v & (1 << (bits - 1)) else v


def decode_reg(cls, value: int):
    """u64 -> register dataclass `cls` (fields per cls.FIELDS)."""
    kw = {}
    for name, lo, width, signed in cls.FIELDS:
        v = (value >> lo) & ((1 << width) - 1)
        kw[name] = _signed(v, width) if signed else v
    return cls(**kw)


def encode_reg(reg) -> int:
    """Register dataclass -> u64; a value out of its field's range raises RegisterValueError naming it."""
    out = 0
    for name, lo, width, signed in reg.FIELDS:
        v = int(getattr(reg, name))
        lo_ok, hi_ok = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
        if not lo_ok <= v <= hi_ok:
            raise RegisterValueError("%s.%s = %d does not fit %s%d bits"
                                     % (type(reg).__name__, name, v, "signed " if signed else "", width))
        out |= (v & ((1 << width) - 1)) << lo
    return out


@dataclass
class InterruptEnable:
    int_en: int = 0
    ram_flag: int = 0
    full_add: int = 0
    depth_wise_layer: int = 0
    FIELDS = (("int_en", 0, 1, False), ("ram_flag", 1, 1, False), ("full_add", 2, 1, False),
              ("depth_wise_layer", 3, 1, False))


@dataclass
class ImageAddr:
    image_src_addr: int = 0      # 64-byte rows in KPU RAM
    image_dst_addr: int = 0
    FIELDS = (("image_src_addr", 0, 15, False), ("image_dst_addr", 32, 15, False))


@dataclass
class ImageChannelNum:
    i_ch_num: int = 0            # input channels - 1
    o_ch_num: int = 0            # output channels - 1
    o_ch_num_coef: int = 0       # output channels per weight load - 1
    FIELDS = (("i_ch_num", 0, 10, False), ("o_ch_num", 32, 10, False), ("o_ch_num_coef", 48, 10, False))


@dataclass
class ImageSize:
    i_row_wid: int = 0           # input width - 1
    i_col_high: int = 0          # input height - 1
    o_row_wid: int = 0           # output width - 1 (after pooling)
    o_col_high: int = 0
    FIELDS = (("i_row_wid", 0, 10, False), ("i_col_high", 10, 9, False), ("o_row_wid", 32, 10, False),
              ("o_col_high", 42, 9, False))


@dataclass
class KernelPoolTypeCfg:
    kernel_type: int = 0         # 0 = 1x1, 1 = 3x3
    pad_type: int = 0
    pool_type: int = 0           # see host_tools.k210.arith.POOL_TYPES
    first_stride: int = 0
    bypass_conv: int = 0
    load_para: int = 0
    dma_burst_size: int = 0
    pad_value: int = 0
    bwsx_base_addr: int = 0      # patched by the runtime: BN table address
    FIELDS = (("kernel_type", 0, 3, False), ("pad_type", 3, 1, False), ("pool_type", 4, 4, False),
              ("first_stride", 8, 1, False), ("bypass_conv", 9, 1, False), ("load_para", 10, 1, False),
              ("dma_burst_size", 16, 8, False), ("pad_value", 24, 8, False), ("bwsx_base_addr", 32, 32, False))


@dataclass
class KernelLoadCfg:
    load_coor: int = 0
    load_time: int = 0           # weight loads - 1
    para_size: int = 0           # bytes per load
    para_start_addr: int = 0     # patched by the runtime: weights address
    FIELDS = (("load_coor", 0, 1, False), ("load_time", 1, 6, False), ("para_size", 15, 17, False),
              ("para_start_addr", 32, 32, False))


@dataclass
class KernelOffset:
    coef_column_offset: int = 0
    coef_row_offset: int = 0
    FIELDS = (("coef_column_offset", 0, 4, False), ("coef_row_offset", 4, 12, False))


@dataclass
class KernelCalcTypeCfg:
    channel_switch_addr: int = 0  # rows from one input channel group to the next
    row_switch_addr: int = 0      # rows per image line
    coef_size: int = 0
    coef_group: int = 0           # channels per 64-byte row (1, 2 or 4)
    load_act: int = 0
    active_addr: int = 0          # patched by the runtime: activation table address
    FIELDS = (("channel_switch_addr", 0, 15, False), ("row_switch_addr", 16, 4, False), ("coef_size", 20, 8, False),
              ("coef_group", 28, 3, False), ("load_act", 31, 1, False), ("active_addr", 32, 32, False))


@dataclass
class WriteBackCfg:
    wb_channel_switch_addr: int = 0
    wb_row_switch_addr: int = 0
    wb_group: int = 0
    FIELDS = (("wb_channel_switch_addr", 0, 15, False), ("wb_row_switch_addr", 16, 4, False),
              ("wb_group", 20, 3, False))


@dataclass
class ConvValue:
    shr_w: int = 0
    shr_x: int = 0
    arg_w: int = 0               # signed 24
    arg_x: int = 0               # signed 24
    FIELDS = (("shr_w", 0, 4, False), ("shr_x", 4, 4, False), ("arg_w", 8, 24, True), ("arg_x", 32, 24, True))


@dataclass
class ConvValue2:
    arg_add: int = 0             # signed 40
    FIELDS = (("arg_add", 0, 40, True),)


@dataclass
class DmaParameter:
    send_data_out: int = 0
    channel_byte_num: int = 0    # OW*OH - 1
    dma_total_byte: int = 0      # OW*OH*OC - 1
    FIELDS = (("send_data_out", 0, 1, False), ("channel_byte_num", 16, 16, False), ("dma_total_byte", 32, 32, False))


REG_ORDER = (("interrupt_enabe", InterruptEnable), ("image_addr", ImageAddr),
             ("image_channel_num", ImageChannelNum), ("image_size", ImageSize),
             ("kernel_pool_type_cfg", KernelPoolTypeCfg), ("kernel_load_cfg", KernelLoadCfg),
             ("kernel_offset", KernelOffset), ("kernel_calc_type_cfg", KernelCalcTypeCfg),
             ("write_back_cfg", WriteBackCfg), ("conv_value", ConvValue), ("conv_value2", ConvValue2),
             ("dma_parameter", DmaParameter))


@dataclass
class LayerRegs:
    """The 12 u64 registers of one KPU layer, in file order."""
    interrupt_enabe: InterruptEnable
    image_addr: ImageAddr
    image_channel_num: ImageChannelNum
    image_size: ImageSize
    kernel_pool_type_cfg: KernelPoolTypeCfg
    kernel_load_cfg: KernelLoadCfg
    kernel_offset: KernelOffset
    kernel_calc_type_cfg: KernelCalcTypeCfg
    write_back_cfg: WriteBackCfg
    conv_value: ConvValue
    conv_value2: ConvValue2
    dma_parameter: DmaParameter

    # shapes as the registers state them
    @property
    def in_shape(self):
        s, c = self.image_size, self.image_channel_num
        return (c.i_ch_num + 1, s.i_col_high + 1, s.i_row_wid + 1)

    @property
    def out_shape(self):
        s, c = self.image_size, self.image_channel_num
        return (c.o_ch_num + 1, s.o_col_high + 1, s.o_row_wid + 1)

    @property
    def kernel(self) -> int:
        return 3 if self.kernel_pool_type_cfg.kernel_type == 1 else 1

    @property
    def depthwise(self) -> bool:
        return bool(self.interrupt_enabe.depth_wise_layer)


def default_layer_regs() -> LayerRegs:
    return LayerRegs(*(cls() for _, cls in REG_ORDER))


def decode_layer_regs(data) -> LayerRegs:
    """96 bytes (12 little-endian u64) -> LayerRegs."""
    words = struct.unpack_from("<12Q", data, 0)
    return LayerRegs(*(decode_reg(cls, w) for (_, cls), w in zip(REG_ORDER, words)))


def encode_layer_regs(regs: LayerRegs) -> bytes:
    return struct.pack("<12Q", *(encode_reg(getattr(regs, name)) for name, _ in REG_ORDER))


# ---- BN table: one u64 per output channel ----

@dataclass
class BnEntry:
    norm_mul: int = 0            # signed 24
    norm_add: int = 0            # signed 32
    norm_shift: int = 0          # 4 bits
    FIELDS = (("norm_mul", 0, 24, True), ("norm_add", 24, 32, True), ("norm_shift", 56, 4, False))


def decode_bn(data, count: int) -> list:
    return [decode_reg(BnEntry, w) for w in struct.unpack_from("<%dQ" % count, data, 0)]


def encode_bn(entries) -> bytes:
    return struct.pack("<%dQ" % len(entries), *(encode_reg(e) for e in entries))


def bn_arrays(data, count: int):
    """The BN table as int64 arrays (mul, add, shift), vectorised for the emulator."""
    w = np.frombuffer(data, dtype="<u8", count=count).astype(np.uint64)
    mul = (w & np.uint64(0xFFFFFF)).astype(np.int64)
    mul = np.where(mul >= 1 << 23, mul - (1 << 24), mul)
    add = ((w >> np.uint64(24)) & np.uint64(0xFFFFFFFF)).astype(np.int64)
    add = np.where(add >= 1 << 31, add - (1 << 32), add)
    shift = ((w >> np.uint64(56)) & np.uint64(0xF)).astype(np.int64)
    return mul, add, shift


# ---- activation table: 16 segments + 16 result biases, 144 bytes ----

@dataclass
class ActSegment:
    x_start: int = 0             # signed 36: the segment applies from this BN output upwards
    y_mul: int = 0               # signed 16
    shift: int = 0               # shift_number, 8 bits
    bias: int = 0                # result_bias, u8
    FIELDS = (("shift", 0, 8, False), ("y_mul", 8, 16, True), ("x_start", 24, 36, True))


def decode_act(data) -> list:
    words = struct.unpack_from("<16Q", data, 0)
    biases = bytes(data[128:144])
    segs = [decode_reg(ActSegment, w) for w in words]
    for s, b in zip(segs, biases):
        s.bias = b
    return segs


def encode_act(segments) -> bytes:
    if len(segments) != 16:
        raise RegisterValueError("activation table needs 16 segments, got %d" % len(segments))
    for s in segments:
        if not 0 <= s.bias <= 255:
            raise RegisterValueError("ActSegment.bias = %d does not fit u8" % s.bias)
    return struct.pack("<16Q", *(encode_reg(s) for s in segments)) + bytes(s.bias for s in segments)


# ---- layout fields (the layout rules themselves are in host_tools.k210.kpu) ----

def layout_fields(h: int, w: int) -> dict:
    """channel_switch_addr, row_switch_addr, coef_group for a map of this size (same values for the wb_* fields)."""
    lay = hw.row_layout(w)
    return {"channel_switch_addr": lay.row_len * h, "row_switch_addr": lay.row_len, "coef_group": lay.groups}


def dma_fields(c: int, h: int, w: int) -> dict:
    return {"channel_byte_num": w * h - 1, "dma_total_byte": w * h * c - 1}


def field_names():
    """Every register field name, for error messages and docs."""
    return [f.name for _, cls in REG_ORDER for f in dc_fields(cls)]
