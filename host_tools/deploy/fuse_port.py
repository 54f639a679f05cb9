"""A serial port file with modem lines, served in userspace through FUSE: what the real kflash command line needs.

kflash resets a Maix Bit into its ISP ROM with DTR and RTS (TIOCMBIS/TIOCMBIC ioctls). A pseudo-terminal has no
modem lines: those ioctls fail with ENOTTY and kflash stops at "Greeting fail". The kernel's FUSE hands ioctls
on a FUSE file to its server, so this module serves one file, `<mount>/ttyUSB0`, that pyserial opens like a
serial port: bytes written to it go to the board, the board's output is read from it (read and poll, so
pyserial's select() and timeouts work), every termios ioctl succeeds, and DTR/RTS changes reach the board
(`on_lines(dtr, rts)`). FUSE passes such ioctls without their argument, so the int that TIOCMBIS/TIOCMBIC point
to is read from the caller's memory (/proc/PID/mem: the caller is blocked in the ioctl meanwhile); a caller
whose memory cannot be read still gets success, and the board then learns of the reset from the traffic.

Mounting needs root (mount(2)) or, for a normal user, fusermount3 (the fuse3 package) installed setuid root, as
distributions ship it; `available()` says what is missing and how to get it. A helper process unmounts the folder
when the board process ends, however it ends. The kernel ABI used is
FUSE 7.31 (include/uapi/linux/fuse.h).
"""
import ctypes
import errno
import os
import shutil
import socket
import stat
import struct
import subprocess
import sys
import threading
from pathlib import Path

NAME = "ttyUSB0"
ROOT_INO, PORT_INO = 1, 2

# opcodes
LOOKUP, FORGET, GETATTR, SETATTR, OPEN, READ, WRITE, STATFS, RELEASE, FSYNC = 1, 2, 3, 4, 14, 15, 16, 17, 18, 20
FLUSH, INIT, OPENDIR, READDIR, RELEASEDIR, ACCESS, INTERRUPT, DESTROY, IOCTL, POLL = 25, 26, 27, 28, 29, 34, 36, \
    38, 39, 40
BATCH_FORGET = 42
NO_REPLY = (FORGET, BATCH_FORGET, INTERRUPT)
FOPEN_DIRECT_IO, FOPEN_NONSEEKABLE = 1, 4
POLL_SCHEDULE_NOTIFY = 1
NOTIFY_POLL = 1
POLLIN, POLLOUT = 0x1, 0x4

# the tty ioctls pyserial and kflash make
TCFLSH, TIOCMGET, TIOCMBIS, TIOCMBIC, TIOCMSET = 0x540B, 0x5415, 0x5416, 0x5417, 0x5418
TIOCM_DTR, TIOCM_RTS = 0x002, 0x004
TCIFLUSH, TCIOFLUSH = 0, 2

IN_HEADER = struct.Struct("<IIQQIIIHH")       # len, opcode, unique, nodeid, uid, gid, pid, extlen, pad
OUT_HEADER = struct.Struct("<IiQ")            # len, error, unique
MAX_WRITE = 1 << 17
BUFFER_LIMIT = 1 << 20                        # board output kept for a reader that is slow to read


class PortError(RuntimeError):
    """The FUSE port cannot be served here; the message says why."""


def _fusermount():
    return shutil.which("fusermount3") or shutil.which("fusermount")


# What a normal user lacks, each with the fix; as root mount(2) needs none of it.
NO_DEV_FUSE = "no /dev/fuse: the kernel has no FUSE (load it: sudo modprobe fuse)"
NO_FUSERMOUNT = "not root and no fusermount3: install the fuse3 package (sudo apt install fuse3)"
CANNOT_RUN = ("%s is not executable by you: join the group it belongs to (sudo usermod -aG %s $USER, then log in "
              "again)")
NOT_SETUID = "%s is not setuid root, so it cannot mount for you (sudo chmod u+s %s)"
MOUNT_FAILED = ("%s could not mount %s: %s (a normal user needs fusermount3 setuid root and read-write access to "
                "/dev/fuse, e.g. through the fuse group)")


def available() -> str:
    """'' when a FUSE port can be mounted here, else what is missing and how a user gets it."""
    if not os.path.exists("/dev/fuse"):
        return NO_DEV_FUSE
    if os.geteuid() == 0:
        return ""
    fm = _fusermount()
    if not fm:
        return NO_FUSERMOUNT
    st = os.stat(fm)
    if not os.access(fm, os.X_OK):
        import grp
        try:
            group = grp.getgrgid(st.st_gid).gr_name
        except KeyError:
            group = str(st.st_gid)
        return CANNOT_RUN % (fm, group)
    if st.st_uid != 0 or not st.st_mode & stat.S_ISUID:
        return NOT_SETUID % (fm, fm)
    return ""


def _attr(ino: int) -> bytes:
    mode = (stat.S_IFDIR | 0o755) if ino == ROOT_INO else (stat.S_IFREG | 0o666)
    # ino, size, blocks, atime, mtime, ctime, {a,m,c}timensec, mode, nlink, uid, gid, rdev, blksize, flags
    return struct.pack("<QQQQQQIIIIIIIIII", ino, 0, 0, 0, 0, 0, 0, 0, 0, mode, 1, os.getuid(), os.getgid(), 0,
                       4096, 0)


def _dirent(ino: int, off: int, name: bytes, dtype: int) -> bytes:
    ent = struct.pack("<QQII", ino, off, len(name), dtype) + name
    return ent + bytes(-len(ent) % 8)


class FusePort:
    def __init__(self, folder, on_write, on_lines=None):
        """folder: where to mount (made if missing); on_write(bytes): what the host sent; on_lines(dtr, rts):
        the modem lines changed."""
        self.folder = Path(folder)
        self.on_write = on_write
        self.on_lines = on_lines
        self.path = self.folder / NAME
        self.dtr = self.rts = False
        self._fd = None
        self._lock = threading.Lock()
        self._out = bytearray()              # board -> host, while the port is open
        self._open = set()                   # open file handles
        self._next_fh = 1
        self._parked = {}                    # unique -> size: blocking reads waiting for data
        self._poll_kh = set()                # poll handles to wake when data comes
        self._guard = None
        self._thread = None

    # ---- mounting ----
    def start(self):
        why = available()
        if why:
            raise PortError(why)
        self._unmount_stale()
        self.folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            self._fd = os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC)
            opts = "fd=%d,rootmode=40000,user_id=0,group_id=0,allow_other" % self._fd
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.mount(b"maixport", str(self.folder).encode(), b"fuse.maixport", 2 | 4, opts.encode()) != 0:
                e = ctypes.get_errno()
                os.close(self._fd)
                raise PortError("mount of %s failed: %s" % (self.folder, os.strerror(e)))
        else:
            self._fd = self._mount_with_fusermount()
        try:
            self._guard = subprocess.Popen([sys.executable, "-c", GUARD, str(self.folder), _fusermount() or ""],
                                           stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL, start_new_session=True)
        except OSError as e:        # no guard, no mount: one left behind would outlive this process
            self.close()
            raise PortError("cannot start the helper that unmounts %s when the board stops: %s"
                            % (self.folder, e)) from None
        self._thread = threading.Thread(target=self._serve, daemon=True, name="fuse-port")
        self._thread.start()
        return self

    def _mount_with_fusermount(self) -> int:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            env = dict(os.environ, _FUSE_COMMFD=str(child.fileno()))
            p = subprocess.run([_fusermount(), "-o", "rw,nosuid,nodev,fsname=maixport,subtype=maixport", "--",
                                str(self.folder)], env=env, pass_fds=(child.fileno(),), capture_output=True,
                               text=True, timeout=30)
            if p.returncode != 0:
                why = "; ".join(line for line in p.stderr.splitlines() if line.strip()) or "exit %d" % p.returncode
                raise PortError(MOUNT_FAILED % (_fusermount(), self.folder, why))
            _, fds, _, _ = socket.recv_fds(parent, 16, 1)
            if not fds:
                raise PortError("fusermount mounted %s but passed no file descriptor" % self.folder)
            return fds[0]
        finally:
            parent.close()
            child.close()

    def _unmount_stale(self):
        """A folder left mounted by a board that was killed before its guard could act: unmount it."""
        try:
            os.stat(self.folder)
        except OSError as e:
            if e.errno == errno.ENOTCONN:
                unmount(self.folder)

    def close(self):
        if self._fd is None:
            return
        unmount(self.folder)
        fd, self._fd = self._fd, None
        try:
            os.close(fd)
        except OSError:
            pass
        if self._guard is not None:
            try:
                self._guard.stdin.close()
                self._guard.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass

    @property
    def is_open(self) -> bool:
        return bool(self._open)

    # ---- board side ----
    def feed(self, data: bytes):
        """Board output: kept for the host while the port is open (a closed port loses it, as a UART does)."""
        if not data:
            return
        with self._lock:
            if not self._open:
                return
            self._out += data
            if len(self._out) > BUFFER_LIMIT:
                del self._out[:len(self._out) - BUFFER_LIMIT]
            parked, self._parked = self._parked, {}
            wake, self._poll_kh = self._poll_kh, set()
        for unique, size in parked.items():
            self._answer_read(unique, size)
        for kh in wake:
            self._send(OUT_HEADER.pack(OUT_HEADER.size + 8, NOTIFY_POLL, 0) + struct.pack("<Q", kh))

    # ---- the FUSE protocol ----
    def _send(self, data: bytes):
        fd = self._fd
        if fd is None:
            return
        try:
            os.write(fd, data)
        except OSError:
            pass      # the request was interrupted meanwhile, or the mount is going away

    def _reply(self, unique, body=b"", err=0):
        self._send(OUT_HEADER.pack(OUT_HEADER.size + len(body), -err, unique) + body)

    def _answer_read(self, unique, size):
        with self._lock:
            data = bytes(self._out[:size])
            del self._out[:len(data)]
        self._reply(unique, data)

    def _serve(self):
        while self._fd is not None:
            try:
                req = os.read(self._fd, MAX_WRITE + 4096)
            except OSError as e:
                if e.errno in (errno.EINTR, errno.EAGAIN, errno.ENOENT):
                    continue
                return          # ENODEV: unmounted
            if len(req) < IN_HEADER.size:
                continue
            _, op, unique, node, _, _, pid, _, _ = IN_HEADER.unpack_from(req)
            body = req[IN_HEADER.size:]
            try:
                self._handle(op, unique, node, pid, body)
            except Exception:     # a malformed request must not stop the port
                if op not in NO_REPLY:
                    self._reply(unique, err=errno.EIO)
            if op == DESTROY:
                return

    def _handle(self, op, unique, node, pid, body):
        if op == INIT:
            major, minor, readahead, flags = struct.unpack_from("<IIII", body)
            self._reply(unique, struct.pack("<IIIIHHIIHHII", 7, 31, readahead, 0, 16, 12, MAX_WRITE, 1, 0, 0, 0, 0)
                        + bytes(24))
        elif op == LOOKUP:
            if body.split(b"\0")[0] == NAME.encode() and node == ROOT_INO:
                self._reply(unique, struct.pack("<QQQQII", PORT_INO, 0, 1, 1, 0, 0) + _attr(PORT_INO))
            else:
                self._reply(unique, err=errno.ENOENT)
        elif op in (GETATTR, SETATTR):
            self._reply(unique, struct.pack("<QII", 1, 0, 0) + _attr(node))
        elif op in (OPEN, OPENDIR):
            with self._lock:
                fh, self._next_fh = self._next_fh, self._next_fh + 1
                if op == OPEN:
                    self._open.add(fh)
            self._reply(unique, struct.pack("<QIi", fh, FOPEN_DIRECT_IO | FOPEN_NONSEEKABLE if op == OPEN else 0, 0))
        elif op == READ:
            fh, _, size, _, _, flags = struct.unpack_from("<QQIIQI", body)
            with self._lock:
                waiting = not self._out
                if waiting and not flags & os.O_NONBLOCK:
                    self._parked[unique] = size
                    return
            if waiting:
                self._reply(unique, err=errno.EAGAIN)
            else:
                self._answer_read(unique, size)
        elif op == WRITE:
            fh, _, size = struct.unpack_from("<QQI", body)
            data = body[40:40 + size]
            self.on_write(bytes(data))
            self._reply(unique, struct.pack("<II", len(data), 0))
        elif op == POLL:
            fh, kh, flags, events = struct.unpack_from("<QQII", body)
            with self._lock:
                ready = bool(self._out)
                if not ready and flags & POLL_SCHEDULE_NOTIFY:
                    self._poll_kh.add(kh)
            self._reply(unique, struct.pack("<II", POLLOUT | (POLLIN if ready else 0), 0))
        elif op == IOCTL:
            fh, flags, cmd, arg, in_size, out_size = struct.unpack_from("<QIIQII", body)
            self._ioctl(cmd, arg, pid)
            self._reply(unique, struct.pack("<iIII", 0, 0, 0, 0) + bytes(out_size))
        elif op == INTERRUPT:
            (target,) = struct.unpack_from("<Q", body)
            with self._lock:
                was_parked = self._parked.pop(target, None) is not None
            if was_parked:
                self._reply(target, err=errno.EINTR)
        elif op == RELEASE:
            (fh,) = struct.unpack_from("<Q", body)
            with self._lock:
                self._open.discard(fh)
                if not self._open:
                    self._out.clear()
            self._reply(unique)
        elif op == READDIR:
            fh, offset, size = struct.unpack_from("<QQI", body)
            ents = [(ROOT_INO, b".", 4), (ROOT_INO, b"..", 4), (PORT_INO, NAME.encode(), 8)]
            out = b"".join(_dirent(ino, i + 1, name, t) for i, (ino, name, t) in enumerate(ents) if i >= offset)
            self._reply(unique, out[:size])
        elif op in (RELEASEDIR, FLUSH, FSYNC, ACCESS):
            self._reply(unique)
        elif op == STATFS:
            self._reply(unique, bytes(80))
        elif op in NO_REPLY or op == DESTROY:
            pass
        else:
            self._reply(unique, err=errno.ENOSYS)

    def _ioctl(self, cmd, arg, pid):
        if cmd == TCFLSH and arg in (TCIFLUSH, TCIOFLUSH):
            with self._lock:
                self._out.clear()
            return
        if cmd not in (TIOCMBIS, TIOCMBIC, TIOCMSET):
            return        # termios settings, baud rate, drain: a pipe to a simulated UART needs none of them
        try:
            with open("/proc/%d/mem" % pid, "rb") as mem:
                mem.seek(arg)
                (bits,) = struct.unpack("<I", mem.read(4))
        except (OSError, ValueError, struct.error):
            return        # the caller's memory is not ours to read: the lines stay as they were
        dtr, rts = self.dtr, self.rts
        if cmd == TIOCMSET:
            dtr, rts = bool(bits & TIOCM_DTR), bool(bits & TIOCM_RTS)
        else:
            on = cmd == TIOCMBIS
            dtr = on if bits & TIOCM_DTR else dtr
            rts = on if bits & TIOCM_RTS else rts
        if (dtr, rts) != (self.dtr, self.rts):
            self.dtr, self.rts = dtr, rts
            if self.on_lines is not None:
                self.on_lines(dtr, rts)


def unmount(folder):
    """Lazy unmount (the folder is free at once, open files finish on their own)."""
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.umount2(str(folder).encode(), 2)          # MNT_DETACH
    elif _fusermount():
        subprocess.run([_fusermount(), "-u", "-z", str(folder)], capture_output=True, timeout=30)


# Run in a separate process: waits for the board process to end (its stdin closes), then unmounts.
GUARD = """
import ctypes, os, subprocess, sys
sys.stdin.buffer.read()
folder, fusermount = sys.argv[1], sys.argv[2]
if os.geteuid() == 0:
    ctypes.CDLL(None).umount2(folder.encode(), 2)
elif fusermount:
    subprocess.run([fusermount, "-u", "-z", folder], capture_output=True)
"""
