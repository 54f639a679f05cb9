"""The reader names what a file is when it is not a kmodel V3, with the firmware's error code (k210/errors.py)."""
import io
import json
import zipfile

import pytest

from conftest import fixture_file
from host_tools.__main__ import main as cli
from host_tools.k210 import errors
from host_tools.k210.bigendian import to_big_endian
from host_tools.kmodel import KmodelError, load, parse


def refusal(data, name="x.kmodel"):
    with pytest.raises(KmodelError) as e:
        parse(data, name)
    return e.value


def test_big_endian_v3_is_named_as_the_load_flash_form():
    data = fixture_file("nncase-yolo20", "yolo.kmodel").read_bytes()
    be = to_big_endian(data + bytes(-len(data) % 4))
    e = refusal(be)
    assert e.code == errors.ERR_KMODEL_VERSION and e.field == "version"
    assert "a big-endian kmodel V3, the byte order kpu.load_flash reads from flash" in str(e)
    assert "50331648" not in str(e)


def test_kfpkg_names_its_files_and_the_command():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("flash-list.json", json.dumps({"version": "0.1.0", "files": [
            {"address": 0, "bin": "maixpy.bin", "sha256Prefix": True},
            {"address": 0x300000, "bin": "face.kmodel", "sha256Prefix": False}]}))
        z.writestr("maixpy.bin", b"fw")
        z.writestr("face.kmodel", b"\x03\x00\x00\x00")
    e = refusal(buf.getvalue(), "face.kfpkg")
    assert e.code == errors.ERR_KMODEL_VERSION
    assert "a .kfpkg flash package (kflash's zip: maixpy.bin at 0x0, face.kmodel at 0x300000), not a kmodel" in str(e)
    assert "python -m host_tools flash write --kfpkg FILE" in str(e)
    assert "67324752" not in str(e)
    plain = io.BytesIO()
    with zipfile.ZipFile(plain, "w") as z:
        z.writestr("a.txt", "hi")
    assert "a zip file, not a kmodel (a .kfpkg needs flash-list.json" in str(refusal(plain.getvalue()))


def test_encrypted_model_gives_err_decrypt():
    e = refusal(b"DUDE" + bytes(200))
    assert e.code == errors.ERR_DECRYPT == 2004
    assert "an encrypted model ('DUDE', a MaixHub smodel)" in str(e)
    assert e.firmware_text == "ERR_DECRYPT: check smodel match with your board"


def test_v5_as_before():
    e = refusal(b"LDMK" + (5).to_bytes(4, "little") + bytes(40))
    assert (e.code, e.version) == (errors.ERR_UNKNOWN, 5) and "kmodel V5" in str(e)


def test_unknown_blob_and_tflite():
    e = refusal(b"\x7fELF" + bytes(60))
    assert e.code == errors.ERR_KMODEL_VERSION
    assert "not a kmodel: it starts with 7f 45 4c 46" in str(e)
    tfl = fixture_file("nncase-iris", "iris.tflite").read_bytes()
    assert "a TensorFlow Lite model, not a kmodel: compile it" in str(refusal(tfl))
    assert "shorter than the 28-byte V3 header" in str(refusal(b"\x01\x02"))
    assert "file is empty" in str(refusal(b""))


def test_the_commands_print_it_on_one_line(tmp_path, capsys):
    p = tmp_path / "m.kmodel"
    p.write_bytes(b"DUDE" + bytes(100))
    assert cli(["kmodel", "info", str(p)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: %s" % p) and "[error 2004]" in err and len(err.splitlines()) == 1
    assert cli(["model", "add", str(p), "--kind", "classifier", "--models", str(tmp_path / "models")]) == 1
    assert "an encrypted model" in capsys.readouterr().err
    assert not (tmp_path / "models").exists() or not list((tmp_path / "models").iterdir())
    with pytest.raises(KmodelError):
        load(p)
