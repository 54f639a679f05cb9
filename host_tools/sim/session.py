"""Session: one run of the MaixPy firmware on a Board, executing device code in CPython.

Device code sees only MaixPy: its `import` goes through importer.DeviceImporter, `open` goes to the board's
file systems, `print` to the board's UART (with MicroPython's \\r\\n). boot() does what the firmware does at
power-up: _boot.py (chdir to /sd when a card is in, else /flash; sys.path; 200 ms pause), then boot.py, then
main.py from the current directory, printing a traceback for an uncaught exception and going on, as
pyexec_file_if_exists does. machine.reset() (or a watchdog) restarts with fresh firmware state on the same
board. interrupt() raises KeyboardInterrupt at the device code's next call into a simulated module.
"""
import builtins as host_builtins
import traceback
from dataclasses import dataclass

from host_tools.sim import syntax
from host_tools.sim.firmware.runtime import BoardReset, Runtime, StopRun
from host_tools.sim.importer import DeviceImporter

HIDDEN_BUILTINS = ("breakpoint", "copyright", "credits", "license", "exit", "quit", "aiter", "anext")


@dataclass
class BootResult:
    stopped: str = None      # the runner's stop reason, or None when main.py returned
    resets: int = 0          # machine.reset()/watchdog restarts during this boot
    error: BaseException = None   # the last uncaught exception of boot.py/main.py (also printed)


class Session:
    def __init__(self, board):
        self.board = board
        self._fresh()

    def _fresh(self):
        self.rt = Runtime(self.board)
        self.fw_modules = {}
        self.device_modules = {}
        self.device_files = set()
        self.importer = DeviceImporter(self)
        self.builtins = self._builtins()
        self.main_globals = {"__name__": "__main__", "__builtins__": self.builtins}

    # ---- the device's builtins ----
    def _builtins(self) -> dict:
        b = {k: v for k, v in vars(host_builtins).items() if k not in HIDDEN_BUILTINS}
        b["__import__"] = self.importer
        b["open"] = self.open
        b["print"] = self.print
        b["execfile"] = self.exec_file
        b["input"] = self._input
        b["help"] = lambda *a: self.rt.write("Welcome to MaixPy (simulated)\r\n")
        return b

    def _input(self, prompt=""):
        self.rt.write(str(prompt))
        raise EOFError()

    def print(self, *args, sep=" ", end="\n", file=None):
        text = sep.join(str(a) for a in args) + end
        if file is not None:
            file.write(text)
            return
        self.rt.checkpoint()
        self.rt.write(text.replace("\r\n", "\n").replace("\n", "\r\n"))

    def open(self, path, mode="r", buffering=-1, encoding=None, **kw):
        self.rt.checkpoint()
        host = self.rt.fs.host_path_for_open(path, mode)
        if "b" in mode:
            return open(host, mode)
        return open(host, mode, encoding="utf-8", newline="")

    def sys_path(self) -> list:
        sysmod = self.fw_modules.get("sys")
        return sysmod.path if sysmod is not None else self._default_path()

    def _default_path(self) -> list:
        return ["", "."] + (["/sd"] if self.board.sd_root is not None else []) + ["/flash"]

    # ---- running code ----
    def _compile(self, source, filename):
        if isinstance(source, (bytes, bytearray)):
            source = bytes(source).decode("utf-8")
        self.device_files.add(filename)
        syntax.check(source, filename)     # the board's compiler first: no f-strings, no walrus
        return compile(source, filename, "exec", dont_inherit=True)

    def exec(self, source, filename: str = "<stdin>") -> None:
        """Run device source in the REPL's namespace (__main__); exceptions propagate to the caller."""
        code = self._compile(source, filename)
        exec(code, self.main_globals)

    def exec_file(self, path: str) -> None:
        self.exec(self.rt.fs.read_bytes(path), path)

    def import_file(self, name: str, path: str):
        import types
        mod = types.ModuleType(name)
        mod.__file__ = path
        mod.__dict__["__builtins__"] = self.builtins
        self.device_modules[name] = mod
        try:
            exec(self._compile(self.rt.fs.read_bytes(path), path), mod.__dict__)
        except BaseException:
            self.device_modules.pop(name, None)
            raise
        return mod

    def module(self, name: str):
        """A firmware module as device code would import it (for tests and tools)."""
        return self.importer(name)

    def interrupt(self) -> None:
        """Ctrl-C: KeyboardInterrupt at the device code's next call into a simulated module."""
        if self.rt.kbd_intr_char != -1:
            self.rt.interrupt_pending = True

    def sys_exit(self, code=0):
        raise SystemExit(code)

    # ---- tracebacks as MicroPython prints them ----
    # CPython picks subclasses MicroPython does not have (OSError(2) is a FileNotFoundError): print the base.
    MP_NAMES = {RecursionError: "RuntimeError", ModuleNotFoundError: "ImportError", UnicodeDecodeError: "UnicodeError",
                UnicodeEncodeError: "UnicodeError"}

    def mp_type_name(self, e: BaseException) -> str:
        t = type(e)
        if isinstance(e, OSError) and t.__module__ == "builtins":
            return "OSError"
        return self.MP_NAMES.get(t, t.__name__)

    def format_exception(self, e: BaseException) -> str:
        lines = ["Traceback (most recent call last):"]
        for fr in traceback.extract_tb(e.__traceback__):
            if fr.filename in self.device_files:
                lines.append('  File "%s", line %d, in %s' % (fr.filename, fr.lineno, fr.name))
        msg = str(e)
        name = self.mp_type_name(e)
        lines.append("%s: %s" % (name, msg) if msg else name)
        return "\r\n".join(lines) + "\r\n"

    def print_exception(self, e, file=None):
        text = self.format_exception(e)
        if file is not None:
            file.write(text)
        else:
            self.rt.write(text)

    # ---- power-up ----
    def _run_script(self, name: str):
        fs = self.rt.fs
        if not fs.is_file(name):
            return None
        try:
            self.exec(fs.read_bytes(name), name)
        except (StopRun, BoardReset):
            raise
        except SystemExit:
            return None
        except BaseException as e:        # KeyboardInterrupt included: printed, then on to the next script
            self.print_exception(e)
            return e
        return None

    def _power_up(self) -> BaseException:
        rt = self.rt
        sysmod = self.importer("sys")
        if self.board.sd_root is not None:
            rt.fs.chdir("/sd")
            sysmod.path[:] = ["", ".", "/sd", "/flash"]
        else:
            rt.fs.chdir("/flash")
            sysmod.path[:] = ["", ".", "/flash"]
        rt.write("[MaixPy] init end\r\n")
        rt.sleep_us(200_000)
        err = self._run_script("boot.py")
        err = self._run_script("main.py") or err
        return err

    def boot(self, max_resets: int = 20) -> BootResult:
        """Power the board up and run boot.py then main.py until main.py ends or the runner stops it."""
        result = BootResult()
        while True:
            try:
                result.error = self._power_up()
                return result
            except StopRun as s:
                result.stopped = str(s) or "stopped"
                return result
            except BoardReset:
                result.resets += 1
                if result.resets > max_resets:
                    raise RuntimeError("the board reset itself %d times in a row (machine.reset() or watchdog)"
                                       % result.resets)
                stop_check = self.rt.stop_check
                self._fresh()
                self.rt.stop_check = stop_check   # the board clock keeps running: one timeline per run

    # ---- what the board holds now (tests, runner) ----
    def loaded_models(self) -> int:
        kpu = self.fw_modules.get("KPU")
        return 0 if kpu is None else sum(1 for s in kpu._slots if s.live)
