"""Train-to-kmodel on user-like photo folders with the defaults only: wall and CPU time, validation figures.

Each set is written as JPEG folders like a user's (host_tools/pipeline/userlike.py, from what scikit-image ships),
then `python -m host_tools train --data DIR` runs in a fresh process with no other option, as a user runs it. Prints
per set: photos, wall time of the command (and its CPU time, user + sys, as the machine may be shared), the stages,
and the validation figures (float Keras, int8 LiteRT, kmodel on the KPU emulator). Exit 1 if a set misses its
target (classifier kmodel accuracy 0.9, detector kmodel mAP@0.5 0.6) or the command fails.

    .venv/bin/python bench/train_userlike.py [--keep DIR] [--only faces|objects|random|coins]
"""
import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from host_tools.pipeline import coin_photos, userlike  # noqa: E402

# name -> (builder, expected exit code, target kmodel figure or None)
SETS = {
    "faces": (lambda d: userlike.faces(d, per_class=70), 0, 0.9),          # lfw_subset: face vs not, 2 x 70
    "objects": (lambda d: userlike.objects(d, classes=3, per_class=60), 0, 0.9),   # 3 photos x 60 views
    "random": (None, 3, None),                                              # faces with shuffled labels
    "coins": (lambda d: coin_photos.write_folder(d, 150, fmt="voc"), 0, 0.6),   # detector: 150 VOC photos
}


def cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(name, data, out) -> dict:
    t0, c0 = time.monotonic(), cpu_children()
    p = subprocess.run([sys.executable, "-m", "host_tools", "train", "--data", str(data), "--out", str(out)],
                       cwd=ROOT, capture_output=True, text=True)
    wall, cpu = time.monotonic() - t0, cpu_children() - c0
    rep_path = out / (data.name + "_report.json")
    rep = json.loads(rep_path.read_text()) if rep_path.exists() else {}
    return {"name": name, "rc": p.returncode, "wall": wall, "cpu": cpu, "rep": rep,
            "err": p.stderr.strip().splitlines()[-1:] if p.returncode else []}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keep", help="write the sets and outputs here instead of a temporary folder")
    ap.add_argument("--only", action="append", choices=sorted(SETS))
    args = ap.parse_args(argv)
    tmp = None
    if args.keep:
        base = Path(args.keep)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bench-train-")
        base = Path(tmp.name)
    ok = True
    print("train --data DIR with the defaults, on user-like JPEG folders (wall s / CPU s user+sys of the command)")
    for name in args.only or list(SETS):
        build, want_rc, target = SETS[name]
        data = base / "data" / name
        if not data.exists():
            if build is None:       # random labels: the faces set, labels shuffled
                userlike.shuffled(userlike.faces(base / "data" / "faces_for_random", per_class=70), data)
            else:
                build(data)
        r = run(name, data, base / "out" / name)
        rep = r["rep"]
        val = rep.get("val", {})
        photos = rep.get("photos", {})
        n_tr = sum(photos.get("train", {}).values()) if isinstance(photos.get("train"), dict) else photos.get("train")
        n_va = sum(photos.get("val", {}).values()) if isinstance(photos.get("val"), dict) else photos.get("val")
        print("%-8s %s photos (%s train / %s val): exit %d, wall %.0f s, CPU %.0f s" % (
            name, (n_tr or 0) + (n_va or 0), n_tr, n_va, r["rc"], r["wall"], r["cpu"]))
        if val:
            epochs = "; epochs %s (best %s)" % (rep["epochs_run"], rep.get("best_epoch")) if "epochs_run" in rep else ""
            print("         validation %s: float %.3f, int8 %.3f, kmodel %.3f; chance %.3f%s" % (
                rep["metric"], val["float"], val["int8"], val["kmodel"], rep.get("chance", 0.0), epochs))
            print("         stages (s): %s" % ", ".join("%s %.0f" % kv for kv in rep.get("seconds", {}).items()))
        if r["err"]:
            print("         %s" % r["err"][0])
        good = r["rc"] == want_rc and (target is None or val.get("kmodel", 0) >= target)
        if not good:
            print("         MISSED: expected exit %d%s" % (want_rc, "" if target is None else
                                                          " and kmodel >= %.2f" % target))
        ok &= good
    if tmp is not None:
        tmp.cleanup()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
