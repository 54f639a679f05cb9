"""Fast checks of the compiler's pieces: activation tables against TFLite's requantization, the big-endian form,
refusing a float model."""
import numpy as np
import pytest

from host_tools.compiler import CompileError, compile_file
from host_tools.k210.bigendian import from_big_endian, stored_size, to_big_endian
from host_tools.compiler.kpu_arith import activation_table, bn_table, eval_segments, output_pieces
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


def test_bn_table_keeps_fields_in_range_and_ratios_exact():
    mults = np.array([2e-3, 1e-3, 5e-5])
    bias = np.array([12000, -300000, 7])
    bound = np.array([1e6, 1e6, 1e6])
    mul, shift, add, m_ref = bn_table(mults, bias, bound)
    assert mul.max() < 1 << 23 and np.abs(add).max() < 1 << 31 and shift.min() >= 0 and shift.max() <= 15
    np.testing.assert_allclose(mul / 2.0 ** shift * m_ref, mults, rtol=1e-5)
    np.testing.assert_allclose(add, bias * mul / 2.0 ** shift, atol=0.5)
    assert np.all((bound + np.abs(bias)) * mul / 2.0 ** shift < 2 ** 34)      # BN stays inside 36 bits
    assert mults[0] / m_ref > 1000           # a thousand BN units per output step: the floor is negligible


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


def test_a_non_image_model_is_refused_and_nothing_written(tmp_path):
    src = fixture_file("nncase-iris", "iris.tflite")
    with pytest.raises(CompileError) as e:
        compile_file(src, tmp_path / "out", "iris", "classifier", ["a", "b", "c"])
    assert e.value.rule == "image input" and "[1, 4]" in str(e.value) and str(src) in str(e.value)
    assert not (tmp_path / "out").exists()


def test_compile_command_reports_a_refusal_with_exit_status_1(tmp_path, capsys):
    from host_tools.__main__ import main
    src = fixture_file("nncase-iris", "iris.tflite")
    assert main(["compile", str(src), "--out", str(tmp_path / "m"), "--kind", "classifier"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("compile: refused: ") and "iris.tflite" in err and "rule" not in err.split(":")[0]
    assert not (tmp_path / "m").exists()
