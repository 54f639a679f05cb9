# Board bring-up shared by boot.py and main.py: LCD, the safe-mode window, camera. Module state (imported once, so
# main.py sees what boot.py found): booted, safe, camera_error.
# Safe mode is asked for by pressing BOOT while the LCD announces it, during the first second of boot.py. It cannot
# be "BOOT held at power-up": IO16 low at reset starts the K210 ROM's ISP download mode, and MaixPy never runs.
import lcd
import sensor
import time
import camera
import screen
from bootkey import setup_pin

SAFE_WINDOW_MS = 1000  # how long boot.py waits for a BOOT press that asks for safe mode
POLL_MS = 10           # a press is far longer than this
booted = False
safe = False           # BOOT was pressed in the window: main.py skips the app
camera_error = None    # the firmware's text when the camera did not come up


def ask_safe_mode():
    """Announce the window on the LCD and the REPL, then watch the key through it; True when it was pressed."""
    screen.message("Press BOOT now for safe mode (%d s)" % (SAFE_WINDOW_MS // 1000))
    pin = setup_pin()
    end = time.ticks_add(time.ticks_ms(), SAFE_WINDOW_MS)
    while time.ticks_diff(end, time.ticks_ms()) > 0:
        if pin.value() == 0:
            return True
        time.sleep_ms(POLL_MS)
    return False


def boot():
    """Bring the board up. Never raises: each failure is shown on the LCD and printed, the REPL stays usable."""
    global booted, safe, camera_error
    booted = True
    try:
        lcd.init()
    except Exception as e:
        print("boot: lcd:", e)
    try:
        safe = ask_safe_mode()
        lcd.clear()
    except Exception as e:
        screen.message("boot: BOOT key: %s" % e)
    if safe:
        screen.message("SAFE MODE: BOOT pressed at start-up.\nApp skipped; REPL ready for file tools.")
        return
    try:
        camera.start()
        sensor.skip_frames(time=100)  # let exposure settle
        camera_error = None
    except Exception as e:
        camera_error = str(e)
        screen.message("boot: camera: %s" % e)

