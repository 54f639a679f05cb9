"""End to end on the virtual Maix Bit (a separate process behind a pty) with the real kflash and mpremote.

deploy flashes the models at the planned offsets byte for byte, copies device/, resets, and the app's first
frames equal `make sim`'s; a second deploy writes no sector and copies no file; refusals write nothing.
"""
import json
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from host_tools.__main__ import main as cli
from host_tools.deploy import sync
from host_tools.k210 import flash as flash_map
from host_tools.sim.provision import demo_manifests, fixture_manifests
from host_tools.k210.startup import WELCOME_MARK
from conftest import FIXTURES as FIXTURES_DIR
from test_deploy_support import ROOT, VirtualBoardProcess, pattern


def app_manifests(tmp_path):
    """The demo models when models/ has a classifier and a detector, else manifests for the fixture kmodels."""
    demo = demo_manifests(ROOT / "models") if (ROOT / "models").is_dir() else []
    kinds = {json.loads(Path(p).read_text())["kind"] for p in demo}
    if kinds == {"classifier", "detector"}:
        return demo, ROOT / "models"
    fx = fixture_manifests(FIXTURES_DIR, tmp_path / "models")
    if len(fx) != 2:
        pytest.skip("no demo models in models/ and no fixture kmodels at %s" % FIXTURES_DIR)
    return fx, tmp_path / "models"


@pytest.fixture
def board(tmp_path):
    b = VirtualBoardProcess(tmp_path / "board", ["--frames", str(tmp_path / "frames"), "--max-frames", "2"])
    yield b
    b.close()


def isp_sessions(b):
    p = b.state / "isp.jsonl"
    return [json.loads(x) for x in p.read_text().splitlines()] if p.exists() else []


@pytest.mark.slow
def test_deploy_end_to_end_then_nothing_to_do(board, tmp_path, capsys):
    manifests, models_dir = app_manifests(tmp_path)
    fw = tmp_path / "maixpy.bin"
    fw.write_bytes(pattern(300_000, 7))
    out = tmp_path / "deploy"
    args = ["deploy", "--port", board.port, "--models", str(models_dir), "--firmware", str(fw), "--out", str(out)]
    assert cli(args) == 0
    text = capsys.readouterr().out
    assert "writing" in text and "copied" in text

    # the flash image holds the firmware and every model at its planned offset, byte for byte
    plan = json.loads((out / "flash-plan.json").read_text())
    assert board.wait_for(lambda: len(isp_sessions(board)) == 1)
    flash = (board.state / "flash.bin").read_bytes()
    assert flash[:plan["firmware"]["size"]] == flash_map.firmware_image(fw.read_bytes())
    for r in plan["models"]:
        assert r["offset"] >= plan["firmware_end"] and r["offset"] % 4096 == 0
        assert flash[r["offset"]:r["offset"] + r["size"]] == Path(r["file"]).read_bytes()
    # device/ flattened onto /flash, plus the plan's models.json
    for name, src in sync.device_files(ROOT / "device").items():
        assert (board.state / "flash" / name).read_bytes() == src.read_bytes()
    models_json = json.loads((board.state / "flash" / "models.json").read_text())
    assert [m["source"]["flash"] for m in models_json["models"]] == [r["offset"] for r in plan["models"]]

    # after the reset the app runs; its first frames are make sim's first frames
    frames = tmp_path / "frames"
    assert board.wait_for(lambda: (frames / "frame_001.png").exists(), 120), (board.state / "board.log").read_text()
    from host_tools.sim.runner import run_app
    ref = run_app(out_dir=tmp_path / "sim", manifests=manifests, frames=2, seconds=None)
    for i, png in enumerate(ref.pngs[:2]):
        a = np.asarray(Image.open(png))
        b = np.asarray(Image.open(frames / ("frame_%03d.png" % i)))
        assert a.shape == b.shape and np.array_equal(a, b), "frame %d differs from make sim's" % i

    # nothing changed: no ISP session, no file written, no reset (the app runs on), and it says so
    before = {p.name: p.stat().st_mtime_ns for p in (board.state / "flash").iterdir()}
    resets = resets_of(board)
    assert cli(args) == 0
    text = capsys.readouterr().out
    assert "flash: nothing changed" in text and "no sector written" in text
    assert "nothing copied" in text
    assert "no reset: nothing changed; the app runs on" in text and "machine.reset()" not in text
    assert len(isp_sessions(board)) == 1
    assert {p.name: p.stat().st_mtime_ns for p in (board.state / "flash").iterdir()} == before
    assert resets_of(board) == resets
    # --reset forces one
    assert cli(args + ["--reset"]) == 0
    assert "reset: machine.reset()" in capsys.readouterr().out
    assert board.wait_for(lambda: resets_of(board) == resets + 1)


def resets_of(board) -> int:
    return (board.state / "board.log").read_text().count("machine.reset()")


def test_changed_model_flashes_only_its_changed_blocks(board, tmp_path, capsys):
    from test_deploy_support import make_model
    a = pattern(200_000, 1)
    make_model(tmp_path / "m", "a", a)
    make_model(tmp_path / "m", "b", pattern(100_000, 2))
    args = ["flash", "write", "--port", board.port, "--models", str(tmp_path / "m"), "--out", str(tmp_path / "o")]
    assert cli(args) == 0
    assert board.wait_for(lambda: len(isp_sessions(board)) == 1)
    a2 = bytearray(a)
    a2[70_000] ^= 0xFF                    # one byte in the second 64 KiB block of model a
    make_model(tmp_path / "m", "a", bytes(a2))
    assert cli(args) == 0
    assert board.wait_for(lambda: len(isp_sessions(board)) == 2)
    rec = isp_sessions(board)[-1]
    assert rec["bytes_written"] == 65536 and rec["sectors_written"] == 16
    flash = (board.state / "flash.bin").read_bytes()
    assert flash[0x300000:0x300000 + len(a2)] == bytes(a2)
    assert cli(args) == 0
    assert "nothing changed" in capsys.readouterr().out
    assert len(isp_sessions(board)) == 2


def test_overlap_and_size_refused_before_anything_is_written(board, tmp_path, capsys):
    from test_deploy_support import make_model
    make_model(tmp_path / "m", "alpha", pattern(0x2000, 1))
    make_model(tmp_path / "m", "beta", pattern(0x1000, 2))
    base = ["deploy", "--port", board.port, "--models", str(tmp_path / "m"), "--out", str(tmp_path / "o")]
    assert cli(base + ["--pin", "alpha=0x300000", "--pin", "beta=0x301000"]) == 1
    assert "beta: 0x301000-0x302000 overlaps alpha" in capsys.readouterr().err
    make_model(tmp_path / "m", "huge", pattern(flash_map.SPIFFS_OFFSET - 0x300000, 3))
    assert cli(base) == 1
    assert "do not fit" in capsys.readouterr().err
    from host_tools.deploy.link import Link
    link = Link(board.port)
    with pytest.raises(sync.SyncError, match=r"/flash has \d+ bytes free.*big.bin 3145729 B.*nothing was written"):
        sync.sync(link, {"small.py": b"x = 1\n", "big.bin": bytes(0x300001)}, "/flash")
    link.close()
    assert isp_sessions(board) == []
    # at most the welcome main.py that _boot.py writes into an empty /flash at power-up (a quick host's first
    # Ctrl-C can land in _boot.py's 200 ms IDE pause, before it writes it, as on a board)
    flash = board.state / "flash"
    assert [p.name for p in flash.iterdir()] in ([], ["main.py"])
    assert not (flash / "main.py").exists() or WELCOME_MARK in (flash / "main.py").read_text()
    assert not (tmp_path / "o" / "deploy.kfpkg").exists()


def test_dropped_connection_leaves_the_old_file_and_next_sync_cleans_up(board):
    from host_tools.deploy.link import Link
    link = Link(board.port)
    sync.put_file(link, "/flash/keep.py", b"old = 1\n")
    new = b"# new\n" * 3000                       # 18 kB: five execs

    class Unplugged(Exception):
        pass

    calls = {"n": 0}
    real_exec = link.exec

    def exec_then_unplug(code, timeout=30):
        calls["n"] += 1
        if calls["n"] == 3:
            link.serial.close()                   # the cable comes out mid-copy
            raise Unplugged()
        return real_exec(code, timeout)

    link.exec = exec_then_unplug
    with pytest.raises(Unplugged):
        sync.put_file(link, "/flash/keep.py", new)
    assert (board.state / "flash" / "keep.py").read_bytes() == b"old = 1\n"
    assert (board.state / "flash" / "keep.py.part").exists()

    link = Link(board.port)
    rep = sync.sync(link, {"keep.py": new}, "/flash")
    link.close()
    assert rep.removed_parts == ["keep.py.part"] and rep.copied == ["keep.py"]
    assert (board.state / "flash" / "keep.py").read_bytes() == new
    assert not (board.state / "flash" / "keep.py.part").exists()


def test_a_main_py_that_loops_forever_does_not_block_sync(board, tmp_path, capsys):
    from host_tools.deploy.link import Link
    link = Link(board.port)
    # the hardest case: a loop that never calls into the firmware (Ctrl-C can only come from the VM)
    sync.put_file(link, "/flash/main.py", b"n = 0\nwhile True:\n    n += 1\n")
    link.close(reset="hard")                     # the board now boots into the endless loop
    time.sleep(1.0)
    dev = tmp_path / "dev"
    dev.mkdir()
    (dev / "main.py").write_text("print('new app')\n")
    assert cli(["sync", "--port", board.port, "--device", str(dev)]) == 0
    assert "copied 1 files" in capsys.readouterr().out
    assert (board.state / "flash" / "main.py").read_text() == "print('new app')\n"


def test_a_later_plan_never_overwrites_what_the_board_lists(board, tmp_path, capsys):
    """The issue's case: a model pinned at 0x200000 by one deploy, then another plan that would put its model at
    0x300000, inside it. The board's models.json is read first: the pin is refused naming both and the listing,
    nothing is flashed; unpinned, the new model goes around the listed one."""
    from test_deploy_support import make_model
    big = pattern(0x120000, 1)                                  # 0x200000-0x320000
    make_model(tmp_path / "a", "big", big)
    make_model(tmp_path / "b", "y", pattern(0x3000, 2))
    base = ["deploy", "--port", board.port, "--out", str(tmp_path / "o")]
    assert cli(base + ["--models", str(tmp_path / "a"), "--pin", "big=0x200000"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert board.wait_for(lambda: len(isp_sessions(board)) == 1)
    assert cli(base + ["--models", str(tmp_path / "b"), "--pin", "y=0x300000"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == ("error: y: 0x300000-0x303000 would overwrite big at 0x200000-0x320000, which the board still "
                   "lists in /flash/models.json"), err
    assert len(isp_sessions(board)) == 1
    assert cli(base + ["--models", str(tmp_path / "b")]) == 0, capsys.readouterr().err
    plan = json.loads((tmp_path / "o" / "flash-plan.json").read_text())
    y = next(r for r in plan["models"] if r["name"] == "y")
    assert y["offset"] >= 0x320000
    flash = (board.state / "flash.bin").read_bytes()
    assert flash[0x200000:0x200000 + len(big)] == big
