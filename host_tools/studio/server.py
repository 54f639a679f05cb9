"""The studio's web server (aiohttp): the page, a JSON API and one WebSocket per tab.

Safe by default: bound to 127.0.0.1; every request and WebSocket carries the token (in the URL, a header or the
cookie the first page load sets), else 403; the first tab connected is the writer, every other tab gets a
read-only view (its changing requests are refused with 403) until the writer closes.
The WebSocket sends LCD frames as PNG (binary messages) at the simulated board's pace and the board state as JSON
twice a second; a run's output arrives on it as {"type": "out"} messages while the code runs, and the serial
terminal's (terminal.py) as {"type": "term"}; the writer tab sends its terminal keys as {"type": "keys"}.
"""
import asyncio
import io
import itertools
import json
import secrets
from pathlib import Path

from aiohttp import WSMsgType, web
from PIL import Image

STATIC = Path(__file__).resolve().parent / "static"
FRAME_POLL_S = 0.03       # how often the LCD is looked at (the sim's clock is held to wall time)
STATE_EVERY_S = 0.5
COOKIE = "maixkit_studio"
OUT_CHUNK = 512           # bytes of run output sent at once when no line ends
TERM_KEEP = 64 * 1024     # characters of the terminal a new tab is shown


def png(rgb) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


class Studio:
    def __init__(self, backend, files, token=None, host_manifests=None, terminal=None):
        self.backend = backend
        self.files = files
        self.terminal = terminal                     # terminal.Terminal on the board's line, or None
        self.term_text = ""                          # its recent output, for a tab that connects later
        self._term_order = asyncio.Lock()            # chunks reach the tabs in the order the board sent them
        self._keys = self._typist = None             # typed keys waiting for the line, and their consumer
        self.token = token or secrets.token_urlsafe(24)
        self.host_manifests = host_manifests or {}   # name -> manifest dict (memory, predicted time), virtual only
        self.clients = {}                            # id -> WebSocketResponse
        self.writer = None                           # id of the tab that may change things
        self._ids = itertools.count(1)

    # ---- access ----
    @web.middleware
    async def guard(self, request, handler):
        given = (request.query.get("token") or request.headers.get("X-Token") or request.cookies.get(COOKIE))
        if not given or not secrets.compare_digest(given, self.token):
            return web.Response(status=403, text="studio: a token is needed (open the URL the studio printed)\n")
        resp = await handler(request)
        if request.query.get("token") and isinstance(resp, web.StreamResponse) and not resp.prepared:
            resp.set_cookie(COOKIE, self.token, httponly=True, samesite="Strict")
        return resp

    def _need_writer(self, request):
        if self.writer is None or request.headers.get("X-Client") != str(self.writer):
            raise web.HTTPForbidden(text="studio: this tab is a read-only view (another tab is the writer)\n")

    # ---- handlers ----
    async def index(self, request):
        return web.FileResponse(STATIC / "index.html")

    async def blocking(self, fn, *args):
        try:
            return await asyncio.get_running_loop().run_in_executor(None, fn, *args)
        except web.HTTPException:
            raise
        except Exception as e:            # one line the page shows; the board and the server go on
            raise web.HTTPBadRequest(text="%s\n" % e) from None

    async def tree(self, request):
        return web.json_response(await self.blocking(self.files.tree))

    async def read(self, request):
        data = await self.blocking(self.files.read, request.query.get("path", ""))
        return web.json_response({"path": request.query["path"], "text": data.decode("utf-8", "replace")})

    async def write(self, request):
        self._need_writer(request)
        body = await request.json()
        await self.blocking(self.files.write, body["path"], body["text"].encode("utf-8"))
        return web.json_response({"ok": True})

    async def create(self, request):
        self._need_writer(request)
        body = await request.json()
        await self.blocking(self.files.create, body["path"])
        return web.json_response({"ok": True})

    async def rename(self, request):
        self._need_writer(request)
        body = await request.json()
        await self.blocking(self.files.rename, body["path"], body["to"])
        return web.json_response({"ok": True})

    async def remove(self, request):
        self._need_writer(request)
        body = await request.json()
        await self.blocking(self.files.remove, body["path"])
        return web.json_response({"ok": True})

    async def _streamed(self, request, fn, arg):
        """Run fn(arg, out) on the link; its output goes to every tab a line at a time (the tools read a byte at
        a time)."""
        self._need_writer(request)
        loop = asyncio.get_running_loop()
        pending = bytearray()

        def flush():
            if pending:
                text = pending.decode("utf-8", "replace").replace("\r\n", "\n")
                pending.clear()
                asyncio.run_coroutine_threadsafe(self.broadcast({"type": "out", "text": text}), loop)

        def out(data):
            pending.extend(data)
            if b"\n" in data or len(pending) >= OUT_CHUNK:
                flush()
        try:
            await self.blocking(fn, arg, out)
        except web.HTTPBadRequest as e:
            pending.extend(e.text.encode())
            raise
        finally:
            flush()
        return web.json_response({"ok": True})

    async def run(self, request):
        body = await request.json()
        return await self._streamed(request, self.files.run, body["path"])

    async def control(self, request):
        """reset | reset_held | stop | press | hold"""
        self._need_writer(request)
        body = await request.json()
        what = body.get("what")
        if what == "press":
            await self.blocking(self.backend.press, 120.0)
        elif what == "hold":
            await self.blocking(self.backend.press, float(body.get("ms", 2000)))
        elif what in ("reset", "reset_held"):
            if what == "reset_held":
                await self.blocking(self.backend.hold_at_reset)
            await self.blocking(self.backend.reset or self.files.reset)
        elif what == "stop":
            await self.blocking(self.files.stop)
        else:
            raise web.HTTPBadRequest(text="control %r: one of press, hold, reset, reset_held, stop\n" % what)
        return web.json_response({"ok": True})

    async def camera(self, request):
        """What the virtual camera sees: uploaded pictures (a folder, the webcam's frames) or one video file."""
        self._need_writer(request)
        reader = await request.multipart()
        parts = []
        while True:
            part = await reader.next()
            if part is None:
                break
            parts.append((part.filename or "webcam.png", await part.read()))
        camera = await self.blocking(camera_from_uploads, parts)
        await self.blocking(self.backend.set_camera, camera)
        return web.json_response({"ok": True, "pictures": len(camera[0])})

    async def models(self, request):
        info = await self.blocking(self.files.models)
        for e in info["models"]:
            host = self.host_manifests.get(e.get("name"))
            if host:
                e["host"] = host
        return web.json_response(info)

    async def ws(self, request):
        sock = web.WebSocketResponse(heartbeat=20)
        await sock.prepare(request)
        cid = next(self._ids)
        self.clients[cid] = sock
        if self.writer is None:
            self.writer = cid
        await sock.send_json({"type": "hello", "client": cid, "writer": self.writer == cid,
                              "virtual": self.backend.virtual, "port": self.backend.port,
                              "terminal": self.terminal is not None, "term": self.term_text})
        pump = asyncio.create_task(self._pump(sock))
        try:
            async for msg in sock:
                if msg.type == WSMsgType.ERROR:
                    break
                if msg.type == WSMsgType.TEXT:
                    try:
                        data = msg.json()
                    except ValueError:
                        continue
                    await self._from_tab(cid, data)
        finally:
            pump.cancel()
            self.clients.pop(cid, None)
            if self.writer == cid:
                self.writer = min(self.clients) if self.clients else None
                if self.writer is not None:
                    await self.clients[self.writer].send_json({"type": "writer"})
        return sock

    async def _pump(self, sock):
        """LCD frames when the panel changed, and the state now and then."""
        loop = asyncio.get_running_loop()
        seen, last_state = -1, 0.0
        try:
            while not sock.closed:
                updates, rgb = self.backend.lcd()
                if rgb is not None and updates != seen:
                    seen = updates
                    await sock.send_bytes(await loop.run_in_executor(None, png, rgb))
                if loop.time() - last_state > STATE_EVERY_S:
                    last_state = loop.time()
                    await sock.send_json({"type": "state", **self.backend.state_now()})
                await asyncio.sleep(FRAME_POLL_S)
        except (ConnectionResetError, asyncio.CancelledError):
            pass

    async def _from_tab(self, cid, msg):
        """Terminal keys from the writer tab (a read-only view's are dropped), queued: the tab's WebSocket is not
        held up while a file action has the line."""
        if isinstance(msg, dict) and msg.get("type") == "keys" and cid == self.writer and self._keys is not None:
            self._keys.put_nowait(str(msg.get("data", "")).encode("utf-8"))

    async def _type_keys(self):
        """The one consumer of the keys, so they reach the board in the order typed; a dead line is said in the pane."""
        loop = asyncio.get_running_loop()
        while True:
            data = await self._keys.get()
            try:
                await loop.run_in_executor(None, self.terminal.keys, data)
            except Exception as e:
                await self._term_out("\r\n[studio: the keys did not reach the board: %s]\r\n" % e)

    async def _term_out(self, text):
        async with self._term_order:
            self.term_text = (self.term_text + text)[-TERM_KEEP:]
            await self.broadcast({"type": "term", "text": text})

    async def _start_terminal(self, app):
        if self.terminal is not None:
            loop = asyncio.get_running_loop()
            self.terminal.start(lambda text: asyncio.run_coroutine_threadsafe(self._term_out(text), loop))
            self._keys = asyncio.Queue()
            self._typist = asyncio.create_task(self._type_keys())

    async def _stop_terminal(self, app):
        if self.terminal is not None:
            self._typist.cancel()
            await asyncio.get_running_loop().run_in_executor(None, self.terminal.close)

    async def broadcast(self, msg):
        for sock in list(self.clients.values()):
            if not sock.closed:
                await sock.send_json(msg)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.guard], client_max_size=64 * 1024 * 1024)
        app.add_routes([
            web.get("/", self.index), web.get("/ws", self.ws),
            web.get("/api/tree", self.tree), web.get("/api/file", self.read), web.post("/api/file", self.write),
            web.post("/api/new", self.create), web.post("/api/rename", self.rename), web.post("/api/remove", self.remove),
            web.post("/api/run", self.run), web.post("/api/control", self.control),
            web.post("/api/camera", self.camera), web.get("/api/models", self.models),
            web.static("/static", STATIC),
        ])
        app.on_startup.append(self._start_terminal)
        app.on_cleanup.append(self._stop_terminal)
        return app


def camera_from_uploads(parts) -> tuple:
    """(sources, hold_ms) from uploaded files: one video file, or pictures. ValueError naming the file."""
    import tempfile
    import numpy as np
    from host_tools.studio import video
    if not parts:
        raise ValueError("camera: no pictures sent")
    if len(parts) == 1 and video.is_video(parts[0][0]):
        name, data = parts[0]
        with tempfile.TemporaryDirectory(prefix="studio-video-") as tmp:
            path = Path(tmp) / Path(name).name
            path.write_bytes(data)
            return video.frames(path)
    sources = []
    for name, data in parts:
        try:
            img = Image.open(io.BytesIO(data))
            img.load()
        except Exception:
            raise ValueError("camera: %s is not an image Pillow reads (or a video: %s)"
                             % (name, ", ".join(video.VIDEO_SUFFIXES))) from None
        sources.append((name, np.asarray(img.convert("RGB"))))
    return sources, None
