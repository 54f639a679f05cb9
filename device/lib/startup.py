# Board bring-up shared by boot.py and main.py: LCD, camera, and the safe-mode check. Module state (imported
# once, so main.py sees what boot.py found): booted, safe, camera_error.
import lcd
import sensor
import screen
from bootkey import setup_pin

booted = False
safe = False          # BOOT was held at power-up: main.py skips the app
camera_error = None   # the firmware's text when the camera did not come up


def boot():
    """Bring the board up. Never raises: each failure is shown on the LCD and printed, the REPL stays usable."""
    global booted, safe, camera_error
    booted = True
    try:
        lcd.init()
    except Exception as e:
        print("boot: lcd:", e)
    try:
        safe = setup_pin().value() == 0
    except Exception as e:
        screen.message("boot: BOOT key: %s" % e)
    try:
        sensor.reset()
        sensor.set_pixformat(sensor.RGB565)
        sensor.set_framesize(sensor.QVGA)
        sensor.run(1)
        sensor.skip_frames(time=100)  # let exposure settle
        camera_error = None
    except Exception as e:
        camera_error = str(e)
        screen.message("boot: camera: %s" % e)
    if safe:
        screen.message("SAFE MODE: BOOT held at power-up.\nApp skipped; REPL ready for file tools.")
