"""Session: one run of the MaixPy firmware on a Board, executing device code in CPython.

Device code sees only MaixPy: its `import` goes through importer.DeviceImporter, `open` goes to the board's
file systems, `print` to the board's UART (with MicroPython's \\r\\n). boot() does what the chip and the firmware
do at power-up:
- the K210 ROM samples IO16 (the BOOT key) at reset: held low, it starts its ISP download mode and waits for
  kflash; MaixPy never runs, nothing appears on the REPL (BootResult.isp);
- maixpy_main.c mounts /flash and the SD card (the card, when present, becomes the current directory), runs the
  frozen _boot.py (frozen_boot), then boot.py and main.py from the current directory only, printing a traceback
  for an uncaught exception and going on, as pyexec_file_if_exists does; with a card in, /flash's scripts never
  run.
machine.reset() (or a watchdog) restarts with fresh firmware state on the same board, through the ROM again.
interrupt() raises KeyboardInterrupt at the device code's next call into a simulated module. A BoardCrash (the
firmware would run freed memory) ends the run; it is printed and kept in BootResult.crash.
"""
import builtins as host_builtins
import traceback
from dataclasses import dataclass

from host_tools.k210.startup import COVER_PREFIX, IDE_WAIT_MS, SCRIPTS, WELCOME_MARK
from host_tools.sim import syntax
from host_tools.sim.firmware.runtime import BoardCrash, BoardReset, Runtime, StopRun
from host_tools.sim.importer import DeviceImporter

HIDDEN_BUILTINS = ("breakpoint", "copyright", "credits", "license", "exit", "quit", "aiter", "anext")

# What _boot.py writes as main.py into the current directory (the card's, when one is in) when it has none: on
# the board Sipeed's welcome script (it paints a welcome on the LCD and returns). This stand-in does the same and
# carries the mark deploy recognises the firmware's by.
WELCOME_MAIN = """# written by _boot.py when this directory had no main.py (simulator's stand-in for Sipeed's welcome script)
import lcd
lcd.init()
lcd.clear((255, 0, 0))
lcd.draw_string(92, 116, "%s", lcd.WHITE, lcd.RED)
""" % WELCOME_MARK


@dataclass
class BootResult:
    stopped: str = None      # the runner's stop reason, or None when main.py returned
    resets: int = 0          # machine.reset()/watchdog restarts during this boot
    error: BaseException = None   # the last uncaught exception of boot.py/main.py (also printed)
    isp: bool = False        # BOOT was held at reset: the ROM's ISP mode, no MaixPy
    crash: str = None        # what made the firmware run freed memory, when it did


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
        """(code, bytes of bytecode on the board)."""
        if isinstance(source, (bytes, bytearray)):
            source = bytes(source).decode("utf-8")
        self.device_files.add(filename)
        size = syntax.check(source, filename)     # the board's compiler first: no f-strings, no walrus
        return compile(source, filename, "exec", dont_inherit=True), size

    def exec(self, source, filename: str = "<stdin>") -> None:
        """Run device source in the REPL's namespace (__main__); exceptions propagate to the caller."""
        code, _ = self._compile(source, filename)
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
            code, size = self._compile(self.rt.fs.read_bytes(path), path)
            self.rt.gc.permanent(size)     # an imported module's code stays on the GC heap
            exec(code, mod.__dict__)
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
            if fr.filename in self.device_files or fr.filename == "<string>":   # "<string>": exec() of device code
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
    def run_script(self, name: str):
        """pyexec_file_if_exists: run a script of the current directory; returns its uncaught exception (printed)."""
        fs = self.rt.fs
        if not fs.is_file(name):
            return None
        try:
            self.exec(fs.read_bytes(name), name)
        except (StopRun, BoardReset, BoardCrash):
            raise
        except SystemExit:
            return None
        except BaseException as e:        # KeyboardInterrupt included: printed, then on to the next script
            self.print_exception(e)
            return e
        return None

    def frozen_boot(self) -> None:
        """The frozen _boot.py (builtin_py/_boot.py): current directory and sys.path by whether a card is in, the
        200 ms pause for the IDE, a main.py written where there is none, /sd/cover.boot.py and cover.main.py
        copied over /flash's (then machine.reset()) when they differ. (The IDE mode file is not modelled.)"""
        rt = self.rt
        sysmod = self.importer("sys")
        card = self.board.sd_root is not None
        rt.fs.chdir("/sd" if card else "/flash")
        sysmod.path[:] = ["", "."] + (["/sd"] if card else []) + ["/flash"]
        rt.write("[MaixPy] init end\r\n")
        rt.sleep_us(IDE_WAIT_MS * 1000)
        if not rt.fs.is_file("main.py"):
            with self.open("main.py", "w") as f:
                f.write(WELCOME_MAIN)
        for name in SCRIPTS if card else ():
            cover = "/sd/" + COVER_PREFIX + name
            if rt.fs.is_file(cover):
                code = rt.fs.read_bytes(cover)
                target = "/flash/" + name
                if not rt.fs.is_file(target) or rt.fs.read_bytes(target) != code:
                    with self.open(target, "wb") as f:
                        f.write(code)
                    raise BoardReset("_boot.py: %s copied to %s" % (cover, target))

    def power_up(self, run_main: bool = True) -> BaseException:
        """_boot.py, boot.py and (run_main) main.py: what a soft reboot runs too (no ROM, no ISP check)."""
        self.frozen_boot()
        err = self.run_script("boot.py")
        if run_main:
            err = self.run_script("main.py") or err
        return err

    def boot_key_held(self) -> bool:
        """The BOOT key (IO16, k210/startup.py ISP_PIN) reads low now: at a reset the K210 ROM enters ISP mode
        instead of starting the firmware."""
        return self.board.button.level(self.board.clock.now_us) == 0

    def boot(self, max_resets: int = 20, run_main: bool = True) -> BootResult:
        """Reset the board and run the firmware: boot.py then main.py (run_main: the REPL is in friendly mode),
        until main.py ends or the runner stops it."""
        result = BootResult()
        while True:
            if self.boot_key_held():
                result.isp = True
                return result
            try:
                result.error = self.power_up(run_main)
                return result
            except StopRun as s:
                result.stopped = str(s) or "stopped"
                return result
            except BoardCrash as c:
                result.crash = str(c)
                self.board.write_console("\r\n[simulated crash] %s\r\n" % c)
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
