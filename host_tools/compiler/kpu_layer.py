"""The registers of one K210_CONV layer, derived from its shapes by the layout rules in host_tools.k210.registers.

Values the runtime patches (BN, weights and activation table addresses) stay 0, as in nncase's files; constant
fields (load_para, load_coor, load_act, dma_burst_size 15, send_data_out 0: the runtime sets it for main-memory
output) carry the values nncase writes.
"""
import numpy as np

from host_tools.compiler import kpu_arith as A
from host_tools.k210 import kpu as hw
from host_tools.k210 import registers as R

KERNEL_TYPES = {1: 0, 3: 1}
DMA_BURST_SIZE = 15


def conv_regs(in_shape, out_ch, kernel, depthwise, pool_type, src_row, dst_row, args, weight_bits=8) -> R.LayerRegs:
    """LayerRegs for a conv of a (c, h, w) map in KPU RAM at src_row, writing its pooled output at dst_row.

    args: a kpu_arith.ConvArgs (arg_x, shr_x, arg_w, shr_w, arg_add, pad_value).
    """
    ic, ih, iw = in_shape
    oh, ow = hw.pooled_size(ih, iw, pool_type)
    per_load, para_size, loads = hw.weight_loads(kernel, ic, out_ch, depthwise, weight_bits)
    lay_in = R.layout_fields(ih, iw)
    lay_out = R.layout_fields(oh, ow)
    dma = R.dma_fields(out_ch, oh, ow)
    return R.LayerRegs(
        interrupt_enabe=R.InterruptEnable(int_en=0, ram_flag=0, full_add=0, depth_wise_layer=int(depthwise)),
        image_addr=R.ImageAddr(image_src_addr=src_row, image_dst_addr=dst_row),
        image_channel_num=R.ImageChannelNum(i_ch_num=ic - 1, o_ch_num=out_ch - 1, o_ch_num_coef=per_load - 1),
        image_size=R.ImageSize(i_row_wid=iw - 1, i_col_high=ih - 1, o_row_wid=ow - 1, o_col_high=oh - 1),
        kernel_pool_type_cfg=R.KernelPoolTypeCfg(kernel_type=KERNEL_TYPES[kernel], pad_type=0, pool_type=pool_type,
                                                 first_stride=0, bypass_conv=0, load_para=1,
                                                 dma_burst_size=DMA_BURST_SIZE, pad_value=args.pad_value,
                                                 bwsx_base_addr=0),
        kernel_load_cfg=R.KernelLoadCfg(load_coor=1, load_time=loads - 1, para_size=para_size, para_start_addr=0),
        kernel_offset=R.KernelOffset(),
        kernel_calc_type_cfg=R.KernelCalcTypeCfg(coef_size=0, load_act=1, active_addr=0, **lay_in),
        write_back_cfg=R.WriteBackCfg(wb_channel_switch_addr=lay_out["channel_switch_addr"],
                                      wb_row_switch_addr=lay_out["row_switch_addr"], wb_group=lay_out["coef_group"]),
        conv_value=R.ConvValue(shr_w=args.shr_w, shr_x=args.shr_x, arg_w=args.arg_w, arg_x=args.arg_x),
        conv_value2=R.ConvValue2(arg_add=args.arg_add),
        dma_parameter=R.DmaParameter(send_data_out=0, **dma),
    )


def output_stage(layer):
    """(BN entries, activation segments) of a lowered ir.ConvLayer: TFLite's requantization on the KPU."""
    w = layer.weights.astype(np.int64) - layer.w0
    per_ch = np.abs(w).reshape(w.shape[0], -1).sum(axis=1)
    acc_bound = per_ch * max(layer.x0, 255 - layer.x0)
    norm_mul, norm_shift, norm_add, m_ref = A.bn_table(layer.multipliers, layer.bias, acc_bound)
    bn = [R.BnEntry(norm_mul=int(m), norm_add=int(a), norm_shift=int(s))
          for m, a, s in zip(norm_mul, norm_add, norm_shift)]
    lo, hi = layer.clamp
    leaky = None
    if layer.post is not None:
        alpha, ratio, z2, lo2, hi2 = layer.post
        leaky = (alpha, ratio, z2, hi2)
    segs = A.activation_table(A.output_pieces(m_ref, layer.conv_zero, lo, hi, leaky))
    act = [R.ActSegment(x_start=s.x_start, y_mul=s.y_mul, shift=s.shift, bias=s.bias) for s in segs]
    return bn, act
