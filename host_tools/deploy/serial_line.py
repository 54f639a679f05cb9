"""The board end of a pseudo-terminal: the UART a host tool opens as /dev/pts/N.

We keep the slave end open ourselves so the master never sees EOF/EIO between host connections, and write
without blocking: a real UART with nobody listening loses its output too, so after a short wait the bytes are
dropped rather than stalling the board.
"""
import errno
import os
import select
import tty


class SerialLine:
    def __init__(self):
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)            # no echo, no CR/LF translation: a UART passes bytes through
        os.set_blocking(self.master, False)
        self.port = os.ttyname(self.slave)
        self.dropped = 0

    def read(self, timeout=0.1) -> bytes:
        r, _, _ = select.select([self.master], [], [], timeout)
        if not r:
            return b""
        try:
            return os.read(self.master, 65536)
        except BlockingIOError:
            return b""
        except OSError as e:
            if e.errno == errno.EIO:
                return b""
            raise

    def write(self, data: bytes, wait=2.0):
        view = memoryview(bytes(data))
        while view:
            try:
                n = os.write(self.master, view)
                view = view[n:]
                continue
            except BlockingIOError:
                pass
            _, w, _ = select.select([], [self.master], [], wait)
            if not w:                     # nobody is reading: the bytes fall on the floor
                self.dropped += len(view)
                return

    def close(self):
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass
