"""One K210_CONV layer as the compiler writes it: its numbers (layer_arith: TFLite's requantization in KPU fields,
inside the vendor envelope, which k210.arith turns into the layer's predicted outputs) and its registers, derived
from its shapes by the layout rules of host_tools.k210.kpu and .registers.

Values the runtime patches (BN, weights and activation table addresses) stay 0, as in nncase's files; constant
fields (load_para, load_coor, load_act, dma_burst_size 15, send_data_out 0: the runtime sets it for main-memory
output) carry the values nncase writes.
"""
from dataclasses import replace

import numpy as np

from host_tools.compiler import kpu_arith as A
from host_tools.k210 import arith as K
from host_tools.k210 import envelope as E
from host_tools.k210 import kpu as hw
from host_tools.k210 import registers as R

KERNEL_TYPES = {1: 0, 3: 1}
DMA_BURST_SIZE = 15


def conv_regs(in_shape, out_ch, kernel, depthwise, pool_type, src_row, dst_row, args, weight_bits=8) -> R.LayerRegs:
    """LayerRegs for a conv of a (c, h, w) map in KPU RAM at src_row, writing its pooled output at dst_row.

    args: anything with arg_x, shr_x, arg_w, shr_w, arg_add and pad_value (a kpu_arith.ConvArgs, a ConvArith).
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


# envelope quantities that fewer BN units per output step bring down
_PER_STEP = {"norm_mul", "norm_add", "norm_shift", "bn", "bn-x_start", "acc*norm_mul"}


def layer_arith(layer) -> K.ConvArith:
    """Every number of a lowered ir.ConvLayer's arithmetic as the kmodel will hold it (k210.arith.ConvArith):
    TFLite's requantization on the KPU, inside the vendor envelope where the layer allows. What it computes is
    k210.arith.forward(layer_arith(layer), x): the compiler's prediction, the emulator's reference."""
    args = A.conv_args(layer.x0, layer.w0, layer.kernel)
    oc = layer.out_ch
    none = np.zeros(oc, np.int64)
    base = K.ConvArith(layer.weights, layer.depthwise, args.pad_value, args.arg_x, args.shr_x, args.arg_w, args.shr_w,
                       args.arg_add, none, none, none, *(np.zeros(A.SEGMENTS, np.int64),) * 4, layer.pool)
    acc = E.acc_range(base)
    acc_abs = np.maximum(np.abs(acc[0]), np.abs(acc[1]))
    lo, hi = layer.clamp
    leaky = None
    if layer.post is not None:
        alpha, ratio, z2, lo2, hi2 = layer.post
        leaky = (alpha, ratio, z2, hi2)
    m, b = layer.multipliers, layer.bias
    first = max(lo - layer.conv_zero, float(((acc[0] + b) * m).min()) - 1)
    r, k = A.units_per_step(m, b, acc[0], acc[1], first)
    span = float(((acc[1] + b) * m).max()) - first        # output steps the first rising segment may cover
    y_max = E.FIELDS["y_mul"][1]
    best = None
    for _ in range(64):
        y_max = min(y_max, max(1, int(A.signed_max(E.WIDTHS["(bn-x_start)*y_mul"]) // (r * span + A.MARGIN))))
        y_mul, shift = A.slope_fields(1 / r, y_max, E.FIELDS["shift"][1])
        m_ref = y_mul / float(1 << shift)
        offset = int(round(k / m_ref))
        fields = A.bn_fields(m, b, acc_abs, m_ref, offset)
        if fields is None:
            r *= 2 ** -0.25
            continue
        mul, nshift, add = fields
        ends = [(v * mul >> nshift) + add for v in acc]
        reach = (int(np.minimum(*ends).min()), int(np.maximum(*ends).max()))
        segs = A.activation_table(A.output_pieces(m_ref, layer.conv_zero, lo, hi, leaky, offset), reach, y_max)
        best = replace(base, norm_mul=mul, norm_shift=nshift, norm_add=add,
                       **{f: np.array([getattr(s, f) for s in segs], np.int64)
                          for f in ("x_start", "y_mul", "shift", "bias")})
        names = {e.name for e in E.excesses(best, acc)}
        if names & _PER_STEP:
            r *= 2 ** -0.25
        elif "(bn-x_start)*y_mul" in names and y_max > 1:
            y_max //= 2
        else:
            break       # inside, or outside by what no choice here changes (the compile check refuses it)
    return best


def tables(a: K.ConvArith):
    """(BN entries, activation segments) of a layer's numbers, as the file holds them."""
    bn = [R.BnEntry(norm_mul=int(m), norm_add=int(d), norm_shift=int(s))
          for m, d, s in zip(a.norm_mul, a.norm_add, a.norm_shift)]
    act = [R.ActSegment(x_start=int(x), y_mul=int(y), shift=int(s), bias=int(b))
           for x, y, s, b in zip(a.x_start, a.y_mul, a.shift, a.bias)]
    return bn, act
