# main.py: start the app, unless BOOT was pressed in boot.py's safe-mode window (skip it, so a broken app can be
# replaced).
try:
    import startup
    if not startup.booted:  # boot.py did not run (started by hand, or from an SD card's /sd/main.py)
        startup.boot()
    if startup.safe:
        print("safe mode: app skipped")
    else:
        import app
        app.run()
except Exception as e:  # only a broken install gets here: the app itself shows errors and keeps running
    print("main.py:", e)
    try:
        import screen
        screen.message("main.py: %s" % e)
    except Exception:
        pass
