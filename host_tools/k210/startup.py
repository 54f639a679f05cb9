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


def reset_lines(dtr: bool, rts: bool) -> tuple:
    """(EN held low, IO16 held low) for the Maix Bit's USB-serial reset circuit, given the host's DTR and RTS
    (kflash -B bit/dan: RTS resets the chip, DTR pulls IO16 low). Its two transistors cancel when both lines are
    asserted, so a tool that opens the port with both set (pyserial's default) does not reset the board."""
    return rts and not dtr, dtr and not rts


# The chip leaves reset a little after EN rises (its RC) and samples IO16 then: kflash releases RTS, then asserts
# DTR, and the ROM still sees IO16 low.
RESET_SAMPLE_S = 0.02
