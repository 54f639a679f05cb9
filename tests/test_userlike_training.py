"""Must show (make test-slow): `train --data DIR` with the defaults only, on small user-like JPEG folders built from
what scikit-image ships, gives a kmodel with validation accuracy >= 0.9; random labels exit 3. Timings printed."""
import json
import time

import pytest

from host_tools.__main__ import main
from host_tools.pipeline import userlike

pytestmark = pytest.mark.heavy


def _train(data, out, capsys):
    t0 = time.monotonic()
    rc = main(["train", "--data", str(data), "--out", str(out)])
    wall = time.monotonic() - t0
    cap = capsys.readouterr()
    rep = json.loads((out / (data.name + "_report.json")).read_text())
    with capsys.disabled():
        print("\n%s: exit %d in %.0f s wall; validation float %.3f int8 %.3f kmodel %.3f; epochs %d (best %d); "
              "stages %s" % (data.name, rc, wall, rep["val"]["float"], rep["val"]["int8"], rep["val"]["kmodel"],
                             rep["epochs_run"], rep["best_epoch"], rep["seconds"]))
    return rc, rep, cap


@pytest.mark.parametrize("kind", ["faces", "objects"])
def test_defaults_learn_a_small_user_set(tmp_path, capsys, kind):
    if kind == "faces":
        data = userlike.faces(tmp_path / "faces", per_class=70)          # 2 classes x 70 photos
    else:
        data = userlike.objects(tmp_path / "objects", classes=3, per_class=60)   # 3 classes x 60 photos
    rc, rep, _ = _train(data, tmp_path / "out", capsys)
    assert rc == 0 and rep["useful"]
    assert rep["val"]["kmodel"] >= 0.9, rep["val"]
    assert (tmp_path / "out" / (data.name + ".kmodel")).is_file()


def test_random_labels_exit_3_with_the_message(tmp_path, capsys):
    data = userlike.shuffled(userlike.faces(tmp_path / "faces", per_class=70), tmp_path / "random")
    rc, rep, cap = _train(data, tmp_path / "out", capsys)
    assert rc == 3 and not rep["useful"]
    assert "the model is no better than chance" in cap.err
    assert not (tmp_path / "out" / "random.json").exists()
