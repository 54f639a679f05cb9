"""An SD card in the board, handled as the firmware treats it.

With a card in, MaixPy makes /sd the current directory and runs boot.py and main.py from it only (maixpy_main.c);
its _boot.py writes Sipeed's welcome main.py there when the card has none. An app deployed to /flash would then
never start. So before anything is written, `check` asks the board and decides:
- no card: nothing to do;
- the app goes to /sd (--target /sd): the firmware runs it from there;
- the app goes to /flash and /sd/main.py is absent, the firmware's welcome script or our launcher: `install`
  writes LAUNCHER, a short /sd/main.py that runs the /flash app;
- /sd/main.py is something else (the user's own): deploy refuses, naming the file, before writing anything.
"""
import ast
from dataclasses import dataclass

from host_tools.deploy.sync import SyncError, put_file
from host_tools.k210.startup import WELCOME_MARK

LAUNCHER_MARK = "# maixkit launcher"
LAUNCHER = (LAUNCHER_MARK + ": with an SD card in, MaixPy runs only /sd's main.py; this one starts the app "
            "installed in /flash\n"
            "import uos\n"
            "uos.chdir('/flash')\n"
            "exec(open('/flash/main.py').read())\n").encode()

PROBE = """
import uos
_r = {'card': 'sd' in uos.listdir('/')}
if _r['card']:
 _l = uos.listdir('/sd')
 _r['boot'] = 'boot.py' in _l
 if 'main.py' in _l:
  _f = open('/sd/main.py')
  _r['main'] = _f.read(4096)
  _f.close()
print(repr(_r))
"""


class SdCardError(SyncError):
    """The card's own main.py would run instead of the deployed app; the message says what to do."""


@dataclass
class CardPlan:
    card: bool
    launcher: bool = False      # install LAUNCHER as /sd/main.py
    note: str = ""              # what deploy says about the card


def check(link, target: str) -> CardPlan:
    """Ask the board about its card and decide; SdCardError when deploying to /flash cannot start the app."""
    state = ast.literal_eval(link.exec(PROBE, timeout=30).decode().strip())
    if not state["card"]:
        return CardPlan(False)
    if target == "/sd":
        return CardPlan(True, note="SD card: the app goes to /sd, where MaixPy runs boot.py and main.py from")
    main = state.get("main")
    if main == LAUNCHER.decode():
        return CardPlan(True, note="SD card: /sd/main.py already starts the /flash app")
    if main is not None and not (main.startswith(LAUNCHER_MARK) or WELCOME_MARK in main):
        raise SdCardError("SD card: /sd/main.py is not the firmware's welcome script and MaixPy runs it instead of "
                          "the /flash app when a card is in; deploy with --target /sd, or remove /sd/main.py "
                          "(nothing was written)")
    note = ("SD card: MaixPy runs only /sd's boot.py and main.py when a card is in; installing /sd/main.py that "
            "starts the /flash app")
    if state.get("boot"):
        note += " (/sd/boot.py runs at start-up instead of /flash/boot.py)"
    return CardPlan(True, launcher=True, note=note)


def install(link, plan: CardPlan, log=print) -> None:
    if plan.launcher:
        put_file(link, "/sd/main.py", LAUNCHER)
        log("  copied /sd/main.py (%d bytes): starts /flash/main.py" % len(LAUNCHER))
