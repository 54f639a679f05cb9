"""The virtual Maix Bit as a person uses it: their own pictures in the camera, BOOT pressed while it runs, and
the friendly REPL printing what a one-line statement gives."""
import subprocess
import sys
import time

import numpy as np
import serial
from PIL import Image

from host_tools.deploy import sync
from test_deploy_support import ROOT, VirtualBoardProcess


def read_for(port, seconds, until=None) -> str:
    end = time.monotonic() + seconds
    got = b""
    while time.monotonic() < end:
        got += port.read(4096)
        if until is not None and until in got:
            break
    return got.decode("utf-8", "replace")


def test_camera_pictures_boot_press_and_a_one_line_statement(tmp_path):
    state = tmp_path / "board"
    (state / "flash").mkdir(parents=True)
    for name, src in sync.device_files(ROOT / "device").items():     # the app, without any model
        (state / "flash" / name).write_bytes(src.read_bytes())
    red = tmp_path / "red.png"
    Image.fromarray(np.full((240, 320, 3), (200, 20, 20), np.uint8)).save(red)
    frames = tmp_path / "frames"
    b = VirtualBoardProcess(state, ["--camera", str(red), "--frames", str(frames)])
    try:
        port = serial.Serial(b.port, timeout=0.2)
        before = read_for(port, 30, until=b"cannot read")
        assert "models.json: cannot read" in before                  # the app runs: no models, it says so
        # BOOT pressed from another command while it runs: the app switches mode and tells its problem again
        r = subprocess.run([sys.executable, "-m", "host_tools", "board", "press", "--state", str(state)], cwd=ROOT,
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and "BOOT pressed" in r.stdout, r.stderr
        after = read_for(port, 20, until=b"cannot read")
        assert "models.json: cannot read" in after
        # the camera showed the picture: the LCD's middle is its red
        assert b.wait_for(lambda: (frames / "frame_000.png").exists(), 20)
        lcd = np.asarray(Image.open(frames / "frame_000.png").convert("RGB")).astype(int)
        assert abs(lcd[140:200, 100:220].mean(axis=(0, 1)) - (200, 20, 20)).max() < 12
        # Ctrl-C stops the app; a one-line statement in the friendly REPL prints its value
        port.write(b"\r\x03\x03")
        read_for(port, 5, until=b">>> ")
        port.write(b"import uos; uos.listdir()\r")
        out = read_for(port, 10, until=b"]\r\n>>> ")
        assert "['app.py', 'boot.py'" in out, out
        port.close()
    finally:
        b.close()
    assert not (state / "port.json").exists()
    r = subprocess.run([sys.executable, "-m", "host_tools", "board", "press", "--state", str(state)], cwd=ROOT,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and r.stderr.startswith("error: no virtual board is running")
