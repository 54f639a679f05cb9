// The studio page, part 1: the WebSocket, the LCD, the board state and its buttons. Plain JS, no network but this
// server (the token came in the URL; the server set a cookie). It needs no other script, so the LCD shows while
// the editor and terminals (studio.js, on CodeMirror and xterm.js) still load.
"use strict";
const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.search).get("token") || "";
let client = null, writer = false, virtual = true, ws = null;

function showError(text) { $("error").textContent = text || ""; }

async function api(method, url, body) {
  const opts = { method, headers: { "X-Token": token, "X-Client": String(client) } };
  if (body instanceof FormData) opts.body = body;
  else if (body !== undefined) { opts.body = JSON.stringify(body); opts.headers["Content-Type"] = "application/json"; }
  const r = await fetch(url, opts);
  if (!r.ok) { const t = (await r.text()).trim(); showError(t); throw new Error(t); }
  showError("");
  return r.json();
}

// Messages for the other panes wait here until studio.js takes them (onPageMessage).
let pageHandler = null;
const early = [];
function toPage(m) { if (pageHandler) pageHandler(m); else early.push(m); }
function onPageMessage(fn) { pageHandler = fn; early.splice(0).forEach(fn); }

// ---- the WebSocket: LCD frames (binary PNG), state; the rest goes to the page ----
let lastUrl = null;
function connect() {
  ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws?token=" +
                     encodeURIComponent(token));
  ws.binaryType = "blob";
  ws.onmessage = (ev) => {
    if (typeof ev.data !== "string") {
      const url = URL.createObjectURL(ev.data);
      $("lcd").src = url;
      if (lastUrl) URL.revokeObjectURL(lastUrl);
      lastUrl = url;
      $("lcd").dataset.frames = String(Number($("lcd").dataset.frames || 0) + 1);
      if (!window.firstFrameMs) window.firstFrameMs = performance.now();   // page load -> first frame
      return;
    }
    const m = JSON.parse(ev.data);
    if (m.type === "hello") {
      client = m.client; writer = m.writer; virtual = m.virtual;
      $("board").textContent = (virtual ? "virtual Maix Bit" : "board") + " on " + m.port;
      if (!virtual) { $("lcd").hidden = true; $("lcd-note").hidden = false; }
      setRole();
    } else if (m.type === "writer") { writer = true; setRole(); }
    else if (m.type === "state") { showState(m); return; }
    toPage(m);
  };
  ws.onclose = () => { $("board").textContent = "disconnected: reload the page"; };
}

function setRole() {
  $("role").textContent = writer ? "" : "(read-only view: another tab is the writer)";
  document.querySelectorAll("button, input").forEach((el) => {
    if (!["refresh", "models-refresh"].includes(el.id)) el.disabled = !writer;
  });
  toPage({ type: "role" });
}

function kb(n) { return (n / 1024).toFixed(0) + " KiB"; }
function showState(s) {
  if (!s.virtual) { $("state-mode").textContent = "see the board's screen"; return; }
  if (!s.booted) return;
  $("state-mode").textContent = s.mode || "-";
  $("state-fps").textContent = s.fps.toFixed(1);
  $("state-time").textContent = (s.board_ms / 1000).toFixed(1) + " s, " + s.frames + " frames";
  $("state-gc").textContent = kb(s.gc_free) + " / " + kb(s.gc_used);
  $("state-sys").textContent = kb(s.sys_free) + " / " + kb(s.sys_used);
  $("state-model").textContent = s.models_held.join(", ") || "none";
  const n = $("notices");
  const atEnd = n.scrollTop + n.clientHeight >= n.scrollHeight - 4;
  n.textContent = s.console.replace(/\r\n/g, "\n");
  if (atEnd) n.scrollTop = n.scrollHeight;
}

// ---- controls ----
const control = (what, extra) => api("POST", "/api/control", Object.assign({ what }, extra || {}));
let downAt = 0;
$("boot").addEventListener("mousedown", () => { downAt = Date.now(); $("boot").classList.add("down"); });
$("boot").addEventListener("mouseup", () => {
  $("boot").classList.remove("down");
  const held = Date.now() - downAt;
  control(held > 400 ? "hold" : "press", { ms: held });
});
$("boot").addEventListener("keydown", (e) => { if (e.key === " " || e.key === "Enter") control("press"); });
$("reset").onclick = () => control("reset");
$("reset-held").onclick = () => control("reset_held");
$("stop").onclick = () => control("stop");

connect();
