"""Drive kflash 1.1.6 as a library: one .kfpkg (or .bin) onto the board's SPI flash, with progress.

kflash resets the board into ISP with the DTR/RTS lines. A pseudo-terminal has no modem lines, so pyserial's
ioctl raises ENOTTY/EINVAL and kflash gives up ("Greeting fail"). `tolerate_missing_modem_lines` swallows
exactly those two errors while kflash runs, so the same unmodified kflash flashes a real board or the virtual
one's pty (the virtual board's USB port, fuse_port.py, has the lines: the kflash command line works there).
Success is only what kflash itself reports at its end ("Rebooting"); anything else is a FlashError.
"""
import contextlib
import errno
import io

import serial.serialposix as serialposix

from host_tools.k210.firmware import REPL_BAUD

BOARDS = ("kd233", "dan", "bit", "bit_mic", "goE", "goD", "maixduino", "trainer")


class FlashError(RuntimeError):
    """kflash could not write the package; the message carries kflash's own reason."""


@contextlib.contextmanager
def tolerate_missing_modem_lines():
    cls = serialposix.Serial
    saved = cls._update_dtr_state, cls._update_rts_state

    def tolerant(update):
        def call(self):
            try:
                update(self)
            except OSError as e:
                if e.errno not in (errno.ENOTTY, errno.EINVAL):
                    raise
        return call

    cls._update_dtr_state, cls._update_rts_state = tolerant(saved[0]), tolerant(saved[1])
    try:
        yield
    finally:
        cls._update_dtr_state, cls._update_rts_state = saved


def flash(package, port, board="bit", baud=1500000, progress=None, log=None) -> str:
    """Write `package` (.kfpkg or .bin path) through kflash; return kflash's log text.

    progress(name, done_bytes, total_bytes) is called as frames are written; log(line) gets kflash's messages.
    """
    import kflash  # imported here: it is only needed when something is flashed

    if board not in BOARDS:
        raise FlashError("board %r is not one kflash knows (%s)" % (board, ", ".join(BOARDS)))
    out = io.StringIO()

    def on_log(*args, **kwargs):
        text = " ".join(str(a) for a in args)
        out.write(text + kwargs.get("end", "\n"))
        if log and text.strip() and not text.startswith("\r"):
            log(text.strip())

    def on_progress(name, done, total, speed):
        if progress:
            progress(name, done, total)

    k = kflash.KFlash()
    kflash.KFlash.print_callback = on_log   # KFlash.log reads the class attribute, not the instance's
    try:
        with tolerate_missing_modem_lines():
            k.process(terminal=False, dev=str(port), baudrate=int(baud), board=board, file=str(package),
                      callback=on_progress, noansi=True)
    except KeyboardInterrupt:
        back_to_maixpy(port)
        raise
    except Exception as e:  # kflash raises bare Exception for every failure
        raise FlashError("kflash failed on %s: %s" % (port, e)) from None
    finally:
        kflash.KFlash.print_callback = None  # kflash keeps it on the class
    text = out.getvalue()
    if "Greeting fail" in text or "Rebooting" not in text:   # success is only what kflash says at its very end
        last = [line for line in text.splitlines() if line.strip()][-1:] or ["no output"]
        raise FlashError("kflash did not finish on %s: %s" % (port, last[0].strip()))
    return text



REBOOT_FRAME = b"\xc0\xc0\xd5" + bytes(12) + b"\xc0"   # ends any half-sent frame, then the stub's reboot


def back_to_maixpy(port):
    """After Ctrl-C in the middle of kflash: ask the flash stub to reboot, and pulse reset with IO16 high (kflash's
    reset_to_boot for dan/bit), so the board runs MaixPy again instead of waiting in ISP. Best effort: the flash
    a model was going to is not listed yet (A/B), so whatever it holds, the board's models still run."""
    import time
    import serial
    try:
        with tolerate_missing_modem_lines():
            s = serial.Serial(str(port), REPL_BAUD, timeout=0.2)
            try:
                s.write(REBOOT_FRAME)
                s.dtr, s.rts = False, True
                time.sleep(0.1)
                s.rts, s.dtr = False, False
                time.sleep(0.1)
            finally:
                s.close()
    except (OSError, serial.SerialException):
        pass
