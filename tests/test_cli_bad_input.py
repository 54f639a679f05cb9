"""Bad input across every command, as a new user types it: each gets its documented exit code and one line,
`error: ...`, naming the file, field, option or layer; no traceback; files and the board are left as they were.

The cases run in this process (host_tools.__main__.main), except those that need a real process: Ctrl-C, a
reader that goes away (`| head`), a REPL without a terminal, and the time a port that is not a board takes.
"""
import hashlib
import os
import pty
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from host_tools import command
from host_tools.__main__ import main
from test_deploy_support import ROOT

MODELS = ROOT / "models"
KMODEL = MODELS / "digits.kmodel"
TFLITE = MODELS / "digits_int8.tflite"
FAILED, USAGE = command.FAILED, command.USAGE
PROGRESS = re.compile(r"^[\w ]+: +\d+%\|")


def make_inputs(root: Path):
    """The user's files, good and bad, in `root`."""
    (root / "notes.txt").write_text("my notes\n")
    (root / "fake.jpg").write_text("not a picture\n")
    (root / "short.bin").write_bytes(bytes(100))
    (root / "fake.kmodel").write_text("hello\n")
    (root / "cut.tflite").write_bytes(TFLITE.read_bytes()[:1000])
    (root / "text.tflite").write_text("not a model\n")
    (root / "a_file").write_text("x\n")
    (root / "fstring.py").write_text("x = 1\nprint(f'{x}')\n")
    (root / "foreign").mkdir()
    (root / "foreign" / "notes.txt").write_text("keep me\n")
    (root / "empty").mkdir()
    one = root / "one_class" / "cat"
    one.mkdir(parents=True)
    two = root / "broken_photo"
    for label in ("cat", "dog"):
        (two / label).mkdir(parents=True)
        for i in range(3):
            _png(one / ("%d.png" % i)) if label == "cat" else None
            _png(two / label / ("%d.png" % i))
    (two / "dog" / "bad.jpg").write_text("not a picture\n")
    (root / "broken_manifest").mkdir()
    (root / "broken_manifest" / "m.json").write_text('{"name": "m", "kind": "classifier", "kmodel": ')
    (root / "pics").mkdir()
    for i in range(40):
        _png(root / "pics" / ("%02d.png" % i))


def _png(path):
    from PIL import Image
    Image.new("RGB", (8, 8), (40, 90, 200)).save(path)


# (id, argv, exit code, words the one error line must hold). {T}: the folder of the user's files.
CASES = [
    ("unknown-command", ["frobnicate"], USAGE, ["frobnicate"]),
    ("kmodel-unknown-action", ["kmodel", "explain", "{T}/fake.kmodel"], USAGE, ["explain"]),
    ("kmodel-missing-file", ["kmodel", "info", "{T}/none.kmodel"], FAILED, ["none.kmodel"]),
    ("kmodel-not-a-kmodel", ["kmodel", "info", "{T}/fake.kmodel"], FAILED, ["fake.kmodel", "version"]),
    ("kmodel-run-no-input", ["kmodel", "run", str(KMODEL)], USAGE, ["--input"]),
    ("kmodel-run-missing-image", ["kmodel", "run", str(KMODEL), "--input", "{T}/none.png"], FAILED, ["none.png"]),
    ("kmodel-run-non-image-jpg", ["kmodel", "run", str(KMODEL), "--input", "{T}/fake.jpg"], FAILED, ["fake.jpg"]),
    ("kmodel-run-short-bin", ["kmodel", "run", str(KMODEL), "--input", "{T}/short.bin"], FAILED, ["short.bin"]),
    ("kmodel-run-bad-top", ["kmodel", "run", str(KMODEL), "--input", "1", "--top", "many"], USAGE, ["--top"]),
    ("compile-missing-tflite", ["compile", "{T}/none.tflite", "--out", "{T}/m"], FAILED, ["none.tflite"]),
    ("compile-truncated-tflite", ["compile", "{T}/cut.tflite", "--out", "{T}/m"], FAILED, ["cut.tflite"]),
    ("compile-text-tflite", ["compile", "{T}/text.tflite", "--out", "{T}/m"], FAILED, ["text.tflite"]),
    ("compile-detector-no-anchors", ["compile", str(TFLITE), "--kind", "detector", "--out", "{T}/m"], FAILED,
     ["anchors"]),
    ("compile-out-is-a-file", ["compile", str(TFLITE), "--out", "{T}/a_file"], FAILED, ["a_file", "--out"]),
    ("compile-out-foreign", ["compile", str(TFLITE), "--out", "{T}/foreign"], FAILED, ["notes.txt", "--force"]),
    ("compile-bad-threshold", ["compile", str(TFLITE), "--threshold", "high"], USAGE, ["--threshold"]),
    ("check-missing", ["check", "{T}/none.tflite"], FAILED, ["none.tflite"]),
    ("check-truncated-tflite", ["check", "{T}/cut.tflite"], FAILED, ["cut.tflite"]),
    ("check-not-a-model", ["check", "{T}/notes.txt"], FAILED, ["notes.txt"]),
    ("train-no-data-option", ["train"], USAGE, ["--data"]),
    ("train-missing-folder", ["train", "--data", "{T}/none", "--out", "{T}/t"], FAILED, ["none"]),
    ("train-empty-folder", ["train", "--data", "{T}/empty", "--out", "{T}/t"], FAILED, ["empty"]),
    ("train-single-class", ["train", "--data", "{T}/one_class", "--out", "{T}/t"], FAILED, ["one_class"]),
    ("train-non-image-jpg", ["train", "--data", "{T}/broken_photo", "--out", "{T}/t"], FAILED, ["bad.jpg"]),
    ("train-out-foreign", ["train", "--data", "{T}/broken_photo", "--out", "{T}/foreign"], FAILED,
     ["notes.txt", "--force"]),
    ("train-bad-input-size", ["train", "--data", "{T}/pics", "--input", "big"], USAGE, ["--input"]),
    ("quantize-missing-model", ["quantize", "{T}/none.keras", "--data", "{T}/pics"], FAILED, ["none.keras"]),
    ("sim-out-foreign", ["sim", "--out", "{T}/foreign", "--seconds", "1"], FAILED, ["notes.txt", "--force"]),
    ("sim-out-checkout", ["sim", "--out", str(ROOT), "--seconds", "1"], FAILED, ["checkout"]),
    ("sim-missing-camera", ["sim", "--out", "{T}/s", "--device", str(ROOT / "device"), "--models", str(MODELS),
                            "--camera", "{T}/none.png"], FAILED, ["none.png"]),
    ("sim-missing-device", ["sim", "--out", "{T}/s", "--device", "{T}/empty"], FAILED, ["empty", "main.py"]),
    ("sim-bad-seconds", ["sim", "--seconds", "soon"], USAGE, ["--seconds"]),
    ("flash-missing-models", ["flash", "plan", "--models", "{T}/none", "--out", "{T}/d"], FAILED, ["none"]),
    ("flash-broken-manifest", ["flash", "plan", "--models", "{T}/broken_manifest", "--out", "{T}/d"], FAILED,
     ["m.json"]),
    ("flash-bad-pin", ["flash", "plan", "--models", str(MODELS), "--pin", "digits", "--out", "{T}/d"], FAILED, ["digits"]),
    ("flash-unknown-action", ["flash", "burn"], USAGE, ["burn"]),
    ("deploy-missing-port", ["deploy", "--models", str(MODELS), "--port", "{T}/ttyUSB9", "--out", "{T}/d"], FAILED, ["ttyUSB9"]),
    ("fs-no-board", ["fs", "ls", "/flash"], FAILED, ["no board found", "--port"]),
    ("fs-port-is-a-file", ["fs", "--port", "{T}/notes.txt", "ls"], FAILED, ["notes.txt", "not a serial port"]),
    ("board-state-is-a-file", ["board", "--state", "{T}/a_file"], FAILED, ["a_file", "--state"]),
    ("board-state-foreign", ["board", "--state", "{T}/foreign"], FAILED, ["notes.txt", "--force"]),
]


def tree(root: Path) -> dict:
    """Every file under root and a hash of its bytes."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def user(tmp_path, monkeypatch):
    """A folder of the user's files as cwd, no port in the environment and no USB boards."""
    from host_tools.deploy import ports
    make_inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    for name in ports.ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(ports, "usb", lambda: [])
    return tmp_path


def run_case(argv, code, words, root, capsys):
    argv = [a.replace("{T}", str(root)) for a in argv]
    before = tree(root)
    capsys.readouterr()
    rc = main(argv)
    err = capsys.readouterr().err
    # a progress bar redraws itself with carriage returns: its frames are not message lines
    lines = [l for l in err.strip().splitlines() if l and not PROGRESS.match(l)]
    assert rc == code, (argv, rc, err)
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for w in words:
        assert w.replace("{T}", str(root)) in lines[0], (w, lines[0])
    assert tree(root) == before, "%s changed the user's files" % argv


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case, user, capsys):
    _, argv, code, words = case
    run_case(argv, code, words, user, capsys)


def test_sim_out_keeps_a_foreign_file_with_force(user, capsys):
    """--force writes beside a file the command did not write, and a rerun replaces only its own files."""
    out = user / "foreign"
    args = ["sim", "--out", str(out), "--device", str(ROOT / "device"), "--models", str(MODELS), "--seconds", "0.5",
            "--quiet", "--force"]
    assert main(args) == 0
    assert (out / "notes.txt").read_text() == "keep me\n" and (out / "sim.log").is_file()
    (out / "frames" / "9999.png").write_bytes(b"stale frame of an earlier run")
    assert main(args) == 0
    assert (out / "notes.txt").read_text() == "keep me\n" and not (out / "frames" / "9999.png").exists()


def _subprocess(args, **kw):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for name in ("PORT", "MAIXKIT_PORT"):
        env.pop(name, None)
    return subprocess.run([sys.executable, "-m", "host_tools"] + args, capture_output=True, text=True, env=env,
                          **kw)


def test_a_port_that_is_not_a_board_is_reported(user):
    """A serial port with nothing MicroPython behind it: refused after NOT_A_BOARD_S of silence (the time it takes
    is bench/port_answer.py's figure: tests are not timed)."""
    master, slave = pty.openpty()
    name = os.ttyname(slave)
    try:
        r = _subprocess(["fs", "--port", name, "ls"], timeout=120)
    finally:
        os.close(master)
        os.close(slave)
    assert r.returncode == FAILED and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("error: %s: not a MaixPy board" % name), r.stderr


def test_fs_repl_without_a_terminal(user):
    r = _subprocess(["fs", "--port", "/dev/null", "repl"], stdin=subprocess.DEVNULL, timeout=60)
    assert r.returncode == FAILED and r.stderr.startswith("error: fs repl needs a terminal") \
        and r.stderr.count("\n") == 1, r.stderr


def test_output_piped_into_head_ends_quietly(user):
    """`kmodel run --json | head -1`: the reader leaves after one line; no BrokenPipeError, exit 0."""
    p = subprocess.Popen("%s -m host_tools kmodel run %s --input %s --json | head -1"
                         % (sys.executable, KMODEL, user / "pics"), shell=True, cwd=user, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                         executable="/bin/bash")
    out, err = p.communicate(timeout=120)
    assert out.count("\n") == 1 and '"top"' in out
    assert err == "", err


def test_ctrl_c_is_one_line_and_130(user):
    # enough pictures that the run cannot finish between its first line and the signal (40 did on a quiet machine)
    many = user / "many"
    many.mkdir()
    for i in range(3000):
        os.link(user / "pics" / "00.png", many / ("%04d.png" % i))
    p = subprocess.Popen([sys.executable, "-m", "host_tools", "kmodel", "run", str(KMODEL), "--input",
                          str(many)], cwd=user, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    first = p.stdout.readline()            # it is running
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert first.startswith("==") and p.returncode == command.INTERRUPTED, (first, err)
    assert err == "error: interrupted (Ctrl-C); files are written whole or not at all\n", err
