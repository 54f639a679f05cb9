"""Helpers for the deploy tests: small model manifests on disk, and a virtual Maix Bit process."""
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

from host_tools import manifest as mf

ROOT = Path(__file__).resolve().parents[1]


def make_model(folder, name, data: bytes, load="ram", kind="classifier", big_endian: bytes = None) -> Path:
    """Write <name>.kmodel (+ <name>_be.kmodel) and a valid manifest; return the manifest path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / (name + ".kmodel")).write_bytes(data)
    be_name = ""
    if big_endian is not None:
        be_name = name + "_be.kmodel"
        (folder / be_name).write_bytes(big_endian)
    m = mf.Manifest(
        name=name, kind=kind, kmodel=name + ".kmodel", kmodel_version=3,
        sha256=hashlib.sha256(data).hexdigest(), size=len(data),
        input={"w": 32, "h": 32, "c": 3, "format": "planar_u8"}, outputs=[{"shape": [10, 1, 1], "type": "f"}],
        labels=[str(i) for i in range(10)],
        memory={"main_mem": 0, "kpu_ram": 0, "weights": len(data), "heap": len(data)},
        fits={"full": True, "minimum": True}, load=load, big_endian=be_name,
        anchors=[1.0, 1.0] if kind == "detector" else [])
    return mf.save(folder / (name + ".json"), m)


def pattern(n: int, seed: int) -> bytes:
    """n bytes that differ per seed and per 4 KiB, so a misplaced sector shows."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(b"%d:%d" % (seed, i)).digest()
        i += 1
    return bytes(out[:n])


class VirtualBoardProcess:
    """`python -m host_tools board` as a subprocess; .port is the pty it serves."""

    def __init__(self, state, extra=()):
        self.state = Path(state)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "host_tools", "board", "--state", str(self.state)] + list(extra),
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        line = self.proc.stdout.readline()
        if "port" not in line:
            rest = self.proc.stdout.read() if self.proc.poll() is not None else ""
            raise RuntimeError("virtual board did not start: %r %s" % (line, rest))
        self.port = line.split()[-1]

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()

    def wait_for(self, predicate, timeout=20.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            time.sleep(0.05)
        return False
