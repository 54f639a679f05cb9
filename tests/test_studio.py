"""The studio's server without a browser: the token, one writer, paths kept on the board, the file panes and the
REPL terminal against `make board`'s virtual board through the real-board path (its pty, the link `fs` uses), and
the page's editor and terminal files: served by the studio, built from npm, a missing npm named."""
import asyncio
import json
import os
import re
import subprocess
import sys
import threading
import time

import pytest
from aiohttp.test_utils import TestClient, TestServer

from host_tools.__main__ import main
from host_tools.sim.fs import DeviceFs
from host_tools.studio import assets
from host_tools.studio.boards import SerialBackend
from host_tools.studio.files import BoardFiles, safe_path
from host_tools.studio.server import STATIC, Studio
from host_tools.studio.terminal import Terminal
from test_deploy_support import VirtualBoardProcess


class NoFiles:
    """The file panes are not what these tests look at: any call is a failure."""
    def __getattr__(self, name):
        raise AssertionError("unexpected board call %s" % name)


def run(coro):
    return asyncio.new_event_loop().run_until_complete(coro)


def with_client(studio, fn):
    async def go():
        async with TestClient(TestServer(studio.app())) as client:
            return await fn(client)
    return run(go())


def test_every_request_and_websocket_needs_the_token():
    studio = Studio(SerialBackend("/dev/null"), NoFiles(), token="secret-token")

    async def fn(c):
        out = {}
        out["page_none"] = (await c.get("/")).status
        out["page_wrong"] = (await c.get("/?token=wrong")).status
        out["api_none"] = (await c.get("/api/tree")).status
        out["static_none"] = (await c.get("/static/studio.js")).status
        out["ws_none"] = (await c.get("/ws")).status
        r = await c.get("/?token=secret-token")
        out["page_ok"] = r.status
        out["cookie"] = r.cookies.get("maixkit_studio").value
        out["static_cookie"] = (await c.get("/static/studio.js")).status   # the cookie the page load set
        return out
    out = with_client(studio, fn)
    assert out["page_none"] == out["page_wrong"] == out["api_none"] == out["static_none"] == out["ws_none"] == 403
    assert out["page_ok"] == 200 and out["cookie"] == "secret-token" and out["static_cookie"] == 200


class KeysSeen:
    """A terminal that records the keys that reach the board."""
    def __init__(self):
        self.seen = []

    def start(self, out):
        return self

    def keys(self, data):
        self.seen.append(data)

    def close(self):
        pass


def test_a_second_tab_is_a_read_only_view():
    terminal = KeysSeen()
    studio = Studio(SerialBackend("/dev/null"), NoFiles(), token="t", terminal=terminal)

    async def fn(c):
        h = {"X-Token": "t"}
        first = await c.ws_connect("/ws?token=t")
        second = await c.ws_connect("/ws?token=t")
        hello1, hello2 = await first.receive_json(), await second.receive_json()
        r = await c.post("/api/control", json={"what": "stop"}, headers=dict(h, **{"X-Client": str(hello2["client"])}))
        refused = (r.status, await r.text())
        await second.send_json({"type": "keys", "data": "import machine\r"})    # a reader's keys: dropped
        await first.send_json({"type": "keys", "data": "1+1\r"})
        for _ in range(50):
            if terminal.seen:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)          # time for a reader's keys to arrive too, were they taken
        await first.close()
        promoted = None
        for _ in range(10):               # state messages may come first
            m = await second.receive_json(timeout=5)
            if m["type"] == "writer":
                promoted = m
                break
        await second.close()
        return hello1, hello2, refused, promoted
    hello1, hello2, refused, promoted = with_client(studio, fn)
    assert hello1["writer"] and not hello2["writer"]
    assert refused[0] == 403 and "read-only" in refused[1]
    assert promoted is not None, "the read-only tab becomes the writer when the writer's tab closes"
    assert terminal.seen == [b"1+1\r"], "only the writer's keys reach the board"


@pytest.mark.parametrize("bad", ["/etc/passwd", "/flash/../etc/passwd", "/sd/./x", "/", "../x"])
def test_paths_never_leave_the_boards_file_systems(bad):
    with pytest.raises(ValueError):
        safe_path(bad)
    assert safe_path("main.py") == "/flash/main.py" and safe_path("/sd/a.py") == "/sd/a.py"


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    b = VirtualBoardProcess(tmp_path_factory.mktemp("studio") / "board", ["--sd", "--fast"])
    yield b
    b.close()


def test_file_panes_over_make_boards_pty(board):
    """Tree, save (mpy-cross first), open, rename, run with streamed output, remove: what the page does with
    --port, against the virtual board's pty through the link and functions `fs` uses."""
    files = BoardFiles(board.port)
    files.write("/flash/studio_a.py", b"import utime\nfor i in range(3):\n    print('tick', i)\n")
    with pytest.raises(ValueError, match="mpy-cross 1.11"):
        files.write("/flash/studio_bad.py", b"x = 1\nprint(f'{x}')\n")
    tree = files.tree()
    names = [n for n, _, _ in tree["/flash"]]
    assert "studio_a.py" in names and "studio_bad.py" not in names and tree["/sd"] is not None
    with pytest.raises(ValueError, match="EXDEV"):      # as on the board: no rename across file systems
        files.rename("/flash/studio_a.py", "/sd/studio_b.py")
    files.rename("/flash/studio_a.py", "/flash/studio_b.py")
    assert files.read("/flash/studio_b.py").startswith(b"import utime")
    chunks = []
    files.run("/flash/studio_b.py", chunks.append)
    assert b"".join(chunks).replace(b"\r\n", b"\n") == b"tick 0\ntick 1\ntick 2\n"
    # the virtual studio reads through the simulated firmware's file systems instead: the same answers
    direct = BoardFiles(board.port, fs=DeviceFs(board.state / "flash", board.state / "sd"))
    assert direct.tree() == files.tree() and direct.read("/flash/studio_b.py") == files.read("/flash/studio_b.py")
    assert direct.models() == files.models()
    with pytest.raises(ValueError, match="/flash/nothing.py: No such file"):
        direct.read("/flash/nothing.py")
    files.remove("/flash/studio_b.py")
    assert "studio_b.py" not in [n for n, _, _ in files.tree()["/flash"]]
    models = files.models()
    assert models["file"] is None or isinstance(models["models"], list)


def test_a_video_file_becomes_the_cameras_scenes_at_its_pace(tmp_path):
    import av
    import numpy as np
    from host_tools.studio import video
    from host_tools.studio.server import camera_from_uploads
    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as box:
        s = box.add_stream("mpeg4", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for i in range(20):
            rgb = np.zeros((48, 64, 3), np.uint8)
            rgb[..., i % 3] = 255
            for pkt in s.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                box.mux(pkt)
        for pkt in s.encode():
            box.mux(pkt)
    sources, hold_ms = video.frames(path)
    assert len(sources) == 20 and hold_ms == pytest.approx(100.0)
    assert [int(np.argmax(a[24, 32])) for _, a in sources[:3]] == [0, 1, 2]     # red, green, blue in order
    assert len(camera_from_uploads([("clip.mp4", path.read_bytes())])[0]) == 20
    with pytest.raises(ValueError, match="notes.txt: not a video"):
        (tmp_path / "notes.txt").write_text("hello")
        video.frames(tmp_path / "notes.txt")
    with pytest.raises(ValueError, match="junk.png is not an image"):
        camera_from_uploads([("junk.png", b"not a png")])


def test_the_page_api_on_a_real_board_path(board):
    """`studio --port`: the same panes through the HTTP API, on the pty; the LCD pane has nothing to show. The
    REPL terminal passes keys and output both ways on the same line: 6*7 typed, 42 shown."""
    files = BoardFiles(board.port)
    studio = Studio(SerialBackend(board.port), files, token="t", terminal=Terminal(board.port, files.lock))

    async def fn(c):
        h = {"X-Token": "t"}
        ws = await c.ws_connect("/ws?token=t")
        hello = await ws.receive_json()
        h["X-Client"] = str(hello["client"])
        r = await c.post("/api/file", json={"path": "/flash/studio_c.py", "text": "print('hi from c')\n"}, headers=h)
        assert r.status == 200, await r.text()
        bad = await c.post("/api/file", json={"path": "/flash/../x.py", "text": ""}, headers=h)
        tree = await (await c.get("/api/tree", headers=h)).json()
        ran = await c.post("/api/run", json={"path": "/flash/studio_c.py"}, headers=h)
        assert ran.status == 200, await ran.text()
        outs = []
        end = asyncio.get_running_loop().time() + 20
        while "hi from c\n" not in "".join(outs):
            assert asyncio.get_running_loop().time() < end, "no run output on the WebSocket: %r" % outs
            m = await ws.receive_json(timeout=10)
            if m["type"] == "out":
                outs.append(m["text"])
        await c.post("/api/remove", json={"path": "/flash/studio_c.py"}, headers=h)
        term = ""
        await ws.send_json({"type": "keys", "data": "\x03"})      # a fresh prompt, whatever state the REPL is in
        await ws.send_json({"type": "keys", "data": "6*7\r"})
        end = asyncio.get_running_loop().time() + 20
        while "6*7\r\n42\r\n>>> " not in term:
            assert asyncio.get_running_loop().time() < end, "no answer in the terminal: %r" % term[-300:]
            m = await ws.receive_json(timeout=10)
            if m["type"] == "term":
                term += m["text"]
        await ws.close()
        assert outs[0] == "hi from c\n", "a line at a time: %r" % outs
        return hello, bad.status, await bad.text(), tree
    hello, bad_status, bad_text, tree = with_client(studio, fn)
    assert hello["virtual"] is False and hello["port"] == board.port and hello["terminal"]
    assert bad_status == 400 and "'..'" in bad_text
    assert "studio_c.py" in [n for n, _, _ in tree["/flash"]]


def test_the_page_loads_nothing_but_this_servers_files():
    """Every script and style of the page is served by the studio (no CDN), and each vendor file it names is one
    host_tools/studio/assets.py builds from npm."""
    page = (STATIC / "index.html").read_text()
    refs = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert refs and all(r.startswith("/static/") for r in refs), refs
    vendor = {r.split("/static/vendor/", 1)[1] for r in refs if r.startswith("/static/vendor/")}
    assert vendor == set(assets.FILES), vendor ^ set(assets.FILES)
    assert set(assets.locked_versions()) == set(
        json.loads((assets.WEB / "package.json").read_text())["dependencies"])


def test_without_npm_the_build_says_how_to_install_it(tmp_path):
    before = assets.STAMP.stat().st_mtime_ns if assets.STAMP.exists() else None
    r = subprocess.run([sys.executable, "-m", "host_tools.studio.assets"], capture_output=True, text=True,
                       env=dict(os.environ, PATH=str(tmp_path)), cwd=assets.HERE.parents[1])
    assert r.returncode == 1 and r.stdout == ""
    assert len(r.stderr.splitlines()) == 1 and "apt-get install -y nodejs npm" in r.stderr, r.stderr
    assert (assets.STAMP.stat().st_mtime_ns if assets.STAMP.exists() else None) == before   # nothing touched


def test_the_studio_refuses_to_start_without_its_editor_and_terminal(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(assets, "STAMP", tmp_path / "versions.json")
    assert main(["studio", "--state", str(tmp_path / "board")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "make studio-assets" in err and "\n" not in err
    assert not (tmp_path / "board").exists()


def test_the_terminal_says_when_the_line_fails():
    """Output and keys pass on a serial line; a line that goes away (a board unplugged) is said in the pane."""
    master, slave = os.openpty()
    port, seen = os.ttyname(slave), []
    term = Terminal(port, threading.Lock()).start(seen.append)
    try:
        os.write(master, "héllo\r\n".encode())
        term.keys(b"1+1\r")
        end = time.monotonic() + 10
        while "héllo\r\n" not in "".join(seen) and time.monotonic() < end:
            time.sleep(0.05)
        assert "".join(seen) == "héllo\r\n" and os.read(master, 100) == b"1+1\r"
        os.close(master)
        while "failed" not in "".join(seen) and time.monotonic() < end:
            time.sleep(0.05)
        assert "[studio: the serial line %s failed" % port in "".join(seen), seen
    finally:
        term.close()
        os.close(slave)
