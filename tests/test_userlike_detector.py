"""Must show (make test-slow): `train --data DIR` with the defaults only, on a user-like detection folder (150 coin
photos as JPEG + Pascal VOC XML, host_tools/pipeline/coin_photos.py), gives a kmodel with validation mAP@0.5 >= 0.6.
Run as a user runs it: a fresh process, in the folder's parent, no option but --data. Timings printed."""
import json
import resource
import subprocess
import sys
import time

import pytest

from host_tools.pipeline import coin_photos

pytestmark = pytest.mark.heavy


def _cpu_children():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def test_detector_learns_a_small_user_set_with_the_defaults(tmp_path, capsys):
    data = tmp_path / "coins"
    boxes = coin_photos.write_folder(data, 150, seed=7, fmt="voc")
    t0, c0 = time.monotonic(), _cpu_children()
    p = subprocess.run([sys.executable, "-m", "host_tools", "train", "--data", str(data)], cwd=tmp_path,
                       capture_output=True, text=True)
    wall, cpu = time.monotonic() - t0, _cpu_children() - c0
    out = tmp_path / "out" / "train" / "coins"
    rep = json.loads((out / "coins_report.json").read_text())
    with capsys.disabled():
        print("\ncoins (150 photos, %d boxes): exit %d in %.0f s wall, %.0f s CPU; validation mAP@0.5 float %.3f "
              "int8 %.3f kmodel %.3f; epochs %s (best %s); stages %s"
              % (boxes, p.returncode, wall, cpu, rep["val"]["float"], rep["val"]["int8"], rep["val"]["kmodel"],
                 rep.get("epochs_run"), rep.get("best_epoch"), rep["seconds"]))
    assert p.returncode == 0, p.stderr[-3000:]
    assert rep["kind"] == "detector" and rep["metric"] == "map50" and rep["labels"] == ["coin"]
    assert rep["val"]["kmodel"] >= 0.6, rep["val"]
    assert (out / "coins.kmodel").is_file() and (out / "coins.json").is_file()
