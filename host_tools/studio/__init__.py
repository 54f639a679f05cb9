"""`python -m host_tools studio`: the board in a browser page (LCD, BOOT, state, files, run, REPL, models).

`boards` holds the board behind the page (a virtual Maix Bit on a pty, or a real one's serial port); `files`
does every file, run and REPL action over the same raw-REPL link and functions as `fs`; `server` is the web
server (aiohttp: token, one writer, WebSockets); `static/` the page.
"""
