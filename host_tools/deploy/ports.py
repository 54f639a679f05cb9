"""Which serial port the board is on, found as the MicroPython tools find it.

--port if given; else $MAIXKIT_PORT, else $PORT (the variable `make deploy PORT=...` sets); else the one board
that is plugged in or running: USB serial bridges of the vendors kflash's own auto-detect looks for (pyserial's
list_ports), and the virtual board of `make board`, which advertises its pty in <state>/port.json while it runs.
"""
import json
import os
from dataclasses import dataclass
from pathlib import Path

ENV = ("MAIXKIT_PORT", "PORT")
# kflash 1.1.6's VID_LIST_FOR_AUTO_LOOKUP: the USB serial bridges of Sipeed's K210 boards (the Maix Bit's CH552
# enumerates as an FTDI FT2232, two interfaces, the first is the K210's UART) and of common adapters.
USB_VENDORS = {0x0403: "FTDI", 0x1A86: "WCH", 0x067B: "Prolific", 0x10C4: "Silicon Labs", 0xC251: "Keil"}
VIRTUAL_STATE = Path("out") / "board"          # `python -m host_tools board`'s default --state, from the cwd
ADVERT = "port.json"
HELP = "serial port (default: $MAIXKIT_PORT, $PORT, or the one board plugged in or started by `make board`)"


class PortError(ValueError):
    """No port given and not exactly one board found; the message says what to do."""


@dataclass(frozen=True)
class Found:
    port: str
    what: str


def advertise(state, port):
    """The virtual board says where it is (removed by withdraw when it stops)."""
    from host_tools.files import write_atomic
    write_atomic(Path(state) / ADVERT, json.dumps({"port": port, "pid": os.getpid()}) + "\n")


def withdraw(state):
    p = Path(state) / ADVERT
    try:
        if json.loads(p.read_text()).get("pid") == os.getpid():
            p.unlink()
    except (OSError, ValueError):
        pass


def virtual(state=VIRTUAL_STATE) -> list:
    """The virtual board advertised in `state`, if its process still runs and its pty is there."""
    try:
        d = json.loads((Path(state) / ADVERT).read_text())
        port, pid = str(d["port"]), int(d["pid"])
        os.kill(pid, 0)
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [Found(port, "virtual Maix Bit (state %s)" % state)] if os.path.exists(port) else []


def usb() -> list:
    """USB serial ports from the boards' bridge vendors, one per USB device (its first interface)."""
    from serial.tools import list_ports
    seen, out = set(), []
    for p in sorted(list_ports.comports(), key=lambda p: p.device):
        if p.vid not in USB_VENDORS:
            continue
        device = (p.vid, p.pid, p.serial_number or (p.location or p.device).split(":")[0])
        if device in seen:
            continue
        seen.add(device)
        out.append(Found(p.device, "%s %04X:%04X %s" % (USB_VENDORS[p.vid], p.vid, p.pid, p.description or "")))
    return out


def resolve(given=None, env=None) -> str:
    """The port to use (see the module doc); PortError when there is no single answer."""
    if given:
        return given
    env = os.environ if env is None else env
    for name in ENV:
        if env.get(name):
            return env[name]
    found = usb() + virtual()
    if len(found) == 1:
        return found[0].port
    if not found:
        raise PortError("no board found: plug one in, give --port (or set MAIXKIT_PORT), or start the virtual "
                        "board with `make board`")
    raise PortError("%d boards found (%s): give --port or set MAIXKIT_PORT"
                    % (len(found), "; ".join("%s %s" % (f.port, f.what) for f in found)))

