"""Flash layout planner and .kfpkg builder: placement, refusals, device models.json, kflash's JSON quirk."""
import io
import json
import re
import zipfile

import pytest

from host_tools import manifest as mf
from host_tools.deploy import kfpkg, layout
from host_tools.k210 import flash
from conftest import fixture_file
from test_deploy_support import make_model, pattern


def test_models_placed_aligned_between_firmware_and_spiffs(tmp_path):
    a = make_model(tmp_path, "a", pattern(5000, 1))
    b = make_model(tmp_path, "b", pattern(70000, 2))
    fw = tmp_path / "fw.bin"
    fw.write_bytes(pattern(0x320001, 3))       # a firmware bigger than the default model floor
    p = layout.plan([a, b], firmware=fw)
    assert p.firmware.offset == 0 and p.firmware.prefix
    assert p.firmware.size == 0x320001 + 37
    assert p.firmware_end == flash.align_up(0x320001 + 37) == 0x321000
    assert [r.name for r in p.models] == ["a", "b"]
    assert p.models[0].offset == 0x321000
    assert p.models[1].offset == 0x321000 + 0x2000          # 5000 bytes rounded up to two sectors
    for r in p.models:
        assert r.offset % 4096 == 0 and r.end <= flash.SPIFFS_OFFSET


def test_default_floor_keeps_room_for_a_bigger_firmware(tmp_path):
    a = make_model(tmp_path, "a", pattern(100, 1))
    p = layout.plan([a], firmware_size=900_000)
    assert p.models[0].offset == flash.DEFAULT_MODEL_BASE == 0x300000


def test_firmware_image_matches_kflash_header():
    img = flash.firmware_image(b"abc")
    assert img[0] == 0x02 and img[1:5] == (3).to_bytes(4, "little") and img[5:8] == b"abc"
    import hashlib
    assert img[8:] == hashlib.sha256(img[:8]).digest()


def test_big_endian_copy_is_what_load_flash_gets(tmp_path):
    be = pattern(3000, 9)
    a = make_model(tmp_path, "det", pattern(3000, 8), load="flash", kind="detector", big_endian=be)
    p = layout.plan([a], firmware_size=100)
    r = p.models[0]
    assert r.load == "flash" and r.data() == be
    models = json.loads(p.device_models_json())
    assert models["models"][0]["source"] == {"flash": r.offset}
    assert models["models"][0]["load"] == "flash"


def test_pins_and_gap_filling(tmp_path):
    a = make_model(tmp_path, "a", pattern(0x1000, 1))
    b = make_model(tmp_path, "b", pattern(0x1000, 2))
    c = make_model(tmp_path, "c", pattern(0x3000, 3))
    p = layout.plan([a, b, c], firmware_size=10, pins={"b": 0x302000})
    got = {r.name: r.offset for r in p.models}
    assert got == {"a": 0x300000, "b": 0x302000, "c": 0x303000}


def test_overlap_refused_naming_both_models(tmp_path):
    a = make_model(tmp_path, "alpha", pattern(0x2000, 1))
    b = make_model(tmp_path, "beta", pattern(0x1000, 2))
    with pytest.raises(flash.PlanError, match=r"beta: 0x301000-0x302000 overlaps alpha at 0x300000"):
        layout.plan([a, b], firmware_size=10, pins={"alpha": 0x300000, "beta": 0x301000})


def test_pin_inside_firmware_and_misaligned_refused(tmp_path):
    a = make_model(tmp_path, "alpha", pattern(100, 1))
    with pytest.raises(flash.PlanError, match="alpha: offset 0x100000 overlaps the firmware, which ends at 0x1E9000"):
        layout.plan([a], firmware_size=0x1E8000, pins={"alpha": 0x100000})
    with pytest.raises(flash.PlanError, match="alpha: offset 0x300010 is not 4 KiB aligned"):
        layout.plan([a], firmware_size=10, pins={"alpha": 0x300010})


def test_too_big_refused_naming_the_model(tmp_path):
    big = make_model(tmp_path, "huge", pattern(flash.SPIFFS_OFFSET - 0x300000 + 1, 1))
    with pytest.raises(flash.PlanError, match=r"huge: \d+ bytes do not fit"):
        layout.plan([big], firmware_size=10)
    with pytest.raises(flash.PlanError, match="firmware: .* past the start of SPIFFS"):
        layout.plan([], firmware_size=flash.SPIFFS_OFFSET)


def test_stale_kmodel_and_missing_big_endian_refused(tmp_path):
    a = make_model(tmp_path, "a", pattern(100, 1))
    (tmp_path / "a.kmodel").write_bytes(pattern(100, 2))
    with pytest.raises(mf.ManifestError, match="a: .*does not match the sha256"):
        layout.plan([a], firmware_size=10)
    b = make_model(tmp_path, "b", pattern(100, 1), load="flash", kind="detector", big_endian=b"x")
    (tmp_path / "b_be.kmodel").unlink()
    with pytest.raises(mf.ManifestError, match="b: big-endian copy .* is missing"):
        layout.plan([b], firmware_size=10)


def test_real_fixture_kmodel_planned_byte_for_byte(tmp_path):
    data = fixture_file("nncase-yolo20", "yolo.kmodel").read_bytes()
    a = make_model(tmp_path, "yolo", data, kind="detector")
    p = layout.plan([a], firmware_size=1_800_000)
    assert p.models[0].data() == data and p.models[0].size == 1_352_588
    saved = json.loads(p.save(tmp_path / "plan.json").read_text())
    assert saved["models"][0]["offset"] == p.models[0].offset and saved["firmware"] is None


def test_kfpkg_flash_list_survives_kflash_regex():
    entries = [kfpkg.Entry(0, "maixpy.bin", b"fw", True), kfpkg.Entry(0x300000, "a.kmodel", b"k", False)]
    pkg = kfpkg.build(entries)
    z = zipfile.ZipFile(io.BytesIO(pkg))
    text = z.read("flash-list.json").decode()
    assert json.loads(text)["files"][1]["address"] == 0x300000
    # what kflash 1.1.6 does to the text before json.loads
    rewritten = json.loads(re.sub(r'"address": (.*),', r'"address": "\1",', text))
    assert [int(f["address"], 0) for f in rewritten["files"]] == [0, 0x300000]
    assert [f["sha256Prefix"] for f in rewritten["files"]] == [True, False]
    assert z.read("a.kmodel") == b"k"


def test_parse_pins():
    assert layout.parse_pins(["a=0x300000", "b=4194304"]) == {"a": 0x300000, "b": 0x400000}
    with pytest.raises(flash.PlanError):
        layout.parse_pins(["a:0x300000"])


def test_device_files_flatten_lib_and_refuse_collisions(tmp_path):
    from host_tools.deploy import sync
    (tmp_path / "lib").mkdir()
    (tmp_path / "main.py").write_text("import app\n")
    (tmp_path / "lib" / "app.py").write_text("x = 1\n")
    (tmp_path / "lib" / "__pycache__").mkdir()
    (tmp_path / "lib" / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\0")
    assert sorted(sync.device_files(tmp_path)) == ["app.py", "main.py"]
    assert sorted(sync.device_files(tmp_path, "/sd")) == ["app.py", "main.py"]
    (tmp_path / "lib" / "main.py").write_text("y = 2\n")
    with pytest.raises(sync.SyncError, match="would both be /flash/main.py"):
        sync.device_files(tmp_path)


def test_literal_picks_the_shorter_encoding():
    from host_tools.deploy import sync
    text = b"print('hello')\n" * 10
    assert sync.literal(text) == repr(text)
    binary = bytes(range(256)) * 4
    lit = sync.literal(binary)
    assert "a2b_base64" in lit and len(lit) < 1.4 * len(binary)
    import base64
    assert base64.b64decode(lit.split("(")[-1].strip(")'")) == binary
