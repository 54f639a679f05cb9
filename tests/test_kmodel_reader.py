"""The kmodel V3 reader: real files decode, other versions and malformed files give KmodelError."""
import struct

import pytest

from conftest import fixture_file
from host_tools.k210 import kpu as hw
from host_tools.kmodel import KmodelError, parse
from host_tools.k210 import registers as R


def test_yolo20_layers_and_registers():
    data = fixture_file("nncase-yolo20", "yolo.kmodel").read_bytes()
    m = parse(data, "yolo.kmodel")
    assert m.version == 3 and m.flags & 1 and m.main_mem_usage == 43752
    assert len(m.layers) == 17 and m.layers[-1].type_name == "CHANNELWISE_DEQUANTIZE"
    conv = m.layers[12]                               # 1x1, 512 -> 1024
    assert conv.regs.in_shape == (512, 7, 10) and conv.regs.out_shape == (1024, 7, 10) and conv.regs.kernel == 1
    assert m.layers[13].regs.depthwise and m.layers[13].regs.kernel == 3
    # facts doc: IC 128, OC 256 (1x1) -> 240 channels per load, para_size 30720, load_time 1
    l8 = m.layers[8].regs
    assert (l8.kernel_load_cfg.para_size, l8.kernel_load_cfg.load_time, l8.image_channel_num.o_ch_num_coef) == \
        (30720, 1, 239)
    for L in m.layers[:-1]:                           # the chunking rule reproduces every layer's registers
        r = L.regs
        n, size, loads = hw.weight_loads(r.kernel, r.in_shape[0], r.out_shape[0], r.depthwise)
        assert (r.image_channel_num.o_ch_num_coef + 1, r.kernel_load_cfg.para_size,
                r.kernel_load_cfg.load_time + 1) == (n, size, loads), L.index


def test_registers_round_trip_through_encode():
    data = fixture_file("nncase-yolo20", "yolo.kmodel").read_bytes()
    m = parse(data)
    for L in m.layers:
        if L.regs is None:
            continue
        off = L.fields["layer_offset"]
        assert R.encode_layer_regs(R.decode_layer_regs(data[off:off + 96])) == data[off:off + 96]
        a = L.fields["act_offset"]
        assert R.encode_act(R.decode_act(data[a:a + 144])) == data[a:a + 144]
        b = L.fields["bn_offset"]
        n = L.regs.out_shape[0]
        assert R.encode_bn(R.decode_bn(data[b:b + 8 * n], n)) == data[b:b + 8 * n]
        c = L.regs.kernel_calc_type_cfg
        lay = R.layout_fields(L.regs.in_shape[1], L.regs.in_shape[2])
        assert (c.channel_switch_addr, c.row_switch_addr, c.coef_group) == \
            (lay["channel_switch_addr"], lay["row_switch_addr"], lay["coef_group"])


def test_encode_refuses_values_that_do_not_fit():
    with pytest.raises(R.RegisterValueError, match="arg_x"):
        R.encode_reg(R.ConvValue(arg_x=1 << 23))


def test_v5_refused_with_firmware_code_and_a_broken_v4_is_a_format_error():
    v4 = struct.pack("<4I", 0x4B4D444C, 4, 0, 1) + bytes(64)       # V4 goes to reader_v4: no nodes here
    v5 = struct.pack("<4I", 0x4B4D444C, 5, 0, 1) + bytes(64)
    with pytest.raises(KmodelError) as e:
        parse(v4, "m.kmodel")
    assert e.value.code == 2003 and e.value.version == 4 and e.value.field == "nodes" and "m.kmodel" in str(e.value)
    with pytest.raises(KmodelError) as e:
        parse(v5)
    assert e.value.code == 2015 and e.value.field == "version"


def test_truncated_file_names_the_layer_and_field():
    data = fixture_file("emc-cifar10", "cifar10_output.kmodel").read_bytes()
    with pytest.raises(KmodelError) as e:
        parse(data[:5000], "cifar.kmodel")
    assert e.value.code == 2003 and e.value.layer == 3 and e.value.field == "body_size"
    assert "cifar.kmodel" in str(e.value) and "layer 3" in str(e.value)


def test_short_last_body_is_accepted():
    data = fixture_file("nncase-iris", "iris.kmodel").read_bytes()
    assert len(data) == 436          # 4 bytes short of the last body's padded size
    m = parse(data)
    assert m.layers[-1].offset + m.layers[-1].body_size == len(data) + 4
    with pytest.raises(KmodelError) as e:
        parse(data[:-4])             # 8 short is too many
    assert e.value.layer == 1 and e.value.field == "body_size"
