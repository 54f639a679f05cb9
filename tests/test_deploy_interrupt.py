"""A deploy cut short by Ctrl-C (SIGINT) or `kill -9` (SIGKILL) at any moment never leaves a broken board.

The virtual Maix Bit runs version 1 (the demo classifier and detector, device/). A deploy of version 2 (another,
bigger classifier under the same name, and an edited app) is started as a user starts it and
killed at one of many moments spread over its run. Then the board is power-cycled and its app runs a model in each mode
without an error (both from version 1 or from version 2, never a mix that fails), and a second deploy completes
and leaves version 2. `make test` runs a few moments; `make test-slow` runs 20 with each signal.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from host_tools import manifest as mf
from host_tools.deploy.deploy import wait_for_repl
from host_tools.sim.provision import fixture_manifests
from conftest import FIXTURES, fixture_file
from test_deploy_support import ROOT, VirtualBoardProcess

POINTS = 22              # interruption moments per signal in make test-slow
QUICK = (0.35, 0.75)     # fractions of the deploy's run in make test

# boot.py's bring-up (our Ctrl-C may have cut it short), then one frame in each mode through the app itself, as
# main.py runs it: (model, result?, notice) per mode.
APP_CHECK = """
import startup
startup.boot()
import app
_a = app.App()
_out = []
try:
 _a.start()
 for _i in range(2):
  if _i:
   _a.enter(1 - _a.mode)
  _a.frame()
  _e = _a.manager.entry
  _out.append((_e['name'] if _e else None, _a.result is not None, _a.notice[0] if _a.notice else None))
finally:
 _a.manager.free()
print(repr(_out))
"""


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    """(v1 models, v2 models, v2 device dir, baseline board state with v1 deployed)."""
    root = tmp_path_factory.mktemp("interrupt")
    demo = mf.find(ROOT / "models") if (ROOT / "models").is_dir() else []
    if {mf.load(p).kind for p in demo} != {"classifier", "detector"}:
        pytest.skip("models/ has no demo classifier and detector")
    fixture_file("maixpy-mnist", "mnist.kmodel")
    v1, v2 = root / "v1", root / "v2"
    for d in (v1, v2):
        d.mkdir()
        for p in demo:
            m = mf.load(p)
            shutil.copyfile(p, d / p.name)
            shutil.copyfile(mf.kmodel_path(p, m), d / m.kmodel)
    # v2's classifier: another, bigger model under the same name (the real MaixPy mnist kmodel). Placed where v1
    # put it, it would cover v1's detector too: exactly the flash an interrupted deploy must not leave listed.
    cls = next(mf.load(p) for p in demo if mf.load(p).kind == "classifier")
    mnist = mf.load(next(p for p in fixture_manifests(FIXTURES, root / "fx") if p.stem == "mnist"))
    shutil.copyfile(root / "fx" / mnist.kmodel, v2 / cls.kmodel)
    mnist.name, mnist.kmodel = cls.name, cls.kmodel
    mf.save(v2 / (cls.name + ".json"), mnist)
    dev2 = root / "device2"
    shutil.copytree(ROOT / "device", dev2, ignore=shutil.ignore_patterns("__pycache__"))
    with open(dev2 / "lib" / "app.py", "a") as f:
        f.write("# version 2\n")
    base = root / "baseline"
    board = VirtualBoardProcess(base, ["--fast", "--max-frames", "1"])
    try:
        r = deploy(board.port, v1, ROOT / "device", root / "out1")
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        board.close()
    return v1, v2, dev2, base


def deploy(port, models, device, out):
    return subprocess.run(DEPLOY + [port, "--models", str(models), "--device", str(device), "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


DEPLOY = [sys.executable, "-m", "host_tools", "deploy", "--port"]


def run_deploy(port, models, device, out, kill=None):
    """Run deploy as a user does; kill=(signal, line, delay): send the signal `delay` s after its line number
    `line` appeared (the moments are the lines a deploy prints, each a step). Returns [(seconds, line)]."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    p = subprocess.Popen(DEPLOY + [port, "--models", str(models), "--device", str(device), "--out", str(out)],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    t0 = time.monotonic()
    lines = []
    for text in p.stdout:
        lines.append((time.monotonic() - t0, text.rstrip()))
        if kill is not None and len(lines) == kill[1] + 1:
            time.sleep(kill[2])
            p.send_signal(kill[0])
            lines.append((time.monotonic() - t0, "<%s>" % signal.Signals(kill[0]).name))
            break
    try:
        rest = p.communicate(timeout=120)[0]
    except subprocess.TimeoutExpired:
        p.kill()
        rest = p.communicate()[0]
    lines += [(time.monotonic() - t0, x) for x in rest.splitlines()]
    if kill is None:
        assert p.returncode == 0, "\n".join(x for _, x in lines)
    return lines


BOARD_ARGS = ["--fast", "--max-frames", "1"]


def board_from(base: Path, where: Path) -> VirtualBoardProcess:
    shutil.copytree(base, where)
    (where / "board.log").unlink(missing_ok=True)
    return VirtualBoardProcess(where, BOARD_ARGS)


def power_cycle(board: VirtualBoardProcess) -> VirtualBoardProcess:
    """Unplug and plug in again, as a user does with a board a killed kflash left in ISP mode: the same flash and
    files, a fresh power-on."""
    board.close()
    return VirtualBoardProcess(board.state, BOARD_ARGS)


def app_runs(port):
    """Run the app one frame per mode on a board just powered on: [(model, ran, notice)]. Connected as deploy does
    after a flash (wait_for_repl: attempts for 30 s): a board process starved of CPU (the heavy sweep runs under
    nice beside other jobs) was once silent for the 3 s after which one attempt gives up."""
    link = wait_for_repl(port, "mpremote")
    try:
        return eval(link.exec(APP_CHECK, timeout=120).decode().strip().splitlines()[-1])
    finally:
        link.close()


@pytest.fixture(scope="module")
def timeline(versions, tmp_path_factory):
    """The lines an uninterrupted v2 deploy prints from the v1 baseline, with their times."""
    v1, v2, dev2, base = versions
    tmp = tmp_path_factory.mktemp("cal")
    board = board_from(base, tmp / "board")
    try:
        return run_deploy(board.port, v2, dev2, tmp / "out")
    finally:
        board.close()


def moments(timeline, n=POINTS):
    """n moments spread evenly over the deploy's run, from the candidates: each line it prints, at once and
    halfway to the next line: (line index, delay s, what it is)."""
    out = []
    for i, (t, text) in enumerate(timeline):
        gap = timeline[i + 1][0] - t if i + 1 < len(timeline) else 0.2
        out.append((i, 0.0, text))
        out.append((i, gap / 2, "halfway after: " + text))
    if len(out) <= n:
        return out
    return [out[round(k * (len(out) - 1) / (n - 1))] for k in range(n)]


def interrupt_and_recover(versions, tmp_path, sig, line, delay):
    v1, v2, dev2, base = versions
    names = {mf.load(p).name for p in mf.find(v2)}
    board = board_from(base, tmp_path / "board")
    try:
        said = run_deploy(board.port, v2, dev2, tmp_path / "out", kill=(sig, line, delay))
        where = " | ".join(x for _, x in said[-3:])
        # after a power cycle the board's app runs a model in each mode, without an error
        board = power_cycle(board)
        modes = app_runs(board.port)
        assert [m[0] in names for m in modes] == [True, True], (where, modes)
        assert all(ran and notice is None for _, ran, notice in modes), (where, modes)
        # a second deploy completes and the board then runs version 2
        run_deploy(board.port, v2, dev2, tmp_path / "out2")
        assert not list((board.state / "flash").glob("*.part"))
        want = json.loads((tmp_path / "out2" / "models.json").read_text())
        assert json.loads((board.state / "flash" / "models.json").read_text()) == want
        assert (board.state / "flash" / "app.py").read_bytes() == (dev2 / "lib" / "app.py").read_bytes()
        board = power_cycle(board)
        modes = app_runs(board.port)
        assert all(ran and notice is None for _, ran, notice in modes), (where, modes)
    finally:
        board.close()


def line_of(timeline, start):
    """Index of the last line starting with `start`."""
    return [i for i, (_, text) in enumerate(timeline) if text.strip().startswith(start)][-1]


@pytest.mark.slow
@pytest.mark.parametrize("sig, step, half", [(signal.SIGINT, "flash: writing", True),      # inside kflash
                                             (signal.SIGKILL, "digits_", False),         # flashed, no models.json
                                             (signal.SIGINT, "staged /flash/app.py", False)],
                         ids=["SIGINT-kflash", "SIGKILL-flashed", "SIGINT-staging"])
def test_interrupted_deploy_leaves_a_working_board(versions, timeline, tmp_path, sig, step, half):
    i = line_of(timeline, step)
    gap = timeline[i + 1][0] - timeline[i][0]
    interrupt_and_recover(versions, tmp_path, sig, i, gap / 2 if half else 0.0)


@pytest.mark.heavy
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_interrupted_deploy_at_every_step(versions, timeline, tmp_path, sig):
    points = moments(timeline)
    assert len(points) >= 20
    t0 = time.monotonic()
    for k, (line, delay, what) in enumerate(points):
        interrupt_and_recover(versions, tmp_path / ("p%02d" % k), sig, line, delay)
    print("\n%s: %d interruptions of a %.1f s deploy (%.0f s in all), each left a board whose app ran both modes "
          "and took a second deploy:" % (signal.Signals(sig).name, len(points), timeline[-1][0],
                                          time.monotonic() - t0))
    for line, delay, what in points:
        print("  %6.2f s  %s" % (timeline[line][0] + delay, what[:100]))
