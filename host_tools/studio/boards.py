"""The board behind the studio page.

Both kinds answer on a serial port, and the file tree, editor, run, REPL and models panes talk to that port the way
`fs` does (host_tools/studio/files.py). The virtual board is the one `board` runs (deploy.virtual_board on a pty,
host_tools/sim behind it), started in this process so the page can also see what a real board shows only on its
own screen: the LCD, the BOOT button, the heaps and the model held.
"""
import json
import threading
import time
from pathlib import Path

from host_tools.deploy.sim_runtime import SimRuntime
from host_tools.deploy.virtual_board import BoardState, VirtualBoard
from host_tools.sim.camera import load_sources
from host_tools.sim.fs import DeviceFs
from host_tools.studio import video

CONSOLE_KEEP = 64 * 1024      # characters of the board's console the page can show
HELD_AT_RESET_MS = 3000.0     # a BOOT "held" through a reset: longer than the ROM's sample and boot.py's window
ISP_NOTE = "ISP (BOOT held at reset: the K210 ROM waits for kflash, MaixPy does not run; Reset starts it)"
MODE_TAG = {"classifier": "CLS", "detector": "DET"}     # as device/lib/app.py writes them on the LCD
BOOT_WAIT_S = 30.0            # the longest the URL waits for the virtual board's app to run


def show(board, camera):
    """Put other pictures in front of the virtual camera: camera = (sources, hold_ms or None to keep its own)."""
    sources, hold_ms = camera
    board.camera.sources = list(sources)
    if hold_ms:
        board.camera.hold_ms = hold_ms
    board.camera._cache.clear()


def camera_source(path):
    """(sources, hold_ms) for --camera: a video file's frames at its pace, or pictures (a folder or one file) held
    as long as `make sim` holds them."""
    if video.is_video(path):
        return video.frames(path)
    return load_sources([path]), None


def held_entries(board, held) -> list:
    """models.json's entry (or None) for each model the KPU holds, named as kpu.load names them: "flash@0x..."
    for a flash offset, the file path otherwise."""
    root = board.sd_root if board.sd_root is not None else board.flash_root
    try:
        models = json.loads((Path(root) / "models.json").read_text()).get("models", [])
    except (OSError, ValueError, AttributeError):
        models = []
    out = []
    for h in held:
        found = None
        for e in models:
            src = e.get("source", {}) if isinstance(e, dict) else {}
            name = "flash@0x%X" % src["flash"] if "flash" in src else src.get("path")
            if name and (h == name or h.startswith(name + " ")):
                found = e
        out.append(found)
    return out


class StudioRuntime(SimRuntime):
    """SimRuntime that keeps the session running now, tees the console to the page and can swap the camera."""

    def __init__(self, state, camera=None, **kw):
        super().__init__(state, **kw)
        self.session = None
        self.view = camera              # (sources, hold_ms) or None (SimRuntime.camera is its own)
        self.console = ""
        self.held_at_reset = False      # the next power-on starts with BOOT held
        self.isp = False                # this power-on had BOOT held: the ROM's ISP mode, no MaixPy
        self._tees = {}

    def _tee(self, write):
        if write not in self._tees:
            def tee(data):
                text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
                self.console = (self.console + text)[-CONSOLE_KEEP:]
                write(data)
            self._tees[write] = tee
        return self._tees[write]

    def new_session(self, write, hard):
        ss = super().new_session(self._tee(write), hard)
        if hard and self.view is not None:
            show(ss.run.board, self.view)
        if hard:
            self.isp = self.held_at_reset
        if hard and self.held_at_reset:
            self.held_at_reset = False
            ss.run.board.press(at_ms=0.0, hold_ms=HELD_AT_RESET_MS)
        self.session = ss
        return ss


class VirtualBackend:
    """A virtual Maix Bit on a pty, in this process."""
    virtual = True

    def __init__(self, state_dir, camera=None, sd=False):
        self.state = BoardState(state_dir, sd=sd)
        cam = camera_source(camera) if camera else None
        self.runtime = StudioRuntime(self.state, camera=cam, realtime=True)
        self.board = VirtualBoard(self.state, self.runtime)
        self.port = self.board.port
        # its /flash and /sd as its firmware's uos sees them: the page reads files there without stopping the app
        self.fs = DeviceFs(self.state.flash_root, self.state.sd_root if self.state.has_sd else None)
        self._thread = threading.Thread(target=self.board.serve, daemon=True)
        self._thread.start()

    def _sim(self):
        s = self.runtime.session
        return (s.run.board, s.s.rt) if s is not None else (None, None)

    def lcd(self):
        """(number of LCD updates, RGB888 array) of the panel now, or (0, None) before the first power-on."""
        board, _ = self._sim()
        if board is None:
            return 0, None
        return board.screen.updates, board.screen.rgb()

    def wait_until_running(self, timeout=BOOT_WAIT_S) -> bool:
        """Until the app shows its first camera frame, or has stopped (a broken app's message on the LCD): the
        firmware's start-up and the model's load, the host's heaviest second, are over before a page asks for
        anything, and the page gets a picture at once. False when neither happened within timeout."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            board, _ = self._sim()
            repl = self.board.repl
            if board is not None and (board.screen.shown or (board.screen.updates and repl is not None
                                                             and not repl.busy)):
                return True
            time.sleep(0.02)
        return False

    def press(self, hold_ms=120.0):
        board, _ = self._sim()
        if board is not None:
            board.press(at_ms=board.clock.ms + 1.0, hold_ms=float(hold_ms))

    def hold_at_reset(self):
        """The next power-on starts with BOOT held (the K210 ROM's ISP mode, as on the real chip)."""
        self.runtime.held_at_reset = True

    def set_camera(self, camera):
        """camera: (sources, hold_ms or None)."""
        self.runtime.view = camera
        board, _ = self._sim()
        if board is not None:
            show(board, camera)

    def reset(self):
        """The reset button: a power-on from the flash as it is, whatever the firmware is doing (ISP mode too)."""
        vb = self.board
        vb.isp, vb.mode = None, "maixpy"
        vb._stop_firmware()
        vb.power_on(hard=True)

    def state_now(self) -> dict:
        board, rt = self._sim()
        if board is None:
            return {"virtual": True, "booted": False}
        frames = [f for f in list(board.screen.frames) if f.note == "display"]
        fps = 0.0
        if len(frames) >= 2 and frames[-1].t_ms > frames[0].t_ms:
            fps = (len(frames) - 1) * 1000.0 / (frames[-1].t_ms - frames[0].t_ms)
        held = [tag.split(":", 1)[1] for tag, _ in rt.sys.blocks.values() if tag.startswith("kmodel:")]
        entries = held_entries(board, held)
        mode = " ".join(MODE_TAG.get(e["kind"], e["kind"]) for e in entries if e) or "-"
        return {"virtual": True, "booted": True, "board_ms": round(board.clock.ms), "fps": round(fps, 1),
                "frames": board.screen.shown, "gc_free": rt.gc.free(), "gc_used": rt.gc.used(),
                "sys_free": rt.sys.free(), "sys_used": rt.sys.used(),
                "models_held": [e["name"] if e else h for h, e in zip(held, entries)],
                "mode": ISP_NOTE if self.runtime.isp else mode, "console": self.runtime.console[-4000:]}

    def close(self):
        self.board.shutdown()
        self._thread.join(2.0)


class SerialBackend:
    """A real board (or `make board`'s pty): only the serial link; its own screen is the display."""
    virtual = False
    fs = None               # every file action goes over the REPL

    def __init__(self, port):
        self.port = port

    def lcd(self):
        return 0, None

    def press(self, hold_ms=120.0):
        raise ValueError("BOOT: press the button on the board (a serial port cannot)")

    def hold_at_reset(self):
        raise ValueError("BOOT: hold the button on the board (a serial port cannot)")

    def set_camera(self, camera):
        raise ValueError("camera: a real board's camera is its own sensor")

    reset = None            # the page resets a real board over the link (machine.reset())

    def state_now(self) -> dict:
        return {"virtual": False, "port": self.port}

    def close(self):
        pass
