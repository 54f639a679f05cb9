"""Unmodified kflash 1.1.6 (as a library) flashes a .kfpkg into the virtual Maix Bit over a pty."""
import json
import os
import threading
import time

import pytest

from host_tools.deploy import flasher, kfpkg
from host_tools.deploy.virtual_board import BoardState, VirtualBoard
from host_tools.k210 import flash as flash_map
from test_deploy_support import pattern


class QuietSession:
    """The REPL side is not under test here: boot scripts do nothing."""

    def boot(self, run_main):
        pass

    def exec(self, source, filename):
        raise RuntimeError("not used")

    exec_single = exec

    def interrupt(self):
        pass

    def close(self):
        pass

    def format_exception(self, e):
        return repr(e)


class QuietRuntime:
    def new_session(self, write, hard):
        return QuietSession()


@pytest.fixture
def board(tmp_path):
    state = BoardState(tmp_path / "board")
    b = VirtualBoard(state, QuietRuntime())
    t = threading.Thread(target=b.serve, daemon=True)
    t.start()
    yield b
    b.shutdown()
    t.join(5)


def wait(pred, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


def isp_log(b):
    p = b.state.folder / "isp.jsonl"
    return [json.loads(line) for line in p.read_text().splitlines()] if p.exists() else []


def test_kfpkg_lands_byte_for_byte_and_sectors_are_counted(board, tmp_path):
    fw = pattern(100_000, 1)
    m1 = pattern(70_000, 2)
    m2 = pattern(5_000, 3)
    pkg = kfpkg.write(tmp_path / "x.kfpkg", [kfpkg.Entry(0, "fw.bin", fw, True),
                                             kfpkg.Entry(0x300000, "a.kmodel", m1, False),
                                             kfpkg.Entry(0x312000, "b.kmodel", m2, False)])
    seen = []
    flasher.flash(pkg, board.port, board="bit", baud=1500000, progress=lambda n, d, t: seen.append((n, d, t)))
    assert wait(lambda: isp_log(board), 10)
    flash = board.state.flash_path.read_bytes()
    img = flash_map.firmware_image(fw)
    assert flash[:len(img)] == img
    assert flash[0x300000:0x300000 + len(m1)] == m1
    assert flash[0x312000:0x312000 + len(m2)] == m2
    assert flash[0x312000 + len(m2):0x314000] == b"\xff" * (0x314000 - 0x312000 - len(m2))
    rec = isp_log(board)[-1]
    assert rec["bytes_written"] == len(img) + len(m1) + len(m2)
    want = set()
    for a, n in ((0, len(img)), (0x300000, len(m1)), (0x312000, len(m2))):
        want.update(range(a // 4096, (a + n - 1) // 4096 + 1))
    assert rec["sectors_written"] == len(want)
    assert any(n == "a.kmodel" and d == t for n, d, t in seen)   # progress reached 100% per file


def test_kflash_without_the_pty_tolerance_fails_at_greeting(board, tmp_path):
    import kflash
    pkg = kfpkg.write(tmp_path / "y.kfpkg", [kfpkg.Entry(0x300000, "a.kmodel", b"abc", False)])
    with pytest.raises(Exception, match="Greeting fail"):
        kflash.KFlash(print_callback=lambda *a, **k: None).process(
            terminal=False, dev=board.port, baudrate=115200, board="bit", file=str(pkg), noansi=True)
    kflash.KFlash.print_callback = None


def _frame(op, address, data=b""):
    import struct
    import zlib
    body = struct.pack("<II", address, len(data)) + data
    raw = struct.pack("<HHI", op, 0, zlib.crc32(body) & 0xFFFFFFFF) + body
    return b"\xc0" + raw.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc") + b"\xc0"


def test_isp_stub_checks_crc_erases_and_refuses_out_of_range_writes():
    from host_tools.deploy.isp import Isp
    flash = bytearray(b"\xff" * (1 << 20))
    isp = Isp(flash)
    assert isp.feed(b"\xc0\xc2" + bytes(11) + b"\xc0") == b"\xc0\xc2\xe0\xc0"      # greeting
    assert isp.feed(_frame(0xC3, 0x80000000, b"stub")) == b"\xc0\xc3\xe0\xc0"
    assert isp.feed(_frame(0xC5, 0x80000000)) == b""                            # boot: no answer
    assert isp.feed(b"\xc0\xd2" + bytes(11) + b"\xc0") == b"\xc0\xd2\xe0\xc0"      # flash greeting
    data = bytes([0xC0, 0xDB, 1, 2]) * 1024                                      # escaped bytes survive
    assert isp.feed(_frame(0xD4, 0x1000, data)) == b"\xc0\xd4\xe0\xc0"
    assert flash[0x1000:0x2000] == data and isp.stats.sectors == {1}
    bad = bytearray(_frame(0xD4, 0x3000, b"abcd"))
    bad[-2] ^= 1                                                                 # payload no longer matches CRC
    assert isp.feed(bytes(bad)) == b"\xc0\xd4\xe2\xc0" and flash[0x3000:0x3004] == b"\xff" * 4
    assert isp.feed(_frame(0xD4, len(flash) - 2, b"abcd")) == b"\xc0\xd4\xe6\xc0"
    assert isp.feed(_frame(0xD8, 0, b"")) == b"\xc0\xd8\xe0\xc0"                    # 0, 0: chip erase
    assert flash == b"\xff" * len(flash)
    assert isp.feed(b"\xc0\xd5" + bytes(11) + b"\xc0") == b"\xc0\xd5\xe0\xc0" and isp.stats.rebooted


def test_unmodified_kflash_command_line_through_the_boards_usb_port(tmp_path):
    """`kflash -p PORT -B bit -b 1500000 -n X.kfpkg`, the console script as installed, against `make board`: it
    resets the board into ISP with DTR/RTS on the FUSE port and the bytes land."""
    import subprocess
    import sys
    from pathlib import Path
    from host_tools.deploy import fuse_port
    from test_deploy_support import VirtualBoardProcess
    why = fuse_port.available()
    if why:
        pytest.skip("no FUSE serial port here: %s" % why)
    b = VirtualBoardProcess(tmp_path / "board", ["--fast"])
    try:
        usb = b.proc.stdout.readline().split()[-1]
        assert usb.endswith("/usb/ttyUSB0")
        fw, model = pattern(60_000, 4), pattern(100_000, 5)
        pkg = kfpkg.write(tmp_path / "x.kfpkg", [kfpkg.Entry(0, "fw.bin", fw, True),
                                                 kfpkg.Entry(0x300000, "a.kmodel", model, False)])
        kflash_cli = Path(sys.executable).parent / "kflash"
        r = subprocess.run([str(kflash_cli), "-p", usb, "-B", "bit", "-b", "1500000", "-n", str(pkg)],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and "Greeting fail" not in r.stdout, r.stdout[-2000:]
        assert "Rebooting" in r.stdout
        assert b.wait_for(lambda: (b.state / "isp.jsonl").exists(), 10)
        flash = (b.state / "flash.bin").read_bytes()
        assert flash[:len(fw) + 37] == flash_map.firmware_image(fw)
        assert flash[0x300000:0x300000 + len(model)] == model
        log = (b.state / "board.log").read_text()
        assert "reset held (RTS)" in log and "reset into ISP" in log      # through the modem lines
    finally:
        b.close()
    assert not os.path.ismount(str(tmp_path / "board" / "usb"))          # unmounted with the board


def test_the_usb_port_is_unmounted_even_when_the_board_is_killed(tmp_path):
    import signal
    from host_tools.deploy import fuse_port
    from test_deploy_support import VirtualBoardProcess
    if fuse_port.available():
        pytest.skip("no FUSE serial port here: %s" % fuse_port.available())
    b = VirtualBoardProcess(tmp_path / "board", ["--fast"])
    b.proc.stdout.readline()
    usb = tmp_path / "board" / "usb"
    assert os.path.ismount(str(usb))
    b.proc.send_signal(signal.SIGKILL)
    b.proc.wait()
    assert wait(lambda: not os.path.ismount(str(usb)), 10)
    b.close()


def test_without_fuse_the_board_says_why_and_what_works(board, tmp_path, monkeypatch):
    from host_tools.deploy import fuse_port, virtual_board
    monkeypatch.setattr(fuse_port.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(fuse_port, "_fusermount", lambda: None)
    line = virtual_board.usb_port(board, tmp_path / "usb")
    assert line == ("no kflash port with DTR/RTS (not root and no fusermount3: install the fuse3 package (sudo apt "
                    "install fuse3)): the kflash command line cannot reset this board; `python -m host_tools flash "
                    "write` and `deploy` drive kflash over the pty")
    assert not (tmp_path / "usb").exists()


NOBODY = 65534      # an unprivileged user every Linux has
# The virtual board's ISP side and its FUSE port, without the simulator (which would compile its kernels anew for a
# user who cannot write the checkout's numba cache): argv[1] is the state folder.
ISP_BOARD = """
import sys
from pathlib import Path
from host_tools.deploy.virtual_board import BoardState, VirtualBoard, usb_port
from test_deploy_kflash import QuietRuntime
b = VirtualBoard(BoardState(sys.argv[1]), QuietRuntime())
print(usb_port(b, Path(sys.argv[1]) / "usb"), flush=True)
b.serve()
"""


class NormalUser:
    """Commands run as uid/gid 65534 with no groups and no capabilities (as this user when it is not root), from a
    home folder of its own. Python is this one when that user may run it, else the system's of the same version on
    this venv's packages (here the venv's interpreter lives under /root, 0700)."""

    def __init__(self):
        import shutil
        import subprocess
        import sys
        import sysconfig
        import tempfile
        from pathlib import Path
        from test_deploy_support import ROOT
        self.drop = []                  # not root: this user is one already
        self.home = Path(tempfile.mkdtemp(prefix="maixkit-user-"))     # pytest's tmp_path is root's alone (0700)
        if os.geteuid() == 0:
            if not shutil.which("setpriv"):
                shutil.rmtree(self.home)
                pytest.skip("becoming an unprivileged user takes setpriv (util-linux)")
            self.drop = ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups", "--"]
            os.chmod(self.home, 0o755)
            os.chown(self.home, NOBODY, NOBODY)
        self.env = dict(os.environ, HOME=str(self.home), PYTHONUNBUFFERED="1",
                        PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests"), sysconfig.get_paths()["purelib"]]))
        self.python = sys.executable
        if self.drop and subprocess.run(self.drop + ["test", "-x", os.path.realpath(self.python)]).returncode != 0:
            self.python = shutil.which("python%d.%d" % sys.version_info[:2], path=os.defpath)
            if not self.python:
                shutil.rmtree(self.home)
                pytest.skip("no Python %d.%d that uid %d may run" % (sys.version_info[:2] + (NOBODY,)))
        self.bin = Path(sys.executable).parent
        self.root = ROOT

    def popen(self, args, **kw):
        import subprocess
        return subprocess.Popen(self.drop + [self.python] + args, cwd=self.root, env=self.env, **kw)

    def run(self, args, **kw):
        import subprocess
        return subprocess.run(self.drop + [self.python] + args, cwd=self.root, env=self.env, **kw)

    def mounted(self) -> list:
        """FUSE mounts under this user's home (read from /proc: root may not stat another user's FUSE mount)."""
        with open("/proc/self/mounts") as f:
            return [line.split()[1] for line in f if line.split()[1].startswith(str(self.home) + "/")]

    def close(self):
        """After the board has stopped: its mount must be gone (its guard unmounts it), then the home folder."""
        import shutil
        import subprocess
        wait(lambda: not self.mounted(), 20)
        left = self.mounted()
        for m in left:                  # not left behind for the next run
            subprocess.run(["umount", "-l", m], capture_output=True)
        shutil.rmtree(self.home, ignore_errors=True)
        assert not left, "still mounted after the board stopped: %s" % left


def lacks_for_a_normal_user() -> str:
    """What this machine lacks for a normal user to mount the FUSE port, worked out here from the files themselves
    (the expected text is fuse_port's)."""
    import shutil
    from host_tools.deploy import fuse_port
    fm = shutil.which("fusermount3") or shutil.which("fusermount")
    if not os.path.exists("/dev/fuse"):
        return fuse_port.NO_DEV_FUSE
    if not fm:
        return fuse_port.NO_FUSERMOUNT
    if not (os.stat(fm).st_uid == 0 and os.stat(fm).st_mode & 0o4000):
        return fuse_port.NOT_SETUID % (fm, fm)
    return ""


def kflash_as(user, usb, model):
    """The unmodified kflash command line (this venv's console script) as that user: returns its run."""
    import subprocess
    pkg = kfpkg.write(user.home / "x.kfpkg", [kfpkg.Entry(0x300000, "a.kmodel", model, False)])
    return user.run([str(user.bin / "kflash"), "-p", usb, "-B", "bit", "-b", "1500000", "-n", str(pkg)],
                    capture_output=True, text=True, timeout=120)


def test_the_usb_port_and_the_kflash_command_line_as_a_normal_user():
    """The board's FUSE port served by a user without root (uid 65534, no groups), and the kflash command line of
    that user through it: the bytes land and the reset came through the modem lines; or, where this machine does
    not let a normal user mount FUSE, the board's usb line says exactly what that user lacks."""
    import subprocess
    user = NormalUser()
    lacks = lacks_for_a_normal_user()
    state = user.home / "board"
    b = user.popen(["-c", ISP_BOARD, str(state)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = b.stdout.readline()
        if lacks:
            assert line == ("no kflash port with DTR/RTS (%s): the kflash command line cannot reset this board; "
                            "`python -m host_tools flash write` and `deploy` drive kflash over the pty\n" % lacks), line
            return
        usb = line.split()[-1]
        assert line.startswith("kflash port (with DTR/RTS): ") and usb == str(state / "usb" / "ttyUSB0"), \
            line + (b.stdout.read() if b.poll() is not None else "")
        model = pattern(100_000, 6)
        r = kflash_as(user, usb, model)
        assert r.returncode == 0 and "Greeting fail" not in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]
        assert wait(lambda: (state / "isp.jsonl").exists(), 10)
        assert (state / "flash.bin").read_bytes()[0x300000:0x300000 + len(model)] == model
        assert "reset held (RTS)" in (state / "board.log").read_text()     # through the modem lines
    finally:
        b.terminate()
        b.wait(20)
        b.stdout.close()
        user.close()                    # asserts that the guard unmounted the port


@pytest.mark.heavy
def test_make_board_as_a_normal_user():
    """`python -m host_tools board` as uid 65534 (its numba kernels compiled anew: that user cannot write the
    checkout's cache), `fs ls` and the kflash command line as that user."""
    import subprocess
    user = NormalUser()
    lacks = lacks_for_a_normal_user()
    state = user.home / "board"
    b = user.popen(["-m", "host_tools", "board", "--state", str(state), "--fast"], stdout=subprocess.PIPE,
                   stderr=subprocess.STDOUT, text=True)
    try:
        first, usb_line = b.stdout.readline(), b.stdout.readline()
        assert first.startswith("virtual Maix Bit on port /dev/pts/"), first + usb_line
        port = first.split()[-1]
        r = user.run(["-m", "host_tools", "fs", "--port", port, "ls", "/flash"], capture_output=True, text=True,
                     timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        if lacks:
            assert lacks in usb_line, usb_line
            return
        model = pattern(100_000, 7)
        r = kflash_as(user, usb_line.split()[-1], model)
        assert r.returncode == 0 and "Greeting fail" not in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]
        assert wait(lambda: (state / "isp.jsonl").exists(), 10)
        assert (state / "flash.bin").read_bytes()[0x300000:0x300000 + len(model)] == model
    finally:
        b.terminate()
        b.wait(30)
        b.stdout.close()
        user.close()


def test_what_a_normal_user_lacks_for_the_usb_port_is_named(tmp_path, monkeypatch):
    """Without root, mounting takes fusermount3, setuid root and runnable by the user: each missing piece is named
    with its fix."""
    from host_tools.deploy import fuse_port
    fm = tmp_path / "fusermount3"
    fm.write_text("#!/bin/sh\n")
    monkeypatch.setattr(fuse_port.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(fuse_port, "_fusermount", lambda: None)
    assert fuse_port.available() == "not root and no fusermount3: install the fuse3 package (sudo apt install fuse3)"
    monkeypatch.setattr(fuse_port, "_fusermount", lambda: str(fm))
    fm.chmod(0o644)
    assert fuse_port.available() == ("%s is not executable by you: join the group it belongs to (sudo usermod -aG "
                                     "root $USER, then log in again)" % fm)
    fm.chmod(0o755)
    assert fuse_port.available() == "%s is not setuid root, so it cannot mount for you (sudo chmod u+s %s)" % (fm, fm)
    fm.chmod(0o4755)
    assert fuse_port.available() == ""
    real = os.path.exists
    monkeypatch.setattr(fuse_port.os.path, "exists", lambda p: False if p == "/dev/fuse" else real(p))
    assert fuse_port.available() == "no /dev/fuse: the kernel has no FUSE (load it: sudo modprobe fuse)"


def test_our_flasher_never_reports_success_after_greeting_fail(tmp_path):
    """A port where no ISP answers (a bare pty): kflash says "Greeting fail" and the flasher raises, naming the
    port and kflash's reason; `flash write` then exits 1 with that one line."""
    import pty
    master, slave = pty.openpty()
    port = os.ttyname(slave)
    pkg = kfpkg.write(tmp_path / "z.kfpkg", [kfpkg.Entry(0x300000, "a.kmodel", b"abc", False)])
    try:
        with pytest.raises(flasher.FlashError, match=r"kflash failed on %s: .*Greeting fail" % port):
            flasher.flash(pkg, port, board="bit", baud=115200)
    finally:
        os.close(master)
        os.close(slave)
