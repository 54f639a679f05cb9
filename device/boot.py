# boot.py: bring up LCD, the safe-mode window and the camera. Never raises, so the REPL always stays usable.
try:
    import startup
    startup.boot()
except Exception as e:  # e.g. a lib file missing or broken: say so and keep the REPL
    print("boot.py:", e)
    try:
        import lcd
        lcd.init()
        lcd.draw_string(4, 4, "boot.py: %s" % e, lcd.WHITE, lcd.BLACK)
    except Exception:
        pass
