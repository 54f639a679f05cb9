"""The board's file systems on host folders: /flash (SPIFFS: flat, no directories) and /sd (FAT, optional).

Paths are the device's: absolute ("/flash/main.py") or relative to the current directory. Errors are raised as
MicroPython raises them: OSError(errno) for missing files, NotImplementedError("SPIFFS not support") for mkdir
on /flash (vfs_spiffs.c). Writing a nested path on /flash is refused with ENOENT: SPIFFS has no directories,
and whether a name with '/' would be accepted on the board is unknown, so the conservative answer is no.
"""
import errno
import os
import posixpath
from pathlib import Path

from host_tools.k210.flash import SPIFFS_SIZE


def oserror(code: int) -> OSError:
    # MicroPython prints "[Errno 2] ENOENT"; args[0] is the number in both interpreters.
    return OSError(code, errno.errorcode.get(code, str(code)))


class DeviceFs:
    def __init__(self, flash_root: Path, sd_root=None):
        self.flash_root = Path(flash_root)
        self.sd_root = Path(sd_root) if sd_root is not None else None
        self.cwd = "/flash"

    # -- paths --
    def mounts(self) -> list:
        return ["flash"] + (["sd"] if self.sd_root is not None else [])

    def normalize(self, path: str) -> str:
        if not isinstance(path, str):
            raise TypeError("can't convert '%s' object to str implicitly" % type(path).__name__)
        p = path if path.startswith("/") else posixpath.join(self.cwd, path)
        p = posixpath.normpath(p)
        return "/" if p in ("/", "//") else p

    def resolve(self, path: str):
        """Device path -> (mount, host Path, path inside the mount). '/' itself gives mount None."""
        p = self.normalize(path)
        if p == "/":
            return None, None, ""
        parts = p.lstrip("/").split("/", 1)
        mount, rest = parts[0], parts[1] if len(parts) > 1 else ""
        if mount == "flash":
            root = self.flash_root
        elif mount == "sd" and self.sd_root is not None:
            root = self.sd_root
        else:
            raise oserror(errno.ENOENT)
        return mount, (root / rest if rest else root), rest

    # -- operations (os module) --
    def listdir(self, path: str = None) -> list:
        mount, host, rest = self.resolve(self.cwd if path is None else path)
        if mount is None:
            return self.mounts()
        if not host.is_dir():
            raise oserror(errno.ENOENT if not host.exists() else errno.ENOTDIR)
        return sorted(e.name for e in host.iterdir() if not e.name.startswith(".sim"))

    def mkdir(self, path: str) -> None:
        mount, host, rest = self.resolve(path)
        if mount == "flash":
            raise NotImplementedError("SPIFFS not support")
        if mount is None or not rest:
            raise oserror(errno.EEXIST)
        if host.exists():
            raise oserror(errno.EEXIST)
        if not host.parent.is_dir():
            raise oserror(errno.ENOENT)
        host.mkdir()

    def rmdir(self, path: str) -> None:
        mount, host, rest = self.resolve(path)
        if mount == "flash":
            raise NotImplementedError("SPIFFS not support")
        if not host.is_dir():
            raise oserror(errno.ENOENT)
        if any(host.iterdir()):
            raise oserror(errno.EACCES)
        host.rmdir()

    def chdir(self, path: str) -> None:
        p = self.normalize(path)
        mount, host, rest = self.resolve(p)
        if mount is None or not host.is_dir():
            raise oserror(errno.ENOENT)
        self.cwd = p

    def remove(self, path: str) -> None:
        mount, host, rest = self.resolve(path)
        if host is None or not host.is_file():
            raise oserror(errno.ENOENT)
        host.unlink()

    def rename(self, old: str, new: str) -> None:
        m1, h1, _ = self.resolve(old)
        m2, h2, r2 = self.resolve(new)
        if h1 is None or not h1.exists():
            raise oserror(errno.ENOENT)
        if m1 != m2:
            raise oserror(errno.EXDEV)
        if m2 == "flash" and "/" in r2:
            raise oserror(errno.ENOENT)
        os.replace(h1, h2)

    def stat(self, path: str) -> tuple:
        mount, host, rest = self.resolve(path)
        if mount is None:
            return (0x4000, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        if not host.exists():
            raise oserror(errno.ENOENT)
        if host.is_dir():
            return (0x4000, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        return (0x8000, 0, 0, 0, 0, 0, host.stat().st_size, 0, 0, 0)

    def statvfs(self, path: str) -> tuple:
        mount, host, rest = self.resolve(path)
        if mount == "flash":
            used = sum(f.stat().st_size for f in self.flash_root.iterdir() if f.is_file())
            bsize = 4096
            total = SPIFFS_SIZE // bsize
            free = max(0, (SPIFFS_SIZE - used) // bsize)
            return (bsize, bsize, total, free, free, 0, 0, 0, 0, 255)
        bsize = 32768
        return (bsize, bsize, 4096, 4000, 4000, 0, 0, 0, 0, 255)

    def host_path_for_open(self, path: str, mode: str) -> Path:
        mount, host, rest = self.resolve(path)
        if mount is None or not rest:
            raise oserror(errno.EISDIR)
        writing = any(c in mode for c in "wax+")
        if mount == "flash" and "/" in rest:
            raise oserror(errno.ENOENT)
        if host.is_dir():
            raise oserror(errno.EISDIR)
        if not writing and not host.is_file():
            raise oserror(errno.ENOENT)
        if writing and not host.parent.is_dir():
            raise oserror(errno.ENOENT)
        return host

    def read_bytes(self, path: str) -> bytes:
        return self.host_path_for_open(path, "rb").read_bytes()

    def is_file(self, path: str) -> bool:
        try:
            mount, host, rest = self.resolve(path)
        except OSError:
            return False
        return host is not None and bool(rest) and host.is_file()
