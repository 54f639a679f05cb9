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
    assert capsys.readouterr().err == "error: no such file %s/hello.py\n" % root


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
    assert "/flash/sub/lib1.py: /flash is SPIFFS, which has no folders" in capsys.readouterr().err
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


def one_line_error(capsys, text):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err == "error: %s\n" % text, err


def test_new_edit_creates_rm_and_the_file_systems_themselves(board, tmp_path, capsys, monkeypatch):
    assert fs(board, "new", "/flash/fresh.py") == 0
    assert (board.state / "flash" / "fresh.py").read_bytes() == b""
    assert fs(board, "new", "/flash/fresh.py") == 1
    one_line_error(capsys, "/flash/fresh.py already exists (fs edit /flash/fresh.py changes it)")
    editor = tmp_path / "ed.py"
    editor.write_text("#!%s\nimport sys\nopen(sys.argv[1], 'a').write('x = 1\\n')\n" % sys.executable)
    editor.chmod(0o755)
    monkeypatch.setenv("EDITOR", str(editor))
    monkeypatch.delenv("VISUAL", raising=False)
    assert fs(board, "edit", "/sd/made.py") == 0                  # edit creates a missing file
    assert "created /sd/made.py" in capsys.readouterr().out
    assert (board.state / "sd" / "made.py").read_text() == "x = 1\n"
    assert fs(board, "rm", "/flash") == 1                         # not the board's ENOENT
    one_line_error(capsys, "/flash is a file system, not a file: remove the files in it one by one (fs ls /flash)")
    assert fs(board, "cat", "/flash/nope.py") == 1
    one_line_error(capsys, "no such file /flash/nope.py")
    assert fs(board, "ls", "/sd/nope") == 1
    one_line_error(capsys, "no such folder /sd/nope")
    assert fs(board, "put", tmp_path / "missing.py") == 1
    one_line_error(capsys, "no such file %s (on this computer)" % (tmp_path / "missing.py"))
    assert fs(board, "get", "/sd/made.py", tmp_path / "no" / "where.py") == 1
    one_line_error(capsys, "no such folder %s (on this computer) to put where.py in" % (tmp_path / "no"))
    for name in ("fresh.py",):
        assert fs(board, "rm", "/flash/" + name) == 0
    assert fs(board, "rm", "/sd/made.py") == 0


def test_mkdir_rmdir_on_the_card_and_a_clear_no_on_spiffs(board, tmp_path, capsys):
    assert fs(board, "mkdir", "/sd/data") == 0
    assert (board.state / "sd" / "data").is_dir()
    assert fs(board, "mkdir", "/sd/data") == 1
    one_line_error(capsys, "/sd/data already exists")
    src = tmp_path / "a.txt"
    src.write_text("a")
    assert fs(board, "put", src, "/sd/data/a.txt") == 0
    assert fs(board, "ls", "/sd") == 0
    assert "   <dir>  data/" in capsys.readouterr().out
    assert fs(board, "rmdir", "/sd/data") == 1
    one_line_error(capsys, "/sd/data is not empty (remove its files first)")
    assert fs(board, "rm", "/sd/data") == 1
    one_line_error(capsys, "/sd/data is a folder: fs rmdir /sd/data removes it when it is empty")
    assert fs(board, "rm", "/sd/data/a.txt") == 0 and fs(board, "rmdir", "/sd/data") == 0
    assert not (board.state / "sd" / "data").exists()
    assert fs(board, "rmdir", "/sd/data") == 1
    one_line_error(capsys, "no such folder /sd/data")
    for action in ("mkdir", "rmdir"):
        assert fs(board, action, "/flash/lib") == 1
        err = capsys.readouterr().err
        assert err.startswith("error: cannot ") and "/flash is SPIFFS, which has no folders" in err


def test_run_streams_output_keeps_it_on_an_error_and_names_the_line(board, tmp_path, capsys):
    (board.state / "flash" / "bad.py").write_text("print('before')\nprint('still')\nx = 1 // 0\n")
    assert fs(board, "run", "/flash/bad.py") == 1
    cap = capsys.readouterr()
    assert cap.out == "before\nstill\n"                          # what it printed before the error
    assert cap.err.startswith("error: /flash/bad.py, line 3: ZeroDivisionError: ") and cap.err.count("\n") == 1


def test_run_streams_as_it_comes(board, tmp_path):
    # The script waits for a file that the test writes only after it has read the script's first line: output
    # held back until the end would never let it finish (a handshake, not a timing).
    (board.state / "flash" / "go").unlink(missing_ok=True)
    (board.state / "flash" / "slow.py").write_text(
        "import uos\nprint('tick 0')\nwhile True:\n    try:\n        uos.stat('/flash/go')\n        break\n"
        "    except OSError:\n        pass\nprint('tick 1')\n")
    p = subprocess.Popen([sys.executable, "-m", "host_tools", "fs", "--port", board.port, "run", "/flash/slow.py"],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ,
                                                                                          PYTHONUNBUFFERED="1"))
    try:
        ready, _, _ = select.select([p.stdout], [], [], 60)
        assert ready, "no output while the script runs"
        assert p.stdout.readline() == b"tick 0\n"
        (board.state / "flash" / "go").write_text("")
        assert p.wait(60) == 0, p.stderr.read()
        assert p.stdout.read() == b"tick 1\n"
    finally:
        p.kill()
        (board.state / "flash" / "go").unlink(missing_ok=True)


def test_run_timeout_stops_a_busy_loop_and_the_board_stays_usable(board, capsys):
    (board.state / "flash" / "spin.py").write_text("print('spinning')\nwhile True:\n    pass\n")
    t0 = time.monotonic()
    assert fs(board, "run", "--timeout", "2", "/flash/spin.py") == 1
    took = time.monotonic() - t0
    cap = capsys.readouterr()
    assert cap.out == "spinning\n"
    assert cap.err == "error: /flash/spin.py: still running after 2 s: stopped with Ctrl-C, the board is ready\n"
    assert took < 10, took
    t0 = time.monotonic()
    assert fs(board, "ls", "/flash") == 0 and time.monotonic() - t0 < 5
    assert "spin.py" in capsys.readouterr().out


def test_reset_soft_and_hard(board, capsys):
    log = board.state / "board.log"
    assert board.wait_for(lambda: log.exists() and "boot (power on)" in log.read_text(), 20)   # its first boot
    boots = log.read_text().count("boot (power on)")
    assert fs(board, "reset") == 0
    assert "soft reboot" in capsys.readouterr().out
    assert fs(board, "reset", "--hard") == 0
    assert board.wait_for(lambda: log.read_text().count("boot (power on)") == boots + 1, 10)
    assert fs(board, "ls", "/flash") == 0                         # and it answers again


def test_repl_without_a_terminal_says_so(board):
    r = subprocess.run([sys.executable, "-m", "host_tools", "fs", "--port", board.port, "repl"], cwd=ROOT,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith("error: fs repl needs a terminal") and r.stderr.count("\n") == 1


def test_a_connection_removes_what_an_interrupted_copy_left(board, capsys):
    (board.state / "flash" / "cut.py.part").write_bytes(b"half a fi")
    (board.state / "sd" / "cut.py.part").write_bytes(b"half")
    assert fs(board, "ls", "/flash") == 0
    assert ".part" not in capsys.readouterr().out
    assert not (board.state / "flash" / "cut.py.part").exists() and not (board.state / "sd" / "cut.py.part").exists()
