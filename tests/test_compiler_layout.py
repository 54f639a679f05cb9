"""The compiler's register rules re-derive every K210_CONV layer of nncase's yolo20 file from its shapes."""
import dataclasses

from host_tools.compiler.kpu_arith import ConvArgs
from host_tools.compiler.kpu_layer import conv_regs
from host_tools.kmodel import load
from tests.conftest import fixture_file


def _conv_layers():
    m = load(fixture_file("nncase-yolo20", "yolo.kmodel"))
    return [L for L in m.layers if L.type_name == "K210_CONV"]


def test_every_yolo20_conv_layer_rederived_exactly():
    layers = _conv_layers()
    assert len(layers) == 16
    for L in layers:
        nn = L.regs
        ic, ih, iw = L.in_shape
        oc = L.out_shape[0]
        cv, cv2 = nn.conv_value, nn.conv_value2
        # The quantization arguments and KPU RAM addresses are the planner's and nncase's choice, not layout:
        # carry those over and re-derive everything else from (shape, kernel, depthwise, pool).
        args = ConvArgs(cv.arg_x, cv.shr_x, cv.arg_w, cv.shr_w, cv2.arg_add, nn.kernel_pool_type_cfg.pad_value)
        ours = conv_regs((ic, ih, iw), oc, nn.kernel, nn.depthwise, nn.kernel_pool_type_cfg.pool_type,
                         nn.image_addr.image_src_addr, nn.image_addr.image_dst_addr, args)
        for f in dataclasses.fields(nn):
            assert dataclasses.asdict(getattr(ours, f.name)) == dataclasses.asdict(getattr(nn, f.name)), \
                "layer %d register %s" % (L.index, f.name)


def test_yolo20_weight_chunking_matches_the_documented_case():
    # IC 128 -> OC 256 1x1: 240 channels per 30 KiB load, two loads (kmodel-v3-facts.md)
    L = [L for L in _conv_layers() if L.in_shape[0] == 128 and L.out_shape[0] == 256][0]
    load_cfg = L.regs.kernel_load_cfg
    assert (L.regs.image_channel_num.o_ch_num_coef + 1, load_cfg.para_size, load_cfg.load_time) == (240, 30720, 1)
    args = ConvArgs(0, 0, 0, 0, 0, 0)
    ours = conv_regs(L.in_shape, 256, 1, False, 1, 0, 0, args)
    assert (ours.image_channel_num.o_ch_num_coef, ours.kernel_load_cfg.para_size,
            ours.kernel_load_cfg.load_time) == (239, 30720, 1)
