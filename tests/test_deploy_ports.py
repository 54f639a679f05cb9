"""Ports as the MicroPython tools find them: --port, $MAIXKIT_PORT, $PORT, or the one board there is."""
import json
import os
import subprocess
import sys

import pytest

from host_tools.deploy import ports
from test_deploy_support import ROOT, VirtualBoardProcess


def test_the_given_port_then_the_environment_then_the_one_board(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(ports, "usb", lambda: [ports.Found("/dev/ttyUSB0", "FTDI 0403:6010")])
    assert ports.resolve("/dev/ttyACM3", env={"PORT": "/dev/x"}) == "/dev/ttyACM3"
    assert ports.resolve(None, env={"PORT": "/dev/x", "MAIXKIT_PORT": "/dev/y"}) == "/dev/y"
    assert ports.resolve(None, env={"PORT": "/dev/x"}) == "/dev/x"
    assert ports.resolve(None, env={}) == "/dev/ttyUSB0"
    monkeypatch.setattr(ports, "usb", lambda: [])
    with pytest.raises(ports.PortError, match="no board found"):
        ports.resolve(None, env={})


def test_a_stale_advert_is_ignored_and_two_boards_are_a_question(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    state = tmp_path / "out" / "board"
    state.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (state / ports.ADVERT).write_text(json.dumps({"port": "/dev/null", "pid": int(dead.stdout)}))
    assert ports.virtual() == []                          # its process is gone
    (state / ports.ADVERT).write_text(json.dumps({"port": "/dev/null", "pid": os.getpid()}))
    assert ports.virtual() == [ports.Found("/dev/null", "virtual Maix Bit (state out/board)")]
    monkeypatch.setattr(ports, "usb", lambda: [ports.Found("/dev/ttyUSB0", "FTDI 0403:6010")])
    with pytest.raises(ports.PortError, match="2 boards found .*give --port"):
        ports.resolve(None, env={})


def test_one_usb_device_with_two_interfaces_is_one_board(monkeypatch):
    """The Maix Bit's CH552 shows as an FT2232: two ports of one device; the K210's UART is the first."""
    from serial.tools import list_ports_common

    def port(dev, loc):
        p = list_ports_common.ListPortInfo(dev, skip_link_detection=True)
        p.vid, p.pid, p.location, p.description = 0x0403, 0x6010, loc, "Dual RS232"
        return p
    from serial.tools import list_ports
    monkeypatch.setattr(list_ports, "comports", lambda: [port("/dev/ttyUSB1", "1-2:1.1"), port("/dev/ttyUSB0", "1-2:1.0"),
                                                         port("/dev/ttyUSB2", "1-3:1.0")])
    assert [f.port for f in ports.usb()] == ["/dev/ttyUSB0", "/dev/ttyUSB2"]


def test_fs_finds_the_virtual_board_without_a_port(tmp_path):
    """`make board` then `fs ls /flash` in the same folder: no --port, no PORT. The board is advertised before it
    prints its port line, and withdrawn when it stops."""
    board = VirtualBoardProcess(tmp_path / "out" / "board", ["--fast", "--no-usb"])
    try:
        assert (tmp_path / "out" / "board" / ports.ADVERT).is_file()
        (tmp_path / "out" / "board" / "flash" / "hello.py").write_text("print(1)\n")
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        for name in ports.ENV:
            env.pop(name, None)
        r = subprocess.run([sys.executable, "-m", "host_tools", "fs", "ls", "/flash"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and "hello.py" in r.stdout, r.stdout + r.stderr
    finally:
        board.close()
    assert not (tmp_path / "out" / "board" / ports.ADVERT).exists()
