"""Deploy to a board with an SD card, on the virtual Maix Bit (a separate process behind a pty) with the real
kflash and mpremote: MaixPy runs only the card's boot.py and main.py, so deploy either installs a /sd/main.py that
starts the /flash app, or refuses before writing anything when the card's main.py is the user's own."""
import pytest

from host_tools.__main__ import main as cli
from host_tools.deploy.sdcard import LAUNCHER
from host_tools.k210.startup import WELCOME_MARK
from test_deploy_e2e import app_manifests, isp_sessions
from test_deploy_support import VirtualBoardProcess, make_model, pattern


@pytest.mark.slow
def test_a_card_without_main_py_gets_a_launcher_and_the_flash_app_starts(tmp_path, capsys):
    state = tmp_path / "board"
    board = VirtualBoardProcess(state, ["--sd", "--frames", str(tmp_path / "frames"), "--max-frames", "2"])
    try:
        # at power-up the firmware's _boot.py wrote its welcome main.py onto the empty card
        assert board.wait_for(lambda: (state / "sd" / "main.py").is_file(), 30)
        assert WELCOME_MARK in (state / "sd" / "main.py").read_text()
        manifests, models_dir = app_manifests(tmp_path)
        assert cli(["deploy", "--port", board.port, "--models", str(models_dir), "--out", str(tmp_path / "d")]) == 0
        out = capsys.readouterr().out
        assert "SD card: MaixPy runs only /sd's boot.py and main.py" in out and "starts the /flash app" in out
        assert (state / "sd" / "main.py").read_bytes() == LAUNCHER
        assert (state / "flash" / "app.py").is_file() and (state / "flash" / "models.json").is_file()
        # after the reset the app runs from /flash: its frames reach the LCD
        assert board.wait_for(lambda: (tmp_path / "frames" / "frame_001.png").exists(), 120), \
            (state / "board.log").read_text()
    finally:
        board.close()


def test_a_card_with_its_own_main_py_is_refused_before_anything_is_written(tmp_path, capsys):
    state = tmp_path / "board"
    (state / "sd").mkdir(parents=True)
    mine = b"print('my own app on the card')\n"
    (state / "sd" / "main.py").write_bytes(mine)
    board = VirtualBoardProcess(state, ["--sd"])
    try:
        make_model(tmp_path / "m", "alpha", pattern(0x2000, 1))
        assert cli(["deploy", "--port", board.port, "--models", str(tmp_path / "m"), "--out", str(tmp_path / "o")]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: SD card: /sd/main.py is not the firmware's welcome script") and \
            "--target /sd" in err and "nothing was written" in err
        assert (state / "sd" / "main.py").read_bytes() == mine
        assert isp_sessions(board) == [] and list((state / "flash").iterdir()) == []
    finally:
        board.close()
