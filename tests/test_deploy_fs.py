"""`fs` (uPyLoader-style) on /flash and /sd of the virtual board, and the real tools talking to it unmodified."""
import os
import select
import subprocess
import sys
import time

import pytest

from host_tools.__main__ import main as cli
from host_tools.deploy import sync
from test_deploy_support import ROOT, VirtualBoardProcess


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    # one board for these tests: each works on its own file names
    b = VirtualBoardProcess(tmp_path_factory.mktemp("fs") / "board", ["--sd", "--fast"])
    yield b
    b.close()


def fs(board, *args):
    return cli(["fs", "--port", board.port] + [str(a) for a in args])


@pytest.mark.parametrize("root, folder", [("/flash", "flash"), ("/sd", "sd")])
def test_put_ls_cat_get_run_rm(board, tmp_path, capsys, root, folder):
    src = tmp_path / "hello.py"
    src.write_text("print('hello', 6 * 7)\n")
    assert fs(board, "put", src, root + "/hello.py") == 0
    assert (board.state / folder / "hello.py").read_text() == src.read_text()
    assert fs(board, "ls", root) == 0
    out = capsys.readouterr().out
    assert "hello.py" in out and str(len(src.read_bytes())) in out
    assert fs(board, "cat", root + "/hello.py") == 0
    assert capsys.readouterr().out == src.read_text()
    got = tmp_path / "got.py"
    assert fs(board, "get", root + "/hello.py", got) == 0
    assert got.read_bytes() == src.read_bytes()
    assert fs(board, "run", root + "/hello.py") == 0
    assert "hello 42" in capsys.readouterr().out
    assert fs(board, "rm", root + "/hello.py") == 0
    assert not (board.state / folder / "hello.py").exists()
    assert fs(board, "rm", root + "/hello.py") == 1
    assert "ENOENT" in capsys.readouterr().err


def test_edit_round_trip_with_a_scripted_editor(board, tmp_path, capsys, monkeypatch):
    (board.state / "flash" / "conf.py").write_text("x = 1\n")
    editor = tmp_path / "editor.py"
    editor.write_text("#!%s\nimport sys\np = sys.argv[1]\nopen(p, 'a').write(open(%r).read())\n"
                      % (sys.executable, str(tmp_path / "append.txt")))
    editor.chmod(0o755)
    monkeypatch.setenv("EDITOR", str(editor))
    monkeypatch.delenv("VISUAL", raising=False)

    (tmp_path / "append.txt").write_text("y = 2\n")
    assert fs(board, "edit", "/flash/conf.py") == 0
    assert (board.state / "flash" / "conf.py").read_text() == "x = 1\ny = 2\n"

    (tmp_path / "append.txt").write_text("")               # editor saves without a change
    before = (board.state / "flash" / "conf.py").stat().st_mtime_ns
    assert fs(board, "edit", "/flash/conf.py") == 0
    assert "unchanged, nothing written" in capsys.readouterr().out
    assert (board.state / "flash" / "conf.py").stat().st_mtime_ns == before

    (tmp_path / "append.txt").write_text("z = f'{x}'\n")    # an f-string: MaixPy's MicroPython 1.11 refuses it
    assert fs(board, "edit", "/flash/conf.py") == 1
    assert "mpy-cross 1.11 refuses it" in capsys.readouterr().err
    assert (board.state / "flash" / "conf.py").read_text() == "x = 1\ny = 2\n"


def test_put_mpy_and_spiffs_has_no_folders(board, tmp_path, capsys):
    src = tmp_path / "lib1.py"
    src.write_text("def f():\n    return 3\n")
    assert fs(board, "put", "--mpy", src, "/flash/lib1.py") == 0
    data = (board.state / "flash" / "lib1.mpy").read_bytes()
    assert data[:2] == b"M\x04"                                 # mpy format 4: what MaixPy loads
    assert fs(board, "put", src, "/flash/sub/lib1.py") == 1     # SPIFFS: no directories
    assert "ENOENT" in capsys.readouterr().err
    (board.state / "sd" / "sub").mkdir()
    assert fs(board, "put", src, "/sd/sub/lib1.py") == 0        # FAT on the card has them
    assert (board.state / "sd" / "sub" / "lib1.py").read_text() == src.read_text()


def test_unmodified_mpremote_cli_and_ampy_driver(board, tmp_path):
    src = tmp_path / "a.txt"
    src.write_bytes(b"0123456789" * 100)
    mp = [sys.executable, "-m", "mpremote", "connect", board.port, "resume"]
    r = subprocess.run(mp + ["fs", "cp", str(src), ":a.txt", "+", "fs", "ls", "+", "exec", "print(7*6)"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "a.txt" in r.stdout and "42" in r.stdout
    # cwd is /sd when a card is in, as MaixPy's _boot.py does it
    assert (board.state / "sd" / "a.txt").read_bytes() == src.read_bytes()

    from host_tools.deploy.link import Link
    link = Link(board.port, tool="ampy")
    rep = sync.sync(link, sync.device_files(ROOT / "device"), "/flash", log=lambda s: None)
    again = sync.sync(link, sync.device_files(ROOT / "device"), "/flash", log=lambda s: None)
    link.close()
    assert rep.copied and not again.copied and again.round_trips == 1
    for name, p in sync.device_files(ROOT / "device").items():
        assert (board.state / "flash" / name).read_bytes() == p.read_bytes()


def test_fs_repl_is_mpremotes_terminal_without_a_reset(board):
    m, s = os.openpty()
    p = subprocess.Popen([sys.executable, "-m", "host_tools", "fs", "--port", board.port, "repl"], cwd=ROOT,
                         stdin=s, stdout=s, stderr=s, start_new_session=True)
    os.close(s)

    def read_until(token, timeout=20):
        got = b""
        end = time.monotonic() + timeout
        while token not in got and time.monotonic() < end:
            if select.select([m], [], [], 0.1)[0]:
                try:
                    got += os.read(m, 4096)
                except OSError:
                    break
        return got

    try:
        assert b"Connected to MicroPython" in read_until(b"Connected to MicroPython")
        os.write(m, b"\r")
        read_until(b">>> ")
        os.write(m, b"6*7\r")
        assert b"42" in read_until(b"42")
        os.write(m, b"\x1d")                      # Ctrl-] leaves mpremote's terminal
        assert p.wait(20) == 0
    finally:
        if p.poll() is None:
            p.kill()
        os.close(m)
