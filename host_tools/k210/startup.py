"""What the K210 and MaixPy do at power-up (maixpy_main.c, builtin_py/_boot.py).

- The ROM samples IO16 at reset: the BOOT key held low starts its ISP download mode (kflash's way in); MaixPy
  does not run.
- MaixPy mounts /flash and the SD card; with a card in, /sd is the current directory and boot.py and main.py run
  from it only. _boot.py writes a main.py into the current directory when it has none: Sipeed's welcome script,
  recognisable by WELCOME_MARK. /sd/cover.boot.py and cover.main.py are copied over /flash's (then a reset).
"""
ISP_PIN = 16                    # IO16: the BOOT key
SCRIPTS = ("boot.py", "main.py")
COVER_PREFIX = "cover."
WELCOME_MARK = "Welcome to MaixPy"
IDE_WAIT_MS = 200               # _boot.py's pause for the IDE's key interrupt
