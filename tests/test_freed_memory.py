"""Training processes keep freed memory (host_tools/pipeline/freed_memory.py): a step's multi-MB tensors, freed and
allocated again, must not fault their pages in again each time."""
import subprocess
import sys

import pytest

CHILD = r"""
import resource, sys, threading
import numpy as np
if sys.argv[1] == "tuned":
    from host_tools.pipeline.freed_memory import keep_freed_memory
    assert keep_freed_memory()
def steps(n):
    for _ in range(n):
        a = [np.ones(2 << 20, np.float32) for _ in range(4)]     # a step's tensors: four 8 MiB blocks
        del a
def run():
    steps(3)                                                    # the heap grows once
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    steps(20)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
t = threading.Thread(target=run)                                # TensorFlow's threads have arenas of their own
t.start()
t.join()
run()
"""


def _faults(mode):
    out = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True)
    return sum(int(n) for n in out.stdout.split())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_training_processes_do_not_fault_freed_tensors_in_again():
    plain, tuned = _faults("plain"), _faults("tuned")
    # glibc's default trims the freed 32 MiB (2,048 pages a block) back to the kernel: seen 30,000-50,000 faults
    assert plain > 10_000, plain
    assert tuned < 1_000, tuned


def test_every_tensorflow_command_keeps_freed_memory(monkeypatch):
    from host_tools.pipeline import cli, freed_memory, quiet
    called = []
    monkeypatch.setattr(freed_memory, "keep_freed_memory", lambda: called.append(1) or True)
    monkeypatch.setattr(quiet, "import_tensorflow", lambda: None)
    run = cli._with_tensorflow(lambda args: 7)
    assert run(type("A", (), {"verbose": False})()) == 7 and called == [1]
