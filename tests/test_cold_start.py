"""The install step's kernel warm-up (host_tools.kmodel.warm, run by the Makefile's venv step) leaves numba's
cache beside the emulator's sources for every module with compiled kernels, so a new user's first run loads
machine code instead of compiling it (bench/cold_start.py times it)."""
import subprocess
import sys

from host_tools.kmodel import warm
from tests.conftest import ROOT

KERNEL_MODULES = ("kpu_kernels", "kpu_ram", "cpu_layers")


def test_warm_caches_every_kernel_module():
    assert warm.warm(sorted((ROOT / "models").glob("*.kmodel"))) >= 2
    cache = ROOT / "host_tools" / "kmodel" / "__pycache__"
    for mod in KERNEL_MODULES:
        assert list(cache.glob(mod + ".*.nbi")), "no numba cache index for %s in %s" % (mod, cache)


def test_makefile_venv_step_warms_the_kernels():
    text = (ROOT / "Makefile").read_text()
    venv_rule = text[text.index("$(STAMP): pyproject.toml"):text.index("touch $@")]
    assert "-m host_tools.kmodel.warm models/*.kmodel" in venv_rule


def test_warm_names_a_missing_model():
    r = subprocess.run([sys.executable, "-m", "host_tools.kmodel.warm", "nowhere.kmodel"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.startswith("error: ") and "nowhere.kmodel" in r.stderr
