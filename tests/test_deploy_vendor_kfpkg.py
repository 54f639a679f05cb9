"""`flash plan|write --kfpkg FILE`: someone else's .kfpkg checked like our plan, repacked, written by our flasher
into the virtual Maix Bit (unmodified kflash over a pty)."""
import io
import json
import zipfile

import pytest

from conftest import fixture_file
from host_tools import manifest as mf
from host_tools.__main__ import main as cli
from host_tools.k210 import flash as flash_map
from test_deploy_fs import board as repl_board  # noqa: F401 (a board with MaixPy's REPL: the one `fs` is tested on)
from test_deploy_kflash import board, isp_log, wait  # noqa: F401 (the in-process virtual board fixture: ISP only)
from test_deploy_support import ROOT, pattern


def vendor_kfpkg(path, files, listing=None):
    """A .kfpkg as vendors write it: flash-list.json in plain JSON, addresses as numbers or hex strings."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("flash-list.json", json.dumps(listing or {"version": "0.1.0", "files": [
            {"address": a, "bin": n, "sha256Prefix": p} for a, n, _, p in files]}))
        for _, n, data, _ in files:
            z.writestr(n, data)
    return path


def test_write_lands_every_file_where_the_package_says(board, tmp_path, capsys):  # noqa: F811
    yolo = fixture_file("nncase-yolo20", "yolo.kmodel").read_bytes()
    fw = pattern(200_000, 5)
    pkg = vendor_kfpkg(tmp_path / "maixpy_yolo.kfpkg", [(0, "maixpy.bin", fw, True),
                                                      ("0x500000", "yolo.kmodel", yolo, False)])
    assert cli(["flash", "write", "--kfpkg", str(pkg), "--port", board.port, "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "maixpy.bin" in out and "firmware" in out
    assert "yolo.kmodel" in out and "kmodel V3 (kpu.load(0x500000))" in out
    assert wait(lambda: isp_log(board), 10)
    flash = board.state.flash_path.read_bytes()
    img = flash_map.firmware_image(fw)
    assert flash[:len(img)] == img and flash[0x500000:0x500000 + len(yolo)] == yolo
    assert (tmp_path / "o" / "maixpy_yolo.kfpkg").is_file()


@pytest.mark.parametrize("files, message", [
    ([(0x300800, "a.kmodel", b"\x03" + bytes(99), False)], "a.kmodel: address 0x300800 is not 4 KiB aligned"),
    ([(0x300000, "a.kmodel", bytes(5000), False), (0x301000, "b.kmodel", bytes(10), False)],
     "b.kmodel: 0x301000-0x30100A overlaps a.kmodel at 0x300000-0x301388"),
    ([(0, "fw.bin", bytes(4096 - 10), True), (0x1000, "b.kmodel", bytes(10), False)],
     "b.kmodel: 0x1000-0x100A overlaps fw.bin at 0x0-0x101B"),
    ([(0xCFF000, "a.kmodel", bytes(8192), False)],
     "a.kmodel: 0xCFF000-0xD01000 reaches SPIFFS at 0xD00000 (the board's /flash files would be lost); give "
     "--allow-spiffs"),
    ([(0xFFF000, "a.bin", bytes(8192), False)], "a.bin: 8192 bytes at 0xFFF000 end at 0x1001000, past the 16 MiB"),
    ([(-1, "a.bin", bytes(8), False)], "files[0] (a.bin): field 'address' is -1, not a flash offset"),
])
def test_plan_refuses_what_would_break_the_board(tmp_path, capsys, files, message):
    pkg = vendor_kfpkg(tmp_path / "v.kfpkg", files)
    assert cli(["flash", "plan", "--kfpkg", str(pkg), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_plan_lists_a_good_package_and_spiffs_needs_the_flag(tmp_path, capsys):
    pkg = vendor_kfpkg(tmp_path / "v.kfpkg", [(0xCFF000, "fs.img", bytes(8192), False)])
    assert cli(["flash", "plan", "--kfpkg", str(pkg), "--allow-spiffs", "--out", str(tmp_path / "o")]) == 0
    assert "fs.img               0xCFF000-0xD01000     8192 bytes data" in capsys.readouterr().out


def test_not_a_kfpkg(tmp_path, capsys):
    p = tmp_path / "x.kfpkg"
    p.write_bytes(b"hello")
    assert cli(["flash", "plan", "--kfpkg", str(p), "--out", str(tmp_path / "o")]) == 1
    assert "not a .kfpkg (kflash's zip with flash-list.json): not a zip file" in capsys.readouterr().err
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("flash-list.json", json.dumps({"files": [{"address": 0, "bin": "gone.bin"}]}))
    p.write_bytes(buf.getvalue())
    assert cli(["flash", "plan", "--kfpkg", str(p), "--out", str(tmp_path / "o")]) == 1
    assert "names gone.bin, which the zip does not hold" in capsys.readouterr().err
    assert cli(["flash", "kfpkg", "--kfpkg", str(p), "--out", str(tmp_path / "o")]) == 2


def test_write_never_overwrites_a_listed_model_and_relists_one_it_moves(repl_board, tmp_path, capsys):
    """`flash write --kfpkg` reads the board's models.json first, as deploy does."""
    b = repl_board
    digits = (ROOT / "models" / "digits.kmodel").read_bytes()
    old_at, new_at = 0x600000, 0x700000
    listing = b.state / "flash" / "models.json"

    def write(name, files):
        pkg = vendor_kfpkg(tmp_path / name, [(f + (False,))[:4] for f in files])
        capsys.readouterr()
        rc = cli(["flash", "write", "--kfpkg", str(pkg), "--port", b.port, "--out", str(tmp_path / "o")])
        return rc, capsys.readouterr()

    def sessions():      # kflash sessions the board has seen (isp.jsonl: one line each)
        p = b.state / "isp.jsonl"
        return len(p.read_text().splitlines()) if p.exists() else 0

    try:
        assert write("put.kfpkg", [(old_at, "digits.kmodel", digits)])[0] == 0     # nothing listed yet
        assert wait(lambda: sessions() == 1, 10)
        entry = mf.device_entry(mf.load(ROOT / "models" / "digits.json"), flash_offset=old_at, stored=digits)
        listing.write_text(mf.device_manifest([entry]))
        before = listing.read_text()

        # another model over the listed one: refused before kflash runs, naming both
        rc, out = write("over.kfpkg", [(old_at + 0x1000, "yolo.kmodel", pattern(50_000, 7))])
        assert rc == 1 and out.err == (
            "error: yolo.kmodel: 0x601000-0x60D350 would overwrite digits at 0x600000-0x%X, which the board still "
            "lists in /flash/models.json\n" % (old_at + len(digits)))
        # a firmware that would reach into it
        rc, out = write("fw.kfpkg", [(0, "maixpy.bin", pattern(old_at + 100, 8), True)])
        assert rc == 1 and "maixpy.bin: 0x0-0x%X would overwrite digits at 0x600000" % (old_at + 137) in out.err
        # a new digits that is not a kmodel V3, as the listed entry loads it
        rc, out = write("bad.kfpkg", [(new_at, "digits.kmodel", b"hello")])
        assert rc == 1 and "digits.kmodel: /flash/models.json lists digits as a kmodel V3 (load 'ram'), but this " \
                           "file is data" in out.err
        assert sessions() == 1 and listing.read_text() == before

        # the listed model's own bytes where they are, beside another file: written, models.json untouched
        rc, out = write("same.kfpkg", [(old_at, "digits.kmodel", digits), (0x800000, "data.bin", b"x" * 100)])
        assert rc == 0, out.err
        assert wait(lambda: sessions() == 2, 10) and listing.read_text() == before

        # a new version of digits elsewhere: flashed beside the old copy, then models.json names its new place
        new = digits[:-1] + bytes([digits[-1] ^ 0xFF])
        rc, out = write("move.kfpkg", [(new_at, "digits.kmodel", new)])
        assert rc == 0, out.err
        assert "/flash/models.json lists digits at the new place" in out.out
        doc = json.loads(listing.read_text())
        moved = dict(entry, source=mf.flash_source(new_at, new))
        assert doc["models"] == [moved]
        assert wait(lambda: sessions() == 3, 10)
        flash = (b.state / "flash.bin").read_bytes()
        assert flash[new_at:new_at + len(new)] == new and flash[old_at:old_at + len(digits)] == digits
    finally:
        listing.unlink(missing_ok=True)
