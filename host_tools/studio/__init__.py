"""`python -m host_tools studio`: the board in a browser page (LCD, BOOT, state, files, run, REPL, models).

`boards` holds the board behind the page (a virtual Maix Bit on a pty, or a real one's serial port); `files`
does every file and run action over the same raw-REPL link and functions as `fs` (the virtual board's reads go to
its file systems directly); `terminal` is the REPL pane's serial terminal on that line; `server` is the web
server (aiohttp: token, one writer, WebSockets); `static/` the page, whose editor (CodeMirror) and terminals
(xterm.js) `assets` installs from the npm registry at build time.
"""
