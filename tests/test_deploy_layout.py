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
    import hashlib
    assert models["models"][0]["source"] == {"flash": r.offset, "size": 3000, "sha256": hashlib.sha256(be).hexdigest(),
                                             "head": be[:64].hex()}       # the big-endian bytes load_flash reads
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


# ---- plans that know the board: what its models.json lists is never overwritten while it is listed ----

def listed(name, offset, data, listing="/flash/models.json"):
    import hashlib
    from host_tools.deploy.board_state import Listed
    return Listed(name, offset, len(data), hashlib.sha256(data).hexdigest(), listing)


def test_changed_model_goes_beside_the_listed_one_and_unchanged_ones_stay(tmp_path):
    a1, b = pattern(0x5000, 1), pattern(0x3000, 2)
    board = [listed("a", 0x300000, a1), listed("b", 0x305000, b)]
    pa = make_model(tmp_path, "a", pattern(0x5000, 3))          # a new version of a
    pb = make_model(tmp_path, "b", b)
    p = layout.plan([pa, pb], firmware_size=10, board=board)
    got = {r.name: r.offset for r in p.models}
    assert got["b"] == 0x305000 and p.kept == ["b"]            # same bytes: not moved, not written
    assert got["a"] >= 0x308000 and not p.overwrites          # A/B: the running a stays intact until models.json
    # the next deploy (board now lists the new a) reuses the old a's space for a third version
    board2 = [listed("a", got["a"], pattern(0x5000, 3)), listed("b", 0x305000, b)]
    pa3 = make_model(tmp_path, "a", pattern(0x5000, 4))
    p3 = layout.plan([pa3, pb], firmware_size=10, board=board2)
    assert {r.name: r.offset for r in p3.models}["a"] == 0x300000


def test_a_model_the_board_lists_is_never_overwritten_by_another_plan(tmp_path):
    pinned = pattern(0x280000, 1)                              # pinned at 0x200000 by an earlier plan
    board = [listed("big", 0x200000, pinned)]
    y = make_model(tmp_path, "y", pattern(0x1000, 2))
    p = layout.plan([y], firmware_size=10, model_base=0x200000, board=board)
    assert p.models[0].offset == 0x480000                       # around it, not at 0x200000 or 0x300000
    with pytest.raises(flash.PlanError, match=r"y: 0x300000-0x301000 would overwrite big at 0x200000-0x480000, "
                                              r"which the board still lists in /flash/models.json"):
        layout.plan([y], firmware_size=10, pins={"y": 0x300000}, board=board)
    # the same model by name replaces it: that is the user's intent
    big2 = make_model(tmp_path, "big", pattern(0x280000, 3))
    p = layout.plan([big2], firmware_size=10, pins={"big": 0x200000}, board=board)
    assert [x.name for x in p.overwrites] == ["big"]


def test_replaced_in_place_only_when_there_is_no_room_beside(tmp_path):
    room = flash.SPIFFS_OFFSET - 0x300000
    old = pattern(room * 3 // 5, 1)
    board = [listed("huge", 0x300000, old)]
    new = make_model(tmp_path, "huge", pattern(room * 3 // 5, 2))
    p = layout.plan([new], firmware_size=10, board=board)
    assert p.models[0].offset == 0x300000 and [x.name for x in p.overwrites] == ["huge"]
    other = make_model(tmp_path / "o", "other", pattern(room * 3 // 5, 3))
    with pytest.raises(flash.PlanError, match=r"other: \d+ bytes do not fit.*huge, which the board still lists"):
        layout.plan([other], firmware_size=10, board=board)
