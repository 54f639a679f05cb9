"""How long `fs ls` takes to say a port is wrong, each beside a reference measured in this run.

- a serial port with nothing MicroPython behind it (a bare pty): must be reported within 5 s (issue 14);
- a port that does not exist: the reference, Python's start-up and our imports plus an immediate refusal;
- `fs ls` on the virtual board found without --port (its out/board/port.json), the good case.
Wall and CPU (user+sys of the child) seconds: the wall figure is inflated by other jobs on the machine.
Run: .venv/bin/python bench/port_answer.py
"""
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from test_deploy_support import VirtualBoardProcess  # noqa: E402


def timed(args, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("PORT", None)
    env.pop("MAIXKIT_PORT", None)
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "host_tools"] + args, cwd=cwd, env=env, capture_output=True,
                       text=True)
    wall = time.monotonic() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return wall, cpu, p.returncode, (p.stderr.strip().splitlines() or [""])[-1]


def main():
    with tempfile.TemporaryDirectory() as tmp:
        master, slave = os.openpty()
        silent = timed(["fs", "--port", os.ttyname(slave), "ls"], tmp)
        os.close(master)
        os.close(slave)
        missing = timed(["fs", "--port", "/dev/ttyUSB-none", "ls"], tmp)
        board = VirtualBoardProcess(Path(tmp) / "out" / "board", ["--fast"])
        try:
            good = timed(["fs", "ls", "/flash"], tmp)
        finally:
            board.close()
    for name, (wall, cpu, rc, line) in (("not a board (bare pty)", silent), ("no such port (reference)", missing),
                                        ("virtual board, no --port", good)):
        print("%-26s %5.2f s wall %5.2f s CPU  exit %d  %s" % (name, wall, cpu, rc, line[:90]))
    print("not a board: %.2f s (limit 5 s), %.1fx the no-such-port reference" % (silent[0], silent[0] / missing[0]))
    return 0 if silent[0] < 5.0 and silent[2] == 1 and good[2] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
