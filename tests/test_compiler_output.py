"""Fast checks of the compiler's pieces: activation tables against TFLite's requantization, the big-endian form,
refusing a float model."""
import numpy as np
import pytest

from host_tools.compiler import CompileError, compile_file
from host_tools.compiler.kpu_arith import (activation_table, bn_fields, eval_segments, output_pieces, slope_fields,
                                          units_per_step)
from host_tools.k210.bigendian import from_big_endian, stored_size, to_big_endian
from host_tools.k210.envelope import FIELDS, WIDTHS
from tests.conftest import fixture_file

BN = np.arange(-4_000_000, 4_000_000, 331, dtype=np.int64)


def _tflite_out(t, zo, lo, hi):
    return np.clip(np.round(t) + zo, lo, hi)


@pytest.mark.parametrize("zo, lo, hi", [(0, 0, 255), (141, 141, 255), (20, 20, 200)])
def test_linear_relu_relu6_tables_give_tflites_bytes(zo, lo, hi):
    m_ref = 7.3e-5
    segs = activation_table(output_pieces(m_ref, zo, lo, hi))
    got = eval_segments(segs, BN)
    ref = _tflite_out(BN * m_ref, zo, lo, hi)
    assert np.abs(got - ref).max() <= 1
    assert (got != ref).mean() < 0.002          # only exact rounding ties may differ


def test_leaky_relu_table_is_within_one_step_of_tflites_two_roundings():
    m_ref, z1, alpha, ratio, z2 = 1e-4, 141, 0.1, 1.996, 28
    segs = activation_table(output_pieces(m_ref, z1, 0, 255, (alpha, ratio, z2)))
    got = eval_segments(segs, BN)
    d = _tflite_out(BN * m_ref, z1, 0, 255) - z1                     # the conv op's output, then LEAKY_RELU
    ref = np.clip(np.round(z2 + np.where(d >= 0, d, alpha * d) * ratio), 0, 255)
    assert np.abs(got - ref).max() <= 1
    assert len(segs) == 16 and segs[0].x_start == -(1 << 35)


def test_bn_fields_keep_the_ratios_inside_the_envelope():
    """Units per step as many as the envelope allows; each channel's norm_mul / 2^norm_shift is M_c / m_ref to
    the precision its field gives, norm_add the bias in BN units less the layer's offset."""
    mults = np.array([2e-3, 1e-3, 5e-5])
    bias = np.array([12000, -30000, 7])
    acc_lo, acc_hi = np.full(3, -1_000_000), np.full(3, 1_000_000)
    r, k = units_per_step(mults, bias, acc_lo, acc_hi, first_step=-128)
    assert r > 1000                  # a thousand BN units per output step: the BN floor moves an output 1/1000 step
    y_mul, shift = slope_fields(1 / r, FIELDS["y_mul"][1], FIELDS["shift"][1])
    m_ref = y_mul / 2.0 ** shift
    offset = round(k / m_ref)
    mul, nshift, add = bn_fields(mults, bias, np.full(3, 1_000_000), m_ref, offset)
    assert mul.max() <= FIELDS["norm_mul"][1] and (nshift >= FIELDS["norm_shift"][0]).all() and nshift.max() <= 15
    assert FIELDS["norm_add"][0] <= add.min() and add.max() <= FIELDS["norm_add"][1]
    np.testing.assert_allclose(mul / 2.0 ** nshift * m_ref, mults, rtol=1e-4)
    np.testing.assert_allclose(add + offset, bias * mul / 2.0 ** nshift, atol=0.5)
    bn = [(v * mul >> nshift) + add for v in (acc_lo, acc_hi)]
    assert max(np.abs(b).max() for b in bn) < 2 ** (WIDTHS["bn"] - 1)
    assert (np.abs(acc_hi) * mul).max() < 2 ** (WIDTHS["acc*norm_mul"] - 1)


def test_big_endian_swaps_every_word_and_is_found_in_flash():
    orig = fixture_file("nncase-yolo20", "yolo.kmodel").read_bytes()
    data = orig + bytes(-len(orig) % 4)         # model_le2be pads to whole words
    be = to_big_endian(data)
    assert be[:4] == b"\x00\x00\x00\x03" and data[:4] == b"\x03\x00\x00\x00"
    assert from_big_endian(be) == data
    flash = bytearray(b"\xff" * 0x10000) + be + b"\xff" * 64
    # the header's sizes: this real file's last body is 4 bytes short of its declared size
    assert 0 <= stored_size(flash, 0x10000) - len(orig) <= 7
    assert stored_size(flash, 0) is None


def _damaged_tflite(tmp_path):
    """nncase's iris.tflite cut short: a file that is no tflite (iris itself now compiles, as a float model)."""
    src = tmp_path / "iris.tflite"
    src.write_bytes(fixture_file("nncase-iris", "iris.tflite").read_bytes()[:600])
    return src


def test_a_model_that_cannot_compile_is_refused_and_nothing_written(tmp_path):
    src = _damaged_tflite(tmp_path)
    with pytest.raises(CompileError) as e:
        compile_file(src, tmp_path / "out", "iris", "classifier", ["a", "b", "c"])
    assert e.value.rule == "format" and str(src) in str(e.value)
    assert not (tmp_path / "out").exists()


def test_compile_command_reports_a_refusal_with_exit_status_1(tmp_path, capsys):
    from host_tools.__main__ import main
    src = _damaged_tflite(tmp_path)
    assert main(["compile", str(src), "--out", str(tmp_path / "m"), "--kind", "classifier"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "iris.tflite" in err and err.count("\n") == 1
    assert not (tmp_path / "m").exists()
