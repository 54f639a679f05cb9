"""`compile --dump DIR`: the lowered graph as text and Graphviz .dot, read back and held to the kmodel written."""
import re

from conftest import ROOT
from host_tools.__main__ import main as cli
from host_tools.compiler.dump import read_table
from host_tools.kmodel import load

TFLITE = ROOT / "models" / "digits_int8.tflite"


def test_dump_rows_are_the_kmodel_layers_with_their_offsets(tmp_path, capsys):
    assert cli(["compile", str(TFLITE), "--out", str(tmp_path / "m"), "--dump", str(tmp_path / "d")]) == 0
    assert "lowered graph: %s/digits.txt, digits.dot" % (tmp_path / "d") in capsys.readouterr().out
    rows = read_table((tmp_path / "d" / "digits.txt").read_text())
    km = load(tmp_path / "m" / "digits.kmodel")
    assert [r["type"] for r in rows] == [L.type_name for L in km.layers]
    assert [int(r["index"]) for r in rows] == list(range(len(km.layers)))
    for r, L in zip(rows, km.layers):
        assert r["runs_on"] == ("KPU" if L.type_name == "K210_CONV" else "CPU")
        assert r["output"].split()[0] == "x".join(map(str, L.out_shape)), r
        if L.regs is not None:
            assert int(r["kpu_in"], 16) == 64 * L.regs.image_addr.image_src_addr
            assert int(r["kpu_out"], 16) == 64 * L.regs.image_addr.image_dst_addr
            if L.fields["flags"] & 1:
                assert int(r["main_out"], 16) == L.fields["out"]
        elif "out" in L.fields and r["main_out"] != "-":
            assert int(r["main_out"], 16) == L.fields["out"]
        if L.type_name not in ("K210_CONV", "K210_UPLOAD", "K210_ADD_PADDING") and "in" in L.fields:
            assert int(r["main_in"].split(",")[0], 16) == L.fields["in"]
    assert rows[0]["op"] == "0 CONV_2D" and rows[0]["inputs"] == "3x64x64 u8"

    dot = (tmp_path / "d" / "digits.dot").read_text()
    assert dot.startswith("digraph kmodel {") and dot.rstrip().endswith("}")
    nodes = re.findall(r"^  (\w+) \[label=\"((?:[^\"\\]|\\.)*)\"", dot, re.M)
    edges = re.findall(r"^  (\w+) -> (\w+);", dot, re.M)
    names = [n for n, _ in nodes]
    assert names == ["input"] + ["L%d" % i for i in range(len(rows))] + ["out0"]
    assert all(a in names and b in names for a, b in edges)
    assert ("input", "L0") in edges and edges[-1][1] == "out0"
    labels = dict(nodes)
    assert labels["L0"].startswith("0: K210_CONV\\n0 CONV_2D\\n3x64x64 u8 -> ")
    assert "KPU RAM %s" % rows[0]["kpu_out"] in labels["L0"]


def test_dump_folder_with_other_files_is_refused(tmp_path, capsys):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "keep.py").write_text("x = 1\n")
    assert cli(["compile", str(TFLITE), "--out", str(tmp_path / "m"), "--dump", str(tmp_path / "d")]) == 1
    assert "--dump %s: holds keep.py" % (tmp_path / "d") in capsys.readouterr().err
