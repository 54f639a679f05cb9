"""The virtual board's serial line answers like MaixPy's REPL (MicroPython 1.11): what host tools depend on."""
import time

import pytest
import serial

from test_deploy_support import VirtualBoardProcess


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    state = tmp_path_factory.mktemp("repl") / "board"
    (state / "flash").mkdir(parents=True)
    (state / "flash" / "boot.py").write_text("print('BOOT.PY RAN')\n")
    (state / "flash" / "main.py").write_text("print('MAIN.PY RAN')\n")
    b = VirtualBoardProcess(state, ["--fast"])
    yield b
    b.close()


def talk(port, data: bytes, until: bytes, timeout=10.0) -> bytes:
    with serial.Serial(port, timeout=0.1) as s:
        s.write(data)
        got = b""
        end = time.monotonic() + timeout
        while until not in got and time.monotonic() < end:
            got += s.read(4096)
        return got


def test_friendly_repl_evaluates_and_soft_reboot_runs_boot_then_main(board):
    out = talk(board.port, b"\r\x03\x02", b">>> ")
    assert b"MicroPython v0.6.2" in out and b"Sipeed_M1 with kendryte-k210" in out
    out = talk(board.port, b"6*7\r", b"42\r\n>>> ")
    assert b"42\r\n>>> " in out
    out = talk(board.port, b"\x04", b"MAIN.PY RAN")
    assert b"soft reboot\r\n" in out and out.index(b"BOOT.PY RAN") < out.index(b"MAIN.PY RAN")


def test_raw_repl_exec_errors_no_raw_paste_and_raw_soft_reboot(board):
    out = talk(board.port, b"\r\x03\r\x01", b"raw REPL; CTRL-B to exit\r\n>")
    assert out.endswith(b"raw REPL; CTRL-B to exit\r\n>")
    out = talk(board.port, b"print('a')\nprint(1/1)\x04", b"\x04>")
    assert out == b"OKa\r\n1.0\r\n\x04\x04>"
    out = talk(board.port, b"import uos\nuos.remove('/flash/nope')\x04", b"\x04>")
    assert out.startswith(b"OK\x04Traceback (most recent call last):\r\n")
    assert b"OSError: [Errno 2] ENOENT\r\n\x04>" in out
    # mpremote's raw-paste probe: MaixPy has no raw-paste mode, so Ctrl-A reprints the raw REPL header
    out = talk(board.port, b"\x05A\x01", b"exit\r\n>")
    assert out == b"raw REPL; CTRL-B to exit\r\n>"
    # Ctrl-D on an empty line: soft reboot; in raw mode boot.py runs but main.py does not
    out = talk(board.port, b"\x04", b"raw REPL; CTRL-B to exit\r\n>")
    assert b"soft reboot\r\n" in out and b"BOOT.PY RAN" in out and b"MAIN.PY RAN" not in out
    talk(board.port, b"\x02", b">>> ")


@pytest.mark.parametrize("loop", [b"import time\nwhile True:\n time.sleep_ms(5)\n",
                                  b"n = 0\nwhile True:\n n += 1\n"])   # no firmware call at all
def test_ctrl_c_stops_running_code(board, loop):
    talk(board.port, b"\r\x03\r\x01", b"exit\r\n>")
    with serial.Serial(board.port, timeout=0.1) as s:
        s.write(loop + b"\x04")
        time.sleep(0.3)
        s.write(b"\x03")
        got = b""
        end = time.monotonic() + 10
        while b"\x04>" not in got and time.monotonic() < end:
            got += s.read(4096)
    assert b"KeyboardInterrupt" in got and got.endswith(b"\x04>")
    talk(board.port, b"\x02", b">>> ")
