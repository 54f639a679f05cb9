"""`python -m host_tools board`: a virtual Maix Bit behind a pseudo-terminal.

One process answers on /dev/pts/N like the board's USB serial port: MaixPy's boot log, banner and REPL (device
code runs in the simulated firmware, host_tools/sim), and the K210 ISP ROM + flash stub for kflash, writing a
16 MiB flash image. A pty has no DTR/RTS, so the reset into ISP that kflash pulses on those lines is taken from
the traffic instead: kflash's greeting frame (0xC0 never occurs in REPL text) resets the board into ISP; the
stub's reboot command boots MaixPy again from the new flash image.

State lives in a folder: flash.bin (the image), flash/ (the /flash SPIFFS files), sd/ (the /sd card, present
only with --sd), isp.jsonl (one line per kflash session: frames, bytes, sectors written), board.log.
"""
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

from host_tools import outdir
from host_tools.command import Failed
from host_tools.deploy import isp as isp_mod
from host_tools.deploy import ports
from host_tools.deploy.repl import Repl
from host_tools.deploy.serial_line import SerialLine
from host_tools.files import write_atomic
from host_tools.k210.flash import FLASH_SIZE
from host_tools.k210.startup import RESET_SAMPLE_S, reset_lines


ISP_IDLE_RESET_S = 3.0
# kflash resets the board into ISP with DTR/RTS and then greets it; on a pty only the greeting frame is seen, so it
# is what puts the virtual board into ISP (any other SLIP frame reaching MaixPy is just bytes to its REPL).
ISP_GREETING = b"\xc0\xc2"


class BoardState:
    """The board's persistent parts: flash image and the two file systems' host folders."""

    def __init__(self, folder, sd=False):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.flash_path = self.folder / "flash.bin"
        if self.flash_path.is_file():
            self.flash = bytearray(self.flash_path.read_bytes())
            if len(self.flash) != FLASH_SIZE:
                raise ValueError("%s: %d bytes, a Maix Bit flash image has %d" % (self.flash_path, len(self.flash),
                                                                                  FLASH_SIZE))
        else:
            self.flash = bytearray(b"\xff" * FLASH_SIZE)   # erased NOR flash
        self.flash_root = self.folder / "flash"
        self.flash_root.mkdir(exist_ok=True)
        self.sd_root = self.folder / "sd"
        if sd:
            self.sd_root.mkdir(exist_ok=True)
        self.log_path = self.folder / "board.log"

    @property
    def has_sd(self):
        return self.sd_root.is_dir()

    def save_flash(self):
        write_atomic(self.flash_path, bytes(self.flash))

    def log(self, text):
        with open(self.log_path, "a") as f:
            f.write("%s %s\n" % (time.strftime("%H:%M:%S"), text))


class VirtualBoard:
    def __init__(self, state: BoardState, runtime):
        self.state = state
        self.runtime = runtime          # the firmware: new_session(write, hard) -> session (see repl.py)
        self.line = SerialLine()
        self.usb = None                 # the port with modem lines (fuse_port.FusePort), when one is served
        self.mode = "maixpy"            # "maixpy" | "isp" | "reset" (held in reset by the modem lines)
        self.isp = None
        self.repl = None
        self._held = b""                # a trailing 0xC0 kept until we know whether a greeting follows
        self._running = True
        self._lock = threading.RLock()  # the pty reader and the USB port's server both deliver host bytes

    @property
    def port(self):
        return self.line.port

    def serve_usb(self, folder):
        """Also answer on a FUSE serial port with DTR/RTS (fuse_port.py): the real kflash CLI resets the board
        through it. Returns its path; PortError when FUSE cannot be used here."""
        from host_tools.deploy.fuse_port import FusePort
        self.usb = FusePort(folder, on_write=self.receive, on_lines=self.lines_changed).start()
        return self.usb.path

    def send(self, data: bytes):
        """Board output to the host, on both ports. With the USB port open, nobody may be reading the pty: it
        then drops at once rather than holding up the ISP's replies."""
        usb = self.usb
        if usb is not None:
            usb.feed(data)
        self.line.write(data, wait=0.0 if usb is not None and usb.is_open else 2.0)

    def write_from_firmware(self, repl, data: bytes):
        # Output of a firmware instance that has since been reset must not reach the line. No lock is held
        # while writing: a write may wait for a slow reader, and the ISP must answer kflash at once (kflash
        # skips any text before a reply frame).
        if self.mode == "maixpy" and repl is self.repl:
            self.send(data)

    def lines_changed(self, dtr, rts):
        """The Maix Bit's reset circuit (k210.startup.reset_lines): EN low stops the chip; when it rises the
        ROM samples IO16 a moment later: low -> ISP, high -> MaixPy."""
        en_low, _ = reset_lines(dtr, rts)
        with self._lock:
            if en_low and self.mode != "reset":
                if self.mode == "isp":
                    self._record_isp()
                self._stop_firmware()
                self.mode = "reset"
                self.state.log("reset held (RTS)")
            elif not en_low and self.mode == "reset":
                threading.Timer(RESET_SAMPLE_S, self._out_of_reset).start()

    def _out_of_reset(self):
        with self._lock:
            en_low, io16_low = reset_lines(self.usb.dtr, self.usb.rts)
            if en_low or self.mode != "reset":
                return
            if io16_low:
                self.enter_isp()
            else:
                self.mode = "maixpy"
                self.power_on(hard=True)

    def power_on(self, hard=True):
        holder = {}

        def write(data):
            self.write_from_firmware(holder["repl"], data)

        repl = Repl(self.runtime, write, hard_boot=hard, on_hard_reset=self.hard_reset)
        holder["repl"] = repl
        self.repl = repl
        repl.start()
        self.state.log("boot (%s)" % ("power on" if hard else "soft"))

    def hard_reset(self):
        self.state.log("machine.reset()")
        threading.Thread(target=self.power_on, daemon=True).start()

    def _stop_firmware(self, wait=0.0):
        repl, self.repl = self.repl, None
        if repl is not None:
            repl.stop()
            if wait:
                repl.join(wait)   # device code stuck in a long call is abandoned: the thread is a daemon

    def enter_isp(self):
        self.mode = "isp"
        self._stop_firmware()
        self.isp = isp_mod.Isp(self.state.flash)
        self.isp_last = time.monotonic()
        self.state.log("reset into ISP")

    def _record_isp(self):
        s = self.isp.stats
        record = {"time": time.time(), "stub_bytes": s.stub_bytes, "write_frames": s.write_frames,
                  "bytes_written": s.bytes_written, "sectors_written": len(s.sectors)}
        self.state.save_flash()
        with open(self.state.folder / "isp.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        self.state.log("ISP done: %d bytes in %d frames, %d sectors written" % (s.bytes_written, s.write_frames,
                                                                                len(s.sectors)))
        self.isp = None

    def leave_isp(self):
        self._record_isp()
        self.mode = "maixpy"
        self.power_on(hard=True)

    def serve(self):
        """Answer on the pty until shutdown() (or SIGTERM / Ctrl-C in the board process)."""
        self.power_on(hard=True)
        try:
            while self._running:
                data = self.line.read(0.1)
                if data:
                    self.receive(data)
        finally:
            self._stop_firmware(wait=1.0)
            self.state.save_flash()
            self.line.close()
            if self.usb is not None:
                self.usb.close()

    def receive(self, data: bytes):
        """Bytes from the host, on either port."""
        with self._lock:
            self._receive(data)

    def _receive(self, data: bytes):
        if self.mode == "reset":
            return                          # a chip held in reset hears nothing
        if self.mode == "maixpy":
            data, self._held = self._held + data, b""
            i = data.find(ISP_GREETING)
            if i < 0:
                if data.endswith(b"\xc0"):      # may be the start of a greeting: wait for the next byte
                    data, self._held = data[:-1], b"\xc0"
                if data:
                    self.repl.feed(data)
                return
            if i:
                self.repl.feed(data[:i])
            self.enter_isp()
            data = data[i:]
        elif b"\xc0" in data:
            self.isp_last = time.monotonic()
        elif (b"\x03" in data or b"\x01" in data) and time.monotonic() - self.isp_last > ISP_IDLE_RESET_S:
            # (also when kflash died inside a frame: REPL bytes then only fill that frame, they are not ISP traffic)
            # kflash died mid-way: a real board sits in ISP until someone presses reset; a pty has no reset
            # line, so REPL traffic after a quiet spell stands in for that press.
            self.state.log("ISP idle %.0f s and REPL traffic: reset" % (time.monotonic() - self.isp_last))
            self.leave_isp()
            return
        reply = self.isp.feed(data)
        if reply:
            self.send(reply)
        if self.isp.stats.rebooted:
            time.sleep(0.05)        # the reply leaves before the boot log starts
            self.leave_isp()

    def shutdown(self):
        self._running = False


# What the board keeps in its --state folder; anything else there is refused (or kept, with --force).
STATE_FILES = ("flash.bin", "flash/**", "sd/**", "usb/**", "isp.jsonl", "board.log", ports.ADVERT)


def console_keys(runtime, stream):
    """The board's own terminal: a line 'b' (or just Enter) presses BOOT."""
    for line in stream:
        if line.strip().lower() in ("", "b", "boot", "p", "press"):
            print("BOOT pressed" if runtime.press_now() else "the firmware is not running (ISP mode?)", flush=True)


def add_arguments(ap):
    ap.description = __doc__.split("\n\n")[0]
    ap.add_argument("action", nargs="?", choices=("press",),
                    help="press: press BOOT on the board already running with this --state (default: start a board)")
    ap.add_argument("--state", default=str(ports.VIRTUAL_STATE),
                    help="folder for flash.bin, flash/, sd/ and port.json (kept between runs)")
    ap.add_argument("--force", action="store_true", help="use --state even when it holds other files (kept)")
    ap.add_argument("--sd", action="store_true", help="insert an SD card (state/sd) as /sd")
    ap.add_argument("--frames", default=None, help="folder for the LCD frames the app shows (frame_NNN.png; "
                                                   "default: not saved)")
    ap.add_argument("--max-frames", type=int, default=None,
                    help="park the app after this many frames until Ctrl-C or reset (saves the host's CPU; "
                         "default: no limit)")
    ap.add_argument("--fast", action="store_true", help="do not hold board time to wall-clock time")
    ap.add_argument("--press", type=float, action="append", default=[], metavar="MS",
                    help="press BOOT this many board ms after each power-on (repeatable; default: none); while it "
                         "runs: `python -m host_tools board press`, or Enter in its terminal")
    ap.add_argument("--no-usb", dest="usb", action="store_false",
                    help="do not serve the FUSE port with DTR/RTS that the kflash command line needs (default: served)")
    ap.add_argument("--camera", action="append", metavar="DIR|FILE",
                    help="image file or folder the camera sees (repeatable; default: digits, then photos)")


def usb_port(board, folder) -> str:
    """Serve the FUSE port with DTR/RTS; the line saying where it is, or why there is none and what works."""
    from host_tools.deploy.fuse_port import PortError
    try:
        return "kflash port (with DTR/RTS): %s" % board.serve_usb(folder)
    except PortError as e:
        return ("no kflash port with DTR/RTS (%s): the kflash command line cannot reset this board; `python -m "
                "host_tools flash write` and `deploy` drive kflash over the pty" % e)


def warm_emulator():
    """Load the emulator's kernels (numba, from the cache `make venv` fills) before the port is announced, by
    running the shipped demo kmodels once: the app's first kpu.forward then takes milliseconds, as on the board,
    instead of seconds during which a Ctrl-C (deploy, fs) would wait as if no board were there."""
    from host_tools.deploy.deploy import DEMO_MODELS
    from host_tools.kmodel.warm import warm
    warm(sorted(DEMO_MODELS.glob("*.kmodel")))


def press(state) -> int:
    """`board press`: SIGUSR1 to the board process that advertises itself in `state`."""
    running = ports.virtual(state)
    if not running:
        raise Failed("no virtual board is running with state in %s (start one with `make board`)" % state)
    pid = json.loads((Path(state) / ports.ADVERT).read_text())["pid"]
    os.kill(pid, signal.SIGUSR1)
    print("board: BOOT pressed (board process %d)" % pid)
    return 0


def run(args) -> int:
    if args.action == "press":
        return press(args.state)
    outdir.claim(args.state, STATE_FILES, force=args.force, option="--state", command="board")
    if args.frames:
        outdir.claim(args.frames, ("frame_*.png",), force=args.force, option="--frames", command="board")
    from host_tools.deploy.sim_runtime import SimRuntime  # the simulated firmware (imports numpy etc.)
    from host_tools.sim.camera import default_sources
    default_sources(64)     # the camera's scenes import scikit-image: done before the port is announced, so the
    #                         board answers at once, as a powered board does (a slow one looks like no board)
    warm_emulator()

    state = BoardState(args.state, sd=args.sd)
    runtime = SimRuntime(state, frames_out=args.frames, max_frames=args.max_frames, realtime=not args.fast,
                         presses=args.press, camera=args.camera)
    board = VirtualBoard(state, runtime)
    usb = usb_port(board, state.folder / "usb") if args.usb else None

    def stop(*_):
        board._running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGUSR1, lambda *_: runtime.press_now())
    ports.advertise(state.folder, board.port)     # first: whoever reads the port line finds the board advertised
    try:
        print("virtual Maix Bit on port %s" % board.port, flush=True)
        if usb:
            print(usb, flush=True)
        print("state in %s; try: make deploy PORT=%s   or: python -m host_tools fs ls (finds this board); stop "
              "with Ctrl-C" % (state.folder, board.port), flush=True)
        if sys.stdin is not None and sys.stdin.isatty():
            print("press BOOT: Enter here, or `python -m host_tools board press --state %s`" % state.folder,
                  flush=True)
            threading.Thread(target=console_keys, args=(runtime, sys.stdin), daemon=True).start()
        board.serve()
    except KeyboardInterrupt:       # Ctrl-C is how this command is meant to end: exit 0
        pass
    finally:
        ports.withdraw(state.folder)
    return 0
