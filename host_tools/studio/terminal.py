"""The REPL pane: the board's serial line as a terminal (xterm.js in the page).

While no file action holds the line (BoardFiles.lock), what the board prints goes to the page and the keys typed
there go to the board, byte for byte, as `fs repl` (mpremote's terminal) passes them: Ctrl-C stops the running
app and the friendly REPL answers. Reading also keeps a pty nobody else reads from filling up, which would make
the virtual firmware wait on every write.
"""
import codecs
import threading

from host_tools.k210.firmware import REPL_BAUD as BAUD

IDLE_READ_S = 0.05


class Terminal:
    def __init__(self, port, lock):
        self.port, self.lock = port, lock    # the lock BoardFiles takes for each action: one user of the line
        self._stop = threading.Event()
        self._line = None
        self._thread = None

    def start(self, out):
        """out(text) gets the board's output as it comes (UTF-8 split across reads is joined first)."""
        import serial
        self._line = serial.Serial(self.port, BAUD, timeout=0)
        decoder = codecs.getincrementaldecoder("utf-8")("replace")

        def follow():
            try:
                while not self._stop.is_set():
                    if self.lock.acquire(timeout=0.2):
                        try:
                            data = self._line.read(65536)
                        finally:
                            self.lock.release()
                        text = decoder.decode(data) if data else ""
                        if text:
                            out(text)
                    self._stop.wait(IDLE_READ_S)
            except Exception as e:          # a board unplugged: said in the pane, not a silent stop
                out("\r\n[studio: the serial line %s failed: %s; restart the studio]\r\n" % (self.port, e))
            finally:
                self._line.close()
        self._thread = threading.Thread(target=follow, daemon=True, name="studio-terminal")
        self._thread.start()
        return self

    def keys(self, data: bytes) -> None:
        """Typed keys to the board; they wait while a file action has the line."""
        with self.lock:
            self._line.write(data)

    def close(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
