"""The page's file tree, editor, run and models panes: the raw-REPL link and the functions `fs` uses.

Each action opens the link (which stops a running main.py, as `fs` does), does its work with deploy.board_fs (what
`fs` calls) and leaves the raw REPL, under one lock: the board has one serial line (the REPL pane's terminal,
terminal.py, takes it too). On the virtual board, reading (the tree, a file, models.json) goes to its file systems
directly, through the simulated firmware's own DeviceFs, so the app runs on; what changes files or runs code goes
over the REPL and stops the app, as it must on a real board. Paths are checked by board_fs.board_path and may not
climb out with "..": nothing outside /flash and /sd is reachable.
"""
import json
import os
import threading

from host_tools.deploy import board_fs, fs_cli
from host_tools.deploy.link import DeviceError, Link

RUN_TIMEOUT_S = 600


def safe_path(p: str) -> str:
    p = board_fs.board_path(str(p))
    if any(part in ("..", ".") for part in p.split("/")):
        raise ValueError("%s: '..' and '.' are not allowed in a board path" % p)
    return p


def fs_listing(fs, root) -> list:
    """board_fs.listing's answer, [(name, size, is_dir)], read from a sim.fs.DeviceFs."""
    out = []
    for name in fs.listdir(root):
        st = fs.stat(root + "/" + name)
        out.append((name, st[6], st[0] & 0x4000 != 0))
    return out


class BoardFiles:
    def __init__(self, port, tool="mpremote", fs=None):
        self.port, self.tool = port, tool
        self.fs = fs            # the virtual board's sim.fs.DeviceFs: reads go there and the app runs on
        self.lock = threading.Lock()

    def _with_link(self, fn, reset=None):
        with self.lock:
            link = Link(self.port, self.tool)
            try:
                return fn(link)
            finally:
                link.close(reset=reset)

    def tree(self) -> dict:
        """{"/flash": [(name, size, is_dir)], "/sd": [...] or None when no card is in}."""
        if self.fs is not None:
            return {"/" + m: fs_listing(self.fs, "/" + m) if m in self.fs.mounts() else None for m in ("flash", "sd")}

        def work(link):
            roots = link.eval("uos.listdir('/')", setup="import uos")
            out = {}
            for root in ("flash", "sd"):
                out["/" + root] = board_fs.listing(link, "/" + root) if root in roots else None
            return out
        return self._with_link(work)

    def read(self, path) -> bytes:
        path = safe_path(path)
        if self.fs is not None:
            try:
                return self.fs.read_bytes(path)
            except OSError as e:
                raise board_fs.FsError("%s: %s" % (path, os.strerror(e.errno))) from None
        return self._with_link(lambda link: board_fs.read_file(link, path))

    def write(self, path, data: bytes) -> None:
        """mpy-cross 1.11 first for a .py (MpyError names the line), then fs's verified write."""
        path = safe_path(path)
        fs_cli.check_device_py(path, data)
        self._with_link(lambda link: board_fs.write_file(link, path, data))

    def create(self, path) -> None:
        """A new empty file; refused when it exists."""
        path = safe_path(path)
        self._with_link(lambda link: board_fs.new_file(link, path))

    def rename(self, old, new) -> None:
        old, new = safe_path(old), safe_path(new)
        self._with_link(lambda link: board_fs._exec(link, "import uos\nuos.rename(%r,%r)" % (old, new), old,
                                                    {board_fs.ENOENT: "no such file %s"}))

    def remove(self, path) -> None:
        path = safe_path(path)
        self._with_link(lambda link: board_fs.remove(link, path))

    def run(self, path, out) -> None:
        """Run a board file as `fs run` does, its output handed to out(bytes) as it comes."""
        path = safe_path(path)
        self._with_link(lambda link: board_fs.run_file(link, path, RUN_TIMEOUT_S, out))

    def reset(self) -> None:
        """machine.reset(): the board starts again as at power-up (boot.py, then main.py)."""
        self._with_link(lambda link: None, reset="hard")

    def stop(self) -> None:
        """Ctrl-C: entering the raw REPL stops a running main.py; leaving it gives the friendly REPL."""
        self._with_link(lambda link: None)

    def models(self) -> list:
        """models.json's entries: /sd's first (the current directory when a card is in), then /flash's."""
        for where in ("/sd", "/flash"):
            try:
                text = self.read(where + "/models.json")
            except (board_fs.FsError, DeviceError):     # not there: the board's other file system
                continue
            return {"file": where + "/models.json", "models": json.loads(text.decode("utf-8")).get("models", [])}
        return {"file": None, "models": []}
