"""Folder to board: `train --data DIR --deploy PORT` on the virtual Maix Bit (a separate process behind a pty, real
kflash and mpremote) leaves a board whose app runs the new classifier, and whose BOOT button switches to the demo
detector."""
import json

import pytest

from host_tools.__main__ import main as cli
from host_tools.deploy.virtual_board import BoardState
from host_tools.sim.board import Board
from host_tools.sim.camera import default_sources
from host_tools.sim.session import Session
from test_deploy_support import ROOT, VirtualBoardProcess
from test_pipeline_userflow import colour_photos


def power_up(state_dir, ms, press_at=None):
    """Boot the deployed board's flash image and /flash files in-process for `ms` of board time: (board, app)."""
    st = BoardState(state_dir)
    board = Board(flash_root=st.flash_root, sd_root=None, camera=default_sources(64), hold_ms=2500.0)
    board.flash = st.flash
    if press_at is not None:
        board.press(at_ms=press_at)
    s = Session(board)
    s.rt.stop_check = lambda: ("%d ms" % ms) if board.clock.ms >= ms else None
    r = s.boot()
    assert r.error is None, r.error
    return board, s.device_modules["app"].current


def loads(board):
    return [ln.split()[1] for ln in board.console_text().split("\r\n") if ln.startswith("loading ")]


@pytest.mark.slow
def test_train_deploy_runs_the_new_classifier_and_boot_switches_to_the_detector(tmp_path, monkeypatch):
    demo = json.loads((ROOT / "models" / "faces.json").read_text()) if (ROOT / "models" / "faces.json").exists() \
        else None
    if demo is None or demo["kind"] != "detector":
        pytest.skip("no demo detector in models/ (make models)")
    data = colour_photos(tmp_path / "my_things")
    vb = VirtualBoardProcess(tmp_path / "board", ["--frames", str(tmp_path / "frames"), "--max-frames", "2"])
    try:
        monkeypatch.chdir(tmp_path)             # the user's command as it is: nothing but the folder and the port
        assert cli(["train", "--data", "my_things", "--deploy", vb.port]) == 0
        assert vb.wait_for(lambda: (tmp_path / "frames" / "frame_001.png").exists(), 120), \
            (tmp_path / "board" / "board.log").read_text()
    finally:
        vb.close()
    models = json.loads((tmp_path / "board" / "flash" / "models.json").read_text())["models"]
    assert [(m["kind"], m["name"]) for m in models] == [("classifier", "my_things"), ("detector", "faces")]

    board, app = power_up(tmp_path / "board", 1500)
    assert loads(board) == ["my_things"]
    assert app.manager.entry["name"] == "my_things" and app.result[0] in ("red", "blue")
    board, app = power_up(tmp_path / "board", 3000, press_at=1500)
    assert loads(board) == ["my_things", "faces"] and app.manager.entry["name"] == "faces"
