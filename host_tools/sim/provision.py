"""Setting a virtual board up like a deployed Maix Bit: app files, kmodels and the device's models.json.

App files: device/boot.py, main.py and every device/lib/*.py flattened into the root of the file system the
firmware boots from (/sd when the board has a card, else /flash: SPIFFS has no directories, and MaixPy runs
boot.py/main.py from its current directory). Models: without a card they go into the 16 MiB flash image at the
offsets the deploy planner gives them (host_tools.k210.flash.place, so the simulation and `make deploy` agree);
with a card they are copied to /sd. models.json is written next to main.py with host_tools.manifest.
"""
import shutil
from pathlib import Path

from host_tools import manifest as mf
from host_tools.k210 import flash
from host_tools.kmodel.adopt import Facts, add


def check_app(device_dir):
    if not (Path(device_dir) / "main.py").is_file():
        raise FileNotFoundError("%s: no main.py (the device app folder)" % device_dir)


def install_app(board, device_dir="device") -> list:
    """Copy the device app onto the board; returns the device paths written."""
    device_dir = Path(device_dir)
    check_app(device_dir)
    root, mount = (board.sd_root, "/sd") if board.sd_root is not None else (board.flash_root, "/flash")
    files = sorted(device_dir.glob("*.py")) + sorted((device_dir / "lib").glob("*.py"))
    seen = {}
    out = []
    for f in files:
        if f.name in seen:
            raise ValueError("%s and %s flatten to the same name %s on the board" % (seen[f.name], f, f.name))
        seen[f.name] = f
        shutil.copyfile(f, root / f.name)
        out.append("%s/%s" % (mount, f.name))
    return out


def install_models(board, manifest_paths) -> str:
    """Put the kmodels where the device will find them and write models.json; returns its text."""
    manifest_paths = [Path(p) for p in manifest_paths]
    if board.sd_root is None:
        ms = [(p, mf.load(p)) for p in manifest_paths]
        files = {m.name: mf.flash_file(p, m) for p, m in ms}
        offsets = flash.place([(m.name, files[m.name].stat().st_size) for _, m in ms])
        stored = {m.name: files[m.name].read_bytes() for _, m in ms}
        for _, m in ms:
            board.write_flash(offsets[m.name], stored[m.name])
        text = mf.device_manifest([mf.device_entry(m, flash_offset=offsets[m.name], stored=stored[m.name])
                                   for _, m in ms])
        (board.flash_root / "models.json").write_text(text)
        _put(board.flash_root, mf.board_files(manifest_paths))
        return text
    entries = []
    for path in manifest_paths:
        m = mf.load(path)
        if m.load == "flash":
            raise ValueError("%s: load 'flash' needs the model in the flash image; use a board without an SD "
                             "card for it" % m.name)
        shutil.copyfile(mf.kmodel_path(path, m), board.sd_root / m.kmodel)
        entries.append(mf.device_entry(m, path="/sd/" + m.kmodel))
    text = mf.device_manifest(entries)
    (board.sd_root / "models.json").write_text(text)
    _put(board.sd_root, mf.board_files(manifest_paths))
    return text


def _put(root, files):
    """Files that go beside models.json (labels files), as deploy copies them."""
    for name, data in files.items():
        (root / name).write_bytes(data)


def demo_manifests(models_dir="models") -> list:
    """The model manifests in models_dir (classifier first); a broken manifest is a ManifestError naming it, never
    skipped (the simulation would otherwise run some other model without a word)."""
    ms = [(0 if mf.load(p).kind == "classifier" else 1, p) for p in mf.find(models_dir)]
    return [p for _, p in sorted(ms)]


# Fixture models used until models/ holds the demo kmodels: real files from ../shared/fixtures.
VOC = ["aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable", "dog",
       "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor"]
YOLO20_ANCHORS = [1.08, 1.19, 3.42, 4.41, 6.63, 11.38, 9.42, 5.11, 16.62, 10.52]


FIXTURE_MODELS = {      # name: (path under the fixtures folder, what the file cannot say: adopt.Facts)
    "mnist": ("maixpy-mnist/mnist.kmodel", Facts("classifier", tuple(str(i) for i in range(10)))),
    "yolo20": ("nncase-yolo20/yolo.kmodel", Facts("detector", tuple(VOC), tuple(YOLO20_ANCHORS), 0.5, 0.2)),
    "yolo20v4": ("nncase-v4-yolo20/yolo.kmodel", Facts("detector", tuple(VOC), tuple(YOLO20_ANCHORS), 0.5, 0.2)),
}


def fixture_manifests(fixtures_dir, out_dir, names=("mnist", "yolo20")) -> list:
    """Manifests (written to out_dir, kmodels copied beside them, as `model add` makes them) for fixture models
    (FIXTURE_MODELS; by default the mnist classifier and the yolo20 detector); [] when the fixtures are absent."""
    fixtures_dir = Path(fixtures_dir)
    return [add(fixtures_dir / FIXTURE_MODELS[n][0], out_dir, n, FIXTURE_MODELS[n][1]) for n in names
            if (fixtures_dir / FIXTURE_MODELS[n][0]).is_file()]
