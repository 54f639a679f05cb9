"""The page's file tree, editor, run, REPL and models panes: the raw-REPL link and the functions `fs` uses.

Each action opens the link (which stops a running main.py, as `fs` does), does its work with deploy.board_fs (what
`fs` calls) and leaves the raw REPL, under one lock: the board has one serial line. Paths are checked by
board_fs.board_path and may not climb out with "..": nothing outside /flash and /sd is reachable.
"""
import ast
import json
import threading

from host_tools.deploy import board_fs, fs_cli
from host_tools.deploy.link import DeviceError, Link

RUN_TIMEOUT_S = 600


def safe_path(p: str) -> str:
    p = board_fs.board_path(str(p))
    if any(part in ("..", ".") for part in p.split("/")):
        raise ValueError("%s: '..' and '.' are not allowed in a board path" % p)
    return p


class BoardFiles:
    def __init__(self, port, tool="mpremote"):
        self.port, self.tool = port, tool
        self.lock = threading.Lock()

    def _with_link(self, fn, reset=None):
        with self.lock:
            link = Link(self.port, self.tool)
            try:
                return fn(link)
            finally:
                link.close(reset=reset)

    def drain_while_idle(self, stop: threading.Event) -> None:
        """Read and drop what the board prints while no action holds the link (the virtual board's console
        already reaches the page): a pty nobody reads fills up, and the firmware then waits on every write."""
        import serial
        line = serial.Serial(self.port, timeout=0)
        try:
            while not stop.is_set():
                if self.lock.acquire(timeout=0.2):
                    try:
                        line.read(65536)
                    finally:
                        self.lock.release()
                stop.wait(0.05)
        finally:
            line.close()

    def tree(self) -> dict:
        """{"/flash": [(name, size, is_dir)], "/sd": [...] or None when no card is in}."""
        def work(link):
            roots = link.eval("uos.listdir('/')", setup="import uos")
            out = {}
            for root in ("flash", "sd"):
                out["/" + root] = board_fs.listing(link, "/" + root) if root in roots else None
            return out
        return self._with_link(work)

    def read(self, path) -> bytes:
        path = safe_path(path)
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

    def repl(self, line: str, out) -> None:
        """One REPL line in the board's __main__: an expression's value is printed, as the friendly REPL does."""
        try:
            tree = ast.parse(line, "<stdin>", "exec")
        except SyntaxError:
            tree = None
        code = line
        if tree is not None and len(tree.body) == 1 and isinstance(tree.body[0], ast.Expr):
            code = "_ = (%s)\nif _ is not None:\n    print(repr(_))\n" % line.strip()
        def work(link):
            err = link.exec_follow(code, RUN_TIMEOUT_S, out)
            if err:
                raise DeviceError(code, err)
        self._with_link(work)

    def reset(self) -> None:
        """machine.reset(): the board starts again as at power-up (boot.py, then main.py)."""
        self._with_link(lambda link: None, reset="hard")

    def stop(self) -> None:
        """Ctrl-C: entering the raw REPL stops a running main.py; leaving it gives the friendly REPL."""
        self._with_link(lambda link: None)

    def models(self) -> list:
        """models.json's entries with each model's manifest beside it on the board, where it has one."""
        def work(link):
            for where in ("/sd", "/flash"):
                try:
                    text = board_fs.read_file(link, where + "/models.json")
                except (board_fs.FsError, DeviceError):     # not there: the board's other file system
                    continue
                entries = json.loads(text.decode("utf-8")).get("models", [])
                return {"file": where + "/models.json", "models": entries}
            return {"file": None, "models": []}
        return self._with_link(work)
