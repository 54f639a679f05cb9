"""First result in seconds: a fresh clone's first `kmodel run` of the 20-class YOLO fixture and first `make sim`
against the second (warm) runs, in the same run; once after the install step's kernel warm-up
(host_tools.kmodel.warm, what `make venv` runs) and once without it (a clone as it was before that step).

    .venv/bin/python bench/cold_start.py [--no-sim]

The clone runs with this checkout's .venv (the packages are the same; only the clone's own files and its numba
cache are fresh). Prints wall seconds and CPU (user+sys) seconds of each command, and first - warm.
"""
import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
YOLO20 = ROOT.parent / "shared" / "fixtures" / "kmodel" / "nncase-yolo20"


def timed(cmd, cwd):
    """(wall s, cpu s) of one command run to completion."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                       env=dict(os.environ, PYTHONPATH=str(cwd)))
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode:
        raise SystemExit("cold_start: %s failed: %s" % (" ".join(map(str, cmd)), r.stderr.strip()[-400:]))
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def fresh_clone(tmp, name):
    d = Path(tmp) / name
    subprocess.run(["git", "clone", "-q", str(ROOT), str(d)], check=True)
    return d


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--no-sim", action="store_true", help="time kmodel run only")
    a = ap.parse_args(argv)
    if not (YOLO20 / "yolo.kmodel").is_file():
        print("cold_start: %s not found (../shared/fixtures beside the checkout)" % YOLO20, file=sys.stderr)
        return 2
    py = sys.executable
    run_cmd = [py, "-m", "host_tools", "kmodel", "run", str(YOLO20 / "yolo.kmodel"), "--input",
               str(YOLO20 / "dog.bmp"), "--json"]
    print("%-34s %-10s %16s %16s %16s" % ("clone", "command", "first wall/cpu", "warm wall/cpu", "first-warm"))
    cmds = [("kmodel run", run_cmd)]
    if not a.no_sim:
        cmds.append(("make sim", [py, "-m", "host_tools", "sim", "--out", "out/sim"]))
    with tempfile.TemporaryDirectory(prefix="cold-start-") as tmp:
        warmed = fresh_clone(tmp, "warmed")
        w, c = timed([py, "-m", "host_tools.kmodel.warm"] + sorted(str(p) for p in (warmed / "models").glob("*.kmodel")),
                     warmed)
        print("%-34s %-10s %16s   (install time, once)" % ("after the install step's warm-up", "warm-up",
                                                         "%.1f/%.1f s" % (w, c)))
        for name, cmd in cmds:
            # without the warm-up, each command in a clone of its own: the other's compiling would hide its own
            for label, clone in (("after the install step's warm-up", warmed),
                                 ("without it (before)", fresh_clone(tmp, "cold-" + name.replace(" ", "-")))):
                first = timed(cmd, clone)
                warm = timed(cmd, clone)
                print("%-34s %-10s %16s %16s %16s" % (label, name, "%.1f/%.1f s" % first, "%.1f/%.1f s" % warm,
                                                      "%+.1f/%+.1f s" % (first[0] - warm[0], first[1] - warm[1])))
    print("(aim: first - warm <= 3 s for kmodel run, <= 10 s for make sim, after the warm-up; wall times are "
          "inflated by other jobs on a shared machine, CPU times less so)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
