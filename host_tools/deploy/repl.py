"""MaixPy's REPL loop (MicroPython 1.11 pyexec) on the serial line: friendly, paste and raw modes, soft reboot.

What the host tools rely on, as the firmware does it:
- after a (soft) reset: boot.py runs, and main.py only when the REPL is in friendly mode;
- friendly: banner, `>>> `, echo; Ctrl-A on an empty line -> raw REPL, Ctrl-B -> banner, Ctrl-C -> new prompt,
  Ctrl-D -> soft reboot, Ctrl-E -> paste mode;
- raw: `raw REPL; CTRL-B to exit\\r\\n>`; code until Ctrl-D, then `OK`, stdout, `\\x04`, traceback, `\\x04`, `>`;
  Ctrl-D on an empty buffer -> soft reboot; Ctrl-A re-enters raw mode (so the raw-paste probe `\\x05A\\x01` gets
  the header reprinted, as MaixPy has no raw-paste mode); Ctrl-B -> friendly;
- Ctrl-C while code runs raises KeyboardInterrupt in it (the caller routes it to `interrupt()`).
Device code runs through a `runtime` (the simulated firmware); this module only speaks the line protocol.
"""
import codeop
import queue
import threading

CTRL_A, CTRL_B, CTRL_C, CTRL_D, CTRL_E = 1, 2, 3, 4, 5
BANNER = ("MicroPython v0.6.2-84-g8fcd84a58 on 2022-08-26; Sipeed_M1 with kendryte-k210\r\n"
          "Type \"help()\" for more information.\r\n")
BOOT_LOG = ("\r\n[MAIXPY]Pll0:freq:806000000\r\n[MAIXPY]Pll1:freq:398666666\r\n[MAIXPY]Pll2:freq:45066666\r\n"
            "[MAIXPY]cpu:freq:403000000\r\n[MAIXPY]kpu:freq:398666666\r\n[MAIXPY]Flash:0xc8:0x17\r\n"
            "open second core...\r\ngc heap=0x80300000-0x80380000(524288)\r\n")
RAW_HEADER = "raw REPL; CTRL-B to exit\r\n"
RX_BUFFER = 2048   # MaixPy's REPL UART receive buffer; what arrives beyond it while code runs is dropped
SOFT_REBOOT = "[MaixPy]: soft reboot\r\n"


class Stop(Exception):
    """The board is being reset or powered off: leave the loop."""


class HardReset(Exception):
    """Device code called machine.reset()."""


class Repl(threading.Thread):
    """The firmware's main loop in a thread: boot scripts, then REPL, forever (until stop())."""

    def __init__(self, runtime, write, hard_boot=True, on_hard_reset=None):
        super().__init__(daemon=True, name="maixpy")
        self.runtime = runtime          # new_session(write, hard) -> session: boot/exec/exec_single/interrupt
        self.write = write              # bytes -> serial line
        self.hard_boot = hard_boot
        self.on_hard_reset = on_hard_reset
        self.rx = queue.Queue()
        self.mode = "friendly"
        self.busy = False               # device code is running: Ctrl-C interrupts instead of queueing
        self.dropped = 0
        self.session = None
        self._stopping = False

    # ---- fed by the serial reader ----
    def feed(self, data: bytes):
        for b in data:
            if b == CTRL_C and self.busy and self.session is not None:
                self.session.interrupt()
            elif self.busy and self.rx.qsize() >= RX_BUFFER:
                self.dropped += 1       # UARTHS ring buffer full while code runs: the byte is lost
            else:
                self.rx.put(b)

    def stop(self):
        self._stopping = True
        self.rx.put(None)
        if self.busy and self.session is not None:
            self.session.interrupt()

    # ---- helpers ----
    def out(self, text):
        if not self._stopping:
            self.write(text.encode("utf-8") if isinstance(text, str) else text)

    def device_out(self, text):
        """stdout of device code: MicroPython cooks \\n into \\r\\n."""
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        self.out(text.replace("\r\n", "\n").replace("\n", "\r\n"))

    def getc(self) -> int:
        b = self.rx.get()
        if b is None or self._stopping:
            raise Stop()
        return b

    def run_device(self, fn, *args) -> str:
        """Run device code; return the traceback text ('' when it finished)."""
        self.busy = True
        try:
            fn(*args)
            return ""
        except HardReset:
            raise
        except Stop:
            raise
        except BaseException as e:      # device code may raise anything, KeyboardInterrupt included
            if self._stopping:
                raise Stop()
            return self.session.format_exception(e)
        finally:
            self.busy = False

    # ---- the firmware main loop ----
    def run(self):
        try:
            if self.hard_boot:
                self.out(BOOT_LOG)
            hard = self.hard_boot
            while True:
                self.session = self.runtime.new_session(self.device_out, hard)
                hard = False
                if self._stopping:          # reset while the session was being made
                    raise Stop()
                err = self.run_device(self.session.boot, self.mode == "friendly")
                if err:
                    self.out(err)
                while True:
                    r = self.raw_repl() if self.mode == "raw" else self.friendly_repl()
                    if r == "soft_reset":
                        break
                self.session.close()
                self.out(SOFT_REBOOT)
        except HardReset:
            if self.session is not None:
                self.session.close()
            if self.on_hard_reset:
                self.on_hard_reset()
        except Stop:
            if self.session is not None:
                self.session.close()

    def raw_repl(self):
        self.out(RAW_HEADER)
        while True:
            line = bytearray()
            self.out(">")
            while True:
                c = self.getc()
                if c == CTRL_A:
                    self.out(RAW_HEADER)  # re-enter raw mode: header again, buffer cleared
                    line = bytearray()
                    self.out(">")
                elif c == CTRL_B:
                    self.out("\r\n")
                    self.mode = "friendly"
                    return "mode"
                elif c == CTRL_C:
                    line = bytearray()
                elif c == CTRL_D:
                    break
                else:
                    line.append(c)
            if not line:
                self.out("\r\n")
                return "soft_reset"
            self.out("OK")
            err = self.run_device(self.session.exec, line.decode("utf-8", "replace"), "<stdin>")
            self.out("\x04")
            self.out(err)
            self.out("\x04")

    def readline(self, prompt):
        """Friendly-mode line editor: returns the line, or a control code (int) on an empty line."""
        self.out(prompt)
        line = ""
        while True:
            c = self.getc()
            if c in (CTRL_A, CTRL_B, CTRL_D, CTRL_E) and not line:
                return c
            if c == CTRL_C:
                return CTRL_C
            if c in (13, 10):
                self.out("\r\n")
                return line
            if c in (8, 127):
                if line:
                    line = line[:-1]
                    self.out("\b \b")
            elif c == 27:                 # escape sequences (arrows): swallow the next two bytes
                self.getc()
                self.getc()
            elif c >= 32:
                ch = chr(c)
                line += ch
                self.out(ch)

    def friendly_repl(self):
        self.out(BANNER)
        while True:
            r = self.readline(">>> ")
            if r == CTRL_A:
                self.out("\r\n")
                self.mode = "raw"
                return "mode"
            if r == CTRL_B:
                self.out("\r\n")
                return "mode"
            if r == CTRL_C:
                self.out("\r\n")
                continue
            if r == CTRL_D:
                self.out("\r\n")
                return "soft_reset"
            if r == CTRL_E:
                source = self.paste_mode()
                if source is None:
                    continue
            else:
                source = r
                if not source.strip():
                    continue
                while self._incomplete(source):
                    more = self.readline("... ")
                    if more == CTRL_C:
                        source = None
                        self.out("\r\n")
                        break
                    if not isinstance(more, str) or more == "":
                        break
                    source += "\n" + more
                if source is None:
                    continue
            err = self.run_device(self.session.exec_single, source)
            self.out(err)

    @staticmethod
    def _incomplete(source):
        try:
            return codeop.compile_command(source, "<stdin>", "single") is None
        except SyntaxError:
            return False

    def paste_mode(self):
        self.out("\r\npaste mode; Ctrl-C to cancel, Ctrl-D to finish\r\n=== ")
        buf = bytearray()
        while True:
            c = self.getc()
            if c == CTRL_C:
                self.out("\r\n")
                return None
            if c == CTRL_D:
                self.out("\r\n")
                return buf.decode("utf-8", "replace")
            buf.append(c)
            self.out(bytes([c]))
            if c == 13:
                self.out("\n=== ")
