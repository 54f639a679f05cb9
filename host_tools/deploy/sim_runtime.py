"""The virtual board's firmware: host_tools/sim (Board + Session) behind the REPL loop of repl.py.

A power-on (start, kflash reboot, machine.reset()) builds a fresh sim Board on the board's own flash image and
file-system folders, so the clock starts at 0 as on a real board; a soft reboot keeps the Board and starts a new
Session. Device stdout goes to the serial line. Two things the REPL-less runner never needs are added here:
- pacing: the simulated clock is held to wall-clock time (the app runs at the board's frame rate, not as fast
  as the host can go), and with max_frames the app parks after that many LCD frames until a Ctrl-C or reset,
  so an idle virtual board does not keep a CPU busy;
- frames_out: the first frames shown are saved as PNGs (frame_000.png, ...).
"""
import ctypes
import json
import sys
import threading
import time
from pathlib import Path

from host_tools.deploy.repl import HardReset
from host_tools.sim.board import Board
from host_tools.sim.camera import default_sources, digit_glyph, load_sources
from host_tools.sim.firmware.runtime import BoardReset
from host_tools.sim.session import Session


FORCE_INTERRUPT_S = 0.5   # a Ctrl-C not taken at a firmware call by then is raised by the interpreter
HOLD_MS = 2500.0   # how long the camera holds each scene: make sim's default, so first frames agree


def single_input(source: str) -> str:
    """The source with every top-level expression statement's value printed when it is not None."""
    import ast
    try:
        tree = ast.parse(source, "<stdin>", "exec")
    except SyntaxError:
        return source                   # let the board's own compile report it
    body = []
    for node in tree.body:
        if isinstance(node, ast.Expr):
            show = ast.parse("__repl_value = 0\nif __repl_value is not None:\n    print(repr(__repl_value))\n").body
            show[0].value = node.value
            body += show
        else:
            body.append(node)
    tree.body = body
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


class SimSession:
    """What repl.Repl needs from a firmware session."""

    def __init__(self, run, session: Session):
        self.run = run                  # the PowerOn this session belongs to
        self.s = session
        self._tid = None                # the thread running device code right now, if any

    def _call(self, fn, *args):
        self._tid = threading.get_ident()
        try:
            return fn(*args)
        except BoardReset:
            raise HardReset() from None
        finally:
            self._tid = None

    def boot(self, run_main: bool):
        """_boot.py, boot.py and (friendly REPL only) main.py, as the firmware does after a reset."""
        if run_main:
            self.run.in_app = True
            try:
                self._call(self.s.boot)
            finally:
                self.run.in_app = False
            return
        # raw-REPL soft reboot: the firmware runs boot.py but not main.py
        self._call(self.s.power_up, False)

    def exec(self, source, filename="<stdin>"):
        self.s.rt.interrupt_pending = False     # a Ctrl-C from before this code arrived is not meant for it
        self._call(self.s.exec, source, filename)

    def exec_single(self, source):
        """A friendly-REPL line: the value of each expression statement on it is printed (`import uos;
        uos.listdir()` shows the list), as MicroPython's single-input mode does."""
        self.s.rt.interrupt_pending = False
        self._call(self.s.exec, single_input(source), "<stdin>")

    def format_exception(self, e) -> str:
        return self.s.format_exception(e)

    def interrupt(self):
        """Ctrl-C. The simulated firmware raises it at the device code's next call into a firmware module; a
        loop that makes no such call (`while True: pass`) is interrupted by the interpreter instead, as
        MicroPython's VM would, once it is clear the normal way is not coming."""
        self.s.interrupt()
        if self._tid is not None:
            t = threading.Timer(FORCE_INTERRUPT_S, self._force_interrupt, args=(self._tid,))
            t.daemon = True
            t.start()

    def _force_interrupt(self, tid):
        frame = sys._current_frames().get(tid)
        # Only while the thread is inside device code itself (not the REPL loop, not a long firmware call such as
        # kpu.forward, which reaches its checkpoint on its own) and the interrupt is still undelivered.
        if (frame is None or tid != self._tid or not self.s.rt.interrupt_pending
                or not self._is_device_code(frame.f_code.co_filename)):
            return
        self.s.rt.interrupt_pending = False
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(tid), ctypes.py_object(KeyboardInterrupt))

    def _is_device_code(self, filename):
        # device files, and code device code compiled itself (exec of a string: "<string>", the REPL's "<stdin>")
        return filename in self.s.device_files or (filename.startswith("<") and not filename.startswith("<frozen"))

    def close(self):
        pass


class PowerOn:
    """One power-on of the virtual board: its sim Board and what pacing and frame saving track for it. A board
    reset makes a new one, so a firmware thread still winding down never touches the next one's state."""

    def __init__(self, runtime, write):
        st = runtime.state
        sd = st.sd_root if st.has_sd else None
        sources = runtime.camera or default_sources(runtime.glyph(sd or st.flash_root))
        self.write = write
        self.board = Board(flash_root=st.flash_root, sd_root=sd, camera=sources, hold_ms=HOLD_MS,
                           console_echo=self._console, keep_frames=16)
        self.board.flash = st.flash          # the image kflash writes is the one kpu.load reads
        for t in runtime.presses:
            self.board.press(at_ms=t)
        self.wall0 = time.monotonic()
        self.clock0 = self.board.clock.now_us
        self.saved = 0
        self.seen_updates = 0
        self.in_app = False             # boot.py/main.py running (not a REPL exec): only the app is paced/parked

    def _console(self, text):
        self.write(text)
        self.board.console.clear()      # the pty is the record; the sim's in-memory copy would only grow


class SimRuntime:
    def __init__(self, state, frames_out=None, max_frames=None, realtime=True, presses=(), camera=None):
        self.state = state
        self.presses = list(presses)    # BOOT presses, board ms after each power-on
        self.camera = load_sources(camera) if camera else None   # what the camera sees (default: digits, photos)
        self.frames_out = Path(frames_out) if frames_out else None
        self.max_frames = max_frames
        self.realtime = realtime
        self.runs = {}                  # write function (one per firmware thread) -> its PowerOn

    def glyph(self, root: Path) -> int:
        """Digit size the camera shows, as `make sim` picks it from the classifier in models.json."""
        glyph = 64
        try:
            models = json.loads((root / "models.json").read_text()).get("models", [])
        except (OSError, ValueError, AttributeError):
            return glyph
        for m in models:
            if isinstance(m, dict) and m.get("kind") == "classifier" and isinstance(m.get("input"), dict):
                try:
                    glyph = digit_glyph(m["input"]["w"], m["input"]["h"], m.get("framing", "crop"))
                except (KeyError, TypeError, ValueError):
                    pass
        return glyph

    def press_now(self) -> bool:
        """Press BOOT on the running board (a few board ms from now); False when it is not running."""
        for run in list(self.runs.values()):
            run.board.press(at_ms=run.board.clock.ms + 5)
            return True
        return False

    def new_session(self, write, hard: bool):
        run = self.runs.get(write)
        if hard or run is None:
            self.runs = {write: PowerOn(self, write)}   # earlier power-ons are over
            run = self.runs[write]
        s = Session(run.board)
        s.rt.stop_check = lambda rt=s.rt: self._pace(run, rt)
        return SimSession(run, s)

    def _pace(self, run, rt):
        """Polled at each call into a simulated module: save new frames, hold virtual time to wall time, park."""
        screen = run.board.screen
        if self.frames_out is not None and screen.updates > run.seen_updates:
            new = list(screen.frames)[-min(len(screen.frames), screen.updates - run.seen_updates):]
            run.seen_updates = screen.updates
            for _, rgb, note in new:
                if note == "display" and run.saved < (self.max_frames or 1e9):
                    self._save_frame(run, rgb)
        if run.in_app and self.max_frames is not None and screen.shown >= self.max_frames:
            while not rt.interrupt_pending:       # parked: the next Ctrl-C or reset ends it
                time.sleep(0.02)
            return None
        if self.realtime and run.in_app:
            ahead = (rt.clock.now_us - run.clock0) / 1e6 - (time.monotonic() - run.wall0)
            if ahead > 0.002:
                time.sleep(min(ahead, 0.5))
        return None

    def _save_frame(self, run, rgb):
        from PIL import Image
        self.frames_out.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgb).save(self.frames_out / ("frame_%03d.png" % run.saved))
        run.saved += 1
