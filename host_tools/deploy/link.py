"""A raw-REPL connection to the board, driven by mpremote's transport (default) or ampy's Pyboard.

Entering the REPL never soft-resets (a boot.py or main.py that loops forever would block it, as with
`mpremote resume`): Ctrl-C is sent until the raw REPL header shows, so a running main.py is stopped first.
Every exec is one round trip; `round_trips` counts them (bench/deploy.py reports it per file).
"""
import ast
import contextlib
import os
import stat
import time

from host_tools.k210.firmware import REPL_BAUD

TOOLS = ("mpremote", "ampy")
RAW_HEADER = b"raw REPL; CTRL-B to exit\r\n"
NOT_A_BOARD_S = 3.0       # silence (or talk unlike MicroPython's) this long: not a board (reported within 5 s)
BUSY_BOARD_S = 40.0       # a board that answers but is slow to stop its main.py gets this long
# The raw REPL answers an exec with "OK" once it has the code; the tools read those 2 bytes with the port's read
# timeout. Our 0.5 s (for the silence checks above) was too short for a board starved of CPU: the interrupted-
# deploy sweep, under nice at load 10, once got b'' there ("could not exec command") from a board that was fine.
EXEC_ACK_S = 10.0
# What a MicroPython board says after Ctrl-C / Ctrl-A, or while it boots: MaixPy's _boot.py prints "[MaixPy] init
# end", and our app's boot.py its safe-mode prompt (device/lib/startup.py) before main.py loads a model, during
# which a Ctrl-C waits for the model's first frame.
REPL_WORDS = (b">>>", b"raw REPL", b"MicroPython", b"Traceback", b"KeyboardInterrupt", b"MAIXPY", b"soft reboot",
              b"[MaixPy]", b"for safe mode")


class LinkError(RuntimeError):
    """The board did not answer as a MaixPy REPL should; the message says what was expected."""


class DeviceError(RuntimeError):
    """Code run on the board raised; .traceback is the board's own text."""

    def __init__(self, code, traceback):
        self.traceback = traceback
        last = traceback.strip().splitlines()[-1] if traceback.strip() else "error"
        super().__init__("board raised %s (running: %s)" % (last, code.strip().splitlines()[0][:60]))


class ExecTimeout(LinkError):
    """Code ran longer than allowed and was stopped with Ctrl-C; the board is back at its prompt."""

    def __init__(self, seconds):
        super().__init__("still running after %g s: stopped with Ctrl-C, the board is ready" % seconds)
        self.seconds = seconds


def _tool_errors() -> tuple:
    """What the tools raise: mpremote's TransportError, pyserial's SerialException (Exception subclasses) and
    ampy's PyboardError, which derives from BaseException."""
    from ampy.pyboard import PyboardError
    return (Exception, PyboardError)


TOOL_ERRORS = _tool_errors()


def _sounds_like_repl(heard: bytes) -> bool:
    return any(w in heard for w in REPL_WORDS)


def _open(port, tool, baud):
    """The tool's transport on `port`; LinkError naming the port and the reason when it cannot be opened."""
    if "://" not in port:
        if not os.path.exists(port):
            raise LinkError("%s: no such port (is the board plugged in? `python -m serial.tools.list_ports` lists "
                            "the ports)" % port)
        if not stat.S_ISCHR(os.stat(port).st_mode):
            raise LinkError("%s: not a serial port" % port)
        if not os.access(port, os.R_OK | os.W_OK):
            raise LinkError("%s: no permission to open it (on Linux: join the dialout group)" % port)
    try:
        if tool == "mpremote":
            from mpremote.transport_serial import SerialTransport
            return SerialTransport(port, baudrate=baud)
        from ampy.pyboard import Pyboard
        return Pyboard(port, baudrate=baud)
    except TOOL_ERRORS as e:
        raise LinkError("%s: cannot open the port (%s)" % (port, _why_not(port, e))) from None


def _why_not(port, e) -> str:
    """mpremote says only "failed to access": pyserial's own error says why (not a tty, in use, ...)."""
    import serial
    try:
        serial.serial_for_url(port, exclusive=True).close()
    except Exception as ex:
        return str(ex)
    return "in use by another program" if "failed to access" in str(e) else str(e)


class Link:
    def __init__(self, port, tool="mpremote", baud=REPL_BAUD, attempts=20):
        if tool not in TOOLS:
            raise LinkError("tool %r: choose one of %s" % (tool, ", ".join(TOOLS)))
        self.port, self.tool = port, tool
        self.round_trips = 0
        self.bytes_sent = 0
        self._t = _open(port, tool, baud)
        self.serial = self._t.serial
        # On a pty mpremote reads with no timeout at all; a bounded read lets a silent board be reported.
        self.serial.timeout = 0.5
        try:
            self._enter_raw(attempts)
        except BaseException:
            self.serial.close()
            raise

    def _read_until(self, ending: bytes, timeout: float) -> bytes:
        """Bytes up to and including `ending` (one at a time, so nothing after it is consumed)."""
        data = b""
        end = time.monotonic() + timeout
        while not data.endswith(ending) and time.monotonic() < end:
            data += self.serial.read(1)
        return data

    def _drain(self, quiet=0.1):
        """Read and drop everything until the line has been quiet for `quiet` seconds."""
        timeout, self.serial.timeout = self.serial.timeout, quiet
        try:
            while self.serial.read(4096):
                pass
        finally:
            self.serial.timeout = timeout

    def _enter_raw(self, attempts):
        """Ctrl-C (stop main.py) then Ctrl-A until the raw REPL header answers. A slow board may answer an
        earlier attempt late, so once in raw mode the line is drained and the header asked for once more: the
        '>' after it is left for the tool, which reads it before each exec. A port that has said nothing a
        MicroPython board says within NOT_A_BOARD_S is given up on; one that has gets BUSY_BOARD_S."""
        start = time.monotonic()
        heard = b""
        for i in range(attempts):
            left = start + (BUSY_BOARD_S if _sounds_like_repl(heard) else NOT_A_BOARD_S) - time.monotonic()
            if left <= 0:
                break
            self.serial.write(b"\r\x03\x03")
            time.sleep(0.05 if i < 3 else 0.3)
            heard = (heard + self.serial.read(self.serial.in_waiting))[-4096:]   # what Ctrl-C got: a traceback, >>>
            self.serial.write(b"\r\x01")
            got = self._read_until(RAW_HEADER, max(0.1, min(1.0 if i < 3 else 2.0, left)))
            heard = (heard + got)[-4096:]
            if got.endswith(RAW_HEADER):
                self._drain()
                self.serial.write(b"\x01")
                if self._read_until(RAW_HEADER, 2.0).endswith(RAW_HEADER):
                    if self.tool == "mpremote":
                        self._t.in_raw_repl = True
                    return
        if not _sounds_like_repl(heard):
            raise LinkError("%s: not a MaixPy board: no answer like MicroPython's in %.0f s (%s; is it the right port, "
                            "or is the board in ISP mode?)" % (self.port, time.monotonic() - start,
                                                               "silent" if not heard else "heard %r" % heard[-40:]))
        raise LinkError("%s: no MaixPy raw REPL after %.0f s (the board answers but does not give the raw REPL; "
                        "press its reset button); last heard: %r" % (self.port, time.monotonic() - start, heard[-80:]))

    @contextlib.contextmanager
    def _patient(self):
        """The port's read timeout at EXEC_ACK_S while the tool sends code and reads its "OK" (mpremote's follow
        reads only bytes already waiting, so its own timeout still rules)."""
        before, self.serial.timeout = self.serial.timeout, EXEC_ACK_S
        try:
            yield
        finally:
            self.serial.timeout = before

    def exec(self, code: str, timeout=30) -> bytes:
        """Run code on the board; return its stdout. Raises DeviceError with the board's traceback."""
        self.round_trips += 1
        self.bytes_sent += len(code)
        try:
            with self._patient():
                out, err = self._t.exec_raw(code, timeout=timeout)
        except TOOL_ERRORS as e:  # both tools raise their own error types for a board that stops answering
            raise LinkError("%s: %s while running code on the board: %s" % (self.port, type(e).__name__, e)) \
                from None
        if err:
            raise DeviceError(code, err.decode("utf-8", "replace"))
        return out

    def exec_follow(self, code: str, timeout, on_output, grace=5.0) -> str:
        """Run code on the board, handing its stdout to on_output(bytes) as it arrives; returns the board's
        traceback text ('' when the code finished). After `timeout` seconds in all, the code is stopped with
        Ctrl-C (what was printed stays printed) and ExecTimeout says so once the board is back at its prompt."""
        self.round_trips += 1
        self.bytes_sent += len(code)
        try:
            with self._patient():
                self._t.exec_raw_no_follow(code)
        except Exception as e:  # both tools raise their own error types for a board that stops answering
            raise LinkError("%s: %s while sending code to the board: %s" % (self.port, type(e).__name__, e)) \
                from None
        deadline = time.monotonic() + timeout
        interrupted = False
        parts = [b"", b""]            # stdout, traceback: each ends at a \x04
        part = 0
        while part < 2:
            chunk = self.serial.read(max(1, min(self.serial.in_waiting, 4096)))
            while chunk and part < 2:
                i = chunk.find(b"\x04")
                piece, chunk = (chunk, b"") if i < 0 else (chunk[:i], chunk[i + 1:])
                if part == 0 and piece:
                    on_output(piece)
                parts[part] += piece
                if i >= 0:
                    part += 1
            if part < 2 and time.monotonic() > deadline:
                if interrupted:
                    raise LinkError("%s: the board did not stop %.0f s after Ctrl-C" % (self.port, grace))
                self.serial.write(b"\x03")
                interrupted = True
                deadline = time.monotonic() + grace
        if interrupted:
            raise ExecTimeout(timeout)
        return parts[1].decode("utf-8", "replace")

    def eval(self, expr: str, timeout=30, setup=""):
        text = self.exec("%s\nprint(repr(%s))" % (setup, expr), timeout).decode("utf-8").strip()
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise LinkError("%s: could not read the board's answer to %s: %r" % (self.port, expr, text[:80])) \
                from None

    def close(self, reset=None, resume=False):
        """Leave raw mode. reset="soft": Ctrl-D, the firmware reruns boot.py and main.py with the heap it has;
        reset="hard": machine.reset(), a full restart as at power-up (fresh heaps, then boot.py and main.py).
        resume: no reset; main.py runs again from the friendly REPL (the app our Ctrl-C stopped goes on, with the
        modules and camera set-up it had)."""
        try:
            if reset == "hard":
                self._read_until(b">", 2)
                self.serial.write(b"import machine\nmachine.reset()\x04")
                self._read_until(b"OK", 5)   # the board resets before it could end the reply
            self.serial.write(b"\r\x02")
            if reset == "soft":
                time.sleep(0.1)
                self.serial.write(b"\x04")
                self._read_until(b"soft reboot\r\n", 5)
            elif resume and reset is None:
                self._read_until(b">>> ", 2)
                self.serial.write(b"exec(open('main.py').read())\r")
                self._read_until(b"\r\n", 2)   # the line was taken: main.py runs
            time.sleep(0.05)
        finally:
            self.serial.close()
