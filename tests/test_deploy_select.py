"""Which models a deploy puts on the board and which one the app runs (deploy --models/--classifier/--detector)."""
import json

import pytest

from host_tools.__main__ import main as cli
from host_tools.deploy import deploy, layout
from test_deploy_support import make_model, pattern


@pytest.fixture
def demo(tmp_path):
    d = tmp_path / "demo"
    make_model(d, "digits", pattern(9000, 1))
    make_model(d, "faces", pattern(9000, 2), kind="detector")
    return d


def test_a_user_classifier_gets_the_demo_detector(tmp_path, demo):
    user = tmp_path / "out" / "flowers"
    make_model(user, "flowers", pattern(5000, 3))
    said = []
    got = deploy.select_models([user], demo_dir=demo, log=said.append)
    assert [p.stem for p in got] == ["flowers", "faces"]
    assert any("the app runs classifier flowers" in s for s in said)
    assert any("detector: faces, the demo" in s for s in said)


def test_several_of_a_kind_say_which_runs_and_the_choice_comes_first(tmp_path, demo):
    user = tmp_path / "m"
    for i, n in enumerate(("apples", "birds")):
        make_model(user, n, pattern(5000, 10 + i))
    said = []
    got = deploy.select_models([user], demo_dir=demo, log=said.append)
    assert [p.stem for p in got] == ["apples", "faces", "birds"]
    assert any("runs classifier apples (also in flash: birds; choose with --classifier NAME)" in s for s in said)
    got = deploy.select_models([user], classifier="birds", demo_dir=demo, log=said.append)
    assert [p.stem for p in got] == ["birds", "faces", "apples"]
    with pytest.raises(layout.PlanError, match="--classifier cats: not among the classifiers.*apples, birds"):
        deploy.select_models([user], classifier="cats", demo_dir=demo, log=said.append)
    with pytest.raises(layout.PlanError, match="--models .*nowhere: no such folder"):
        deploy.select_models([tmp_path / "nowhere"], demo_dir=demo)
    (tmp_path / "empty").mkdir()
    with pytest.raises(layout.PlanError, match="empty: no model manifests"):
        deploy.select_models([tmp_path / "empty"], demo_dir=demo)


def test_flash_plan_orders_models_json_so_the_app_runs_the_choice(tmp_path, demo, capsys, monkeypatch):
    monkeypatch.setattr(deploy, "DEMO_MODELS", demo)
    user = tmp_path / "m"
    for i, n in enumerate(("apples", "birds")):
        make_model(user, n, pattern(5000, 10 + i))
    out = tmp_path / "plan"
    assert cli(["flash", "plan", "--models", str(user), "--classifier", "birds", "--out", str(out),
                "--firmware-size", "0"]) == 0
    entries = json.loads((out / "models.json").read_text())["models"]
    firsts = {}
    for e in entries:                      # the app runs the first model of each kind
        firsts.setdefault(e["kind"], e["name"])
    assert firsts == {"classifier": "birds", "detector": "faces"}
    assert "the app runs classifier birds" in capsys.readouterr().out


def test_make_deploy_passes_models_and_the_choice_to_deploy():
    """`make deploy MODELS=... CLASSIFIER=... DETECTOR=...` is `deploy --models ... --classifier ... --detector ...`."""
    import shlex
    import subprocess
    from host_tools.__main__ import parser
    from test_deploy_support import ROOT
    r = subprocess.run(["make", "-s", "-n", "deploy", "MODELS=out/train/a out/train/b", "CLASSIFIER=birds",
                        "DETECTOR=coins", "PORT=/dev/pts/9"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    line = [ln for ln in r.stdout.replace("\\\n", " ").splitlines() if "host_tools deploy" in ln][-1]
    argv = shlex.split(line)
    args = parser("deploy").parse_args(argv[argv.index("deploy") + 1:])
    assert (args.models, args.classifier, args.detector, args.port) == \
        (["out/train/a", "out/train/b"], "birds", "coins", "/dev/pts/9")


# ---- a broken or missing manifest is a refusal naming the file: never dropped, never replaced by a demo ----

def broken_folders(tmp_path):
    """(folder, the file the refusal must name) for each way a model folder can be broken."""
    cases = []
    bad_json = tmp_path / "badjson"
    make_model(bad_json, "flowers", pattern(5000, 3))
    (bad_json / "birds.json").write_text('{"name": "birds", "kmodel": "birds.km')      # cut short
    cases.append((bad_json, bad_json / "birds.json", "not a readable JSON file"))
    bad_field = tmp_path / "badfield"
    p = make_model(bad_field, "flowers", pattern(5000, 3))
    d = json.loads(p.read_text())
    d["input"]["w"] = "wide"
    p.write_text(json.dumps(d))
    cases.append((bad_field, p, "input"))
    orphan = tmp_path / "orphan"
    make_model(orphan, "flowers", pattern(5000, 3))
    (orphan / "birds.kmodel").write_bytes(pattern(4000, 4))                          # its manifest is missing
    cases.append((orphan, orphan / "birds.kmodel", "no manifest names this kmodel"))
    return cases


@pytest.mark.parametrize("command", [["flash", "plan"], ["deploy", "--port", "/dev/null-not-a-port"], ["sim"]])
def test_broken_or_missing_manifest_is_refused_naming_the_file(tmp_path, capsys, command):
    for folder, culprit, why in broken_folders(tmp_path):
        out = tmp_path / ("out_" + folder.name)
        rc = cli(command + ["--models", str(folder), "--out", str(out)])
        err = capsys.readouterr().err.strip()
        assert rc == 1, err
        assert err.startswith("error: %s" % culprit) and why in err and "\n" not in err, err
        assert not out.exists() or not any(out.iterdir())          # nothing written, no other model run instead
