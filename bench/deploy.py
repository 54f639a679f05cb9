"""Deploy throughput over the virtual Maix Bit's pty, each figure beside a reference measured in this run.

- flash writes (kflash 1.1.6 via our .kfpkg) in bytes/s, against the raw pty copy rate (the channel's ceiling);
- file copies (our sync.put_file: verified temp-and-rename) in bytes/s and round trips per file, against
  mpremote's own fs_writefile (one exec per 256 bytes) on the same board in the same run;
- and flash writes against our file copies: the reason kmodels go into flash through kflash.
Run: .venv/bin/python bench/deploy.py
"""
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from host_tools.deploy import flasher, kfpkg, sync  # noqa: E402
from host_tools.deploy.link import Link  # noqa: E402

sys.path.insert(0, str(ROOT / "tests"))
from test_deploy_support import pattern  # noqa: E402




def pty_ceiling(n=4 << 20) -> float:
    """bytes/s of a plain pty pair on this machine: write one end, read the other."""
    import tty
    master, slave = os.openpty()
    tty.setraw(slave)
    data = pattern(65536, 0)
    got = [0]

    def reader():
        while got[0] < n:
            got[0] += len(os.read(master, 65536))

    t = threading.Thread(target=reader)
    t0 = time.perf_counter()
    t.start()
    sent = 0
    while sent < n:
        sent += os.write(slave, data[:min(len(data), n - sent)])
    t.join()
    dt = time.perf_counter() - t0
    os.close(master)
    os.close(slave)
    return n / dt


def start_board(state):
    p = subprocess.Popen([sys.executable, "-m", "host_tools", "board", "--state", str(state)], cwd=ROOT,
                         stdout=subprocess.PIPE, text=True)
    port = p.stdout.readline().split()[-1]
    return p, port


def main():
    ceiling = pty_ceiling()
    print("pty ceiling (reference): %.0f bytes/s" % ceiling)
    with tempfile.TemporaryDirectory(prefix="bench-deploy-") as tmp:
        proc, port = start_board(Path(tmp) / "board")
        try:
            model = pattern(1 << 20, 1)
            pkg = kfpkg.write(Path(tmp) / "b.kfpkg", [kfpkg.Entry(0x300000, "m.kmodel", model, False)])
            t0 = time.perf_counter()
            flasher.flash(pkg, port, board="bit", baud=1500000)
            dt = time.perf_counter() - t0
            rate = len(model) / dt
            print("flash write: %d bytes in %.2f s = %.0f bytes/s (%.3f of the pty ceiling; includes ISP "
                  "reset, stub upload and reboot)" % (len(model), dt, rate, rate / ceiling))
            time.sleep(1.0)

            link = Link(port)
            files = {"f%d.py" % i: pattern(n, 10 + i) for i, n in enumerate((200, 2000, 9000, 33000))}
            total = sum(len(v) for v in files.values())
            t0 = time.perf_counter()
            trips0 = link.round_trips
            for name, data in files.items():
                sync.put_file(link, "/flash/" + name, data)
            dt_ours = time.perf_counter() - t0
            trips_ours = link.round_trips - trips0
            t0 = time.perf_counter()
            trips0 = link.round_trips
            rep = sync.sync(link, files, "/flash", log=lambda s: None)
            dt_noop = time.perf_counter() - t0
            app = sync.device_files(ROOT / "device")
            app_rep = sync.sync(link, app, "/flash", log=lambda s: None)
            t = link._t
            t0 = time.perf_counter()
            for name, data in files.items():
                t.fs_writefile("/flash/m_" + name, data)
            dt_mp = time.perf_counter() - t0
            trips_mp = sum(2 + (len(d) + 255) // 256 for d in files.values())  # open, one per 256 B, close
            link.close()
            print("file copy (ours): %d bytes in %d files, %.2f s = %.0f bytes/s, %.2f round trips per file"
                  % (total, len(files), dt_ours, total / dt_ours, trips_ours / len(files)))
            print("file copy (mpremote fs_writefile, reference): %.2f s = %.0f bytes/s, %.2f round trips per file"
                  % (dt_mp, total / dt_mp, trips_mp / len(files)))
            print("ratio ours/mpremote: %.2fx bytes/s, %.2fx fewer round trips"
                  % ((total / dt_ours) / (total / dt_mp), trips_mp / max(trips_ours, 1)))
            print("device/ app sync: %d files, %d bytes, %d round trips (%.2f per file, the hash query included)"
                  % (len(app), app_rep.bytes_copied, app_rep.round_trips, app_rep.round_trips / len(app)))
            print("unchanged re-sync: %d files skipped in %d round trip(s), %.2f s"
                  % (len(rep.skipped), rep.round_trips, dt_noop))
            print("kmodel by kflash vs by REPL file copy: %.1fx the bytes/s (why models go to flash, not /flash)"
                  % (rate / (total / dt_ours)))
        except Exception:
            log = Path(tmp) / "board" / "board.log"
            print("board log:\n" + (log.read_text() if log.exists() else "(none)"))
            raise
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
