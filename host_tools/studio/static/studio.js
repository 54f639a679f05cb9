// The studio page: plain JS, no network but this server. The token came in the URL; the server set a cookie.
"use strict";
const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.search).get("token") || "";
let client = null, writer = false, virtual = true, openPath = null, selected = null, models = [];

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

function say(text) {
  const c = $("console");
  c.textContent = (c.textContent + text).slice(-100000);
  c.scrollTop = c.scrollHeight;
}

// ---- the WebSocket: LCD frames (binary PNG), state, streamed output ----
let lastUrl = null;
function connect() {
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws?token=" +
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
      setRole();
      if (!virtual) { $("lcd").hidden = true; $("lcd-note").hidden = false; }
    } else if (m.type === "writer") { writer = true; setRole(); }
    else if (m.type === "state") showState(m);
    else if (m.type === "out") say(m.text);
  };
  ws.onclose = () => { $("board").textContent = "disconnected: reload the page"; };
}

function setRole() {
  $("role").textContent = writer ? "" : "(read-only view: another tab is the writer)";
  document.querySelectorAll("button, input, textarea").forEach((el) => {
    if (!["refresh", "models-refresh"].includes(el.id)) el.disabled = !writer;
  });
  $("editor").readOnly = !writer; $("editor").disabled = false;
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

// ---- camera ----
async function sendPictures(files) {
  const fd = new FormData();
  for (const f of files) if (f.type.startsWith("image/") || f.type.startsWith("video/")) fd.append("picture", f, f.name);
  const r = await api("POST", "/api/camera", fd);
  $("camera-status").textContent = r.pictures + " picture(s) in front of the camera";
}
$("camera-files").onchange = (e) => sendPictures(e.target.files);
$("camera-folder").onchange = (e) => sendPictures(e.target.files);
$("webcam").onclick = async () => {
  const v = $("webcam-video");
  v.srcObject = await navigator.mediaDevices.getUserMedia({ video: { width: 320, height: 240 } });
  v.hidden = false;
  const canvas = document.createElement("canvas");
  canvas.width = 320; canvas.height = 240;
  setInterval(() => {
    canvas.getContext("2d").drawImage(v, 0, 0, 320, 240);
    canvas.toBlob((b) => { if (b) { const fd = new FormData(); fd.append("picture", b, "webcam.png");
                                    api("POST", "/api/camera", fd).catch(() => {}); } }, "image/png");
  }, 500);
};

// ---- files ----
async function refreshTree() {
  const t = await api("GET", "/api/tree");
  const ul = $("tree");
  ul.innerHTML = "";
  for (const root of ["/flash", "/sd"]) {
    const li = document.createElement("li");
    li.className = "root";
    li.textContent = root + (t[root] === null ? " (no card)" : "");
    ul.appendChild(li);
    for (const [name, size, isDir] of (t[root] || [])) {
      const f = document.createElement("li");
      const path = root + "/" + name;
      f.textContent = "  " + name + (isDir ? "/" : "  (" + size + " B)");
      f.dataset.path = path;
      f.onclick = () => { selected = path; document.querySelectorAll("#tree li").forEach((x) => x.classList.remove("sel"));
                          f.classList.add("sel"); if (!isDir) openFile(path); };
      ul.appendChild(f);
    }
  }
}
async function openFile(path) {
  const r = await api("GET", "/api/file?path=" + encodeURIComponent(path));
  openPath = path;
  $("path").textContent = path;
  $("editor").value = r.text;
  highlight();
}
$("save").onclick = async () => {
  if (!openPath) return;
  $("editor-status").textContent = "saving...";
  try { await api("POST", "/api/file", { path: openPath, text: $("editor").value });
        $("editor-status").textContent = "saved " + openPath; }
  catch (e) { $("editor-status").textContent = "not saved: " + e.message; }
};
$("run").onclick = async () => {
  const path = openPath || selected;
  if (!path) return;
  say("\n--- run " + path + " ---\n");
  try { await api("POST", "/api/run", { path }); say("--- end of " + path + " ---\n"); } catch (e) { say(e.message + "\n"); }
};
$("new").onclick = async () => {
  const path = prompt("new file (/flash/NAME or /sd/NAME)", "/flash/new.py");
  if (!path) return;
  await api("POST", "/api/new", { path });
  await refreshTree(); openFile(path);
};
$("rename").onclick = async () => {
  if (!selected) return;
  const to = prompt("rename " + selected + " to", selected);
  if (!to || to === selected) return;
  await api("POST", "/api/rename", { path: selected, to });
  if (openPath === selected) { openPath = to; $("path").textContent = to; }
  selected = to; refreshTree();
};
$("remove").onclick = async () => {
  if (!selected || !confirm("remove " + selected + "?")) return;
  await api("POST", "/api/remove", { path: selected });
  selected = null; refreshTree();
};
$("refresh").onclick = refreshTree;

// ---- Python highlighting of the open file (keywords, strings, comments) ----
const KW = /\b(and|as|assert|break|class|continue|def|del|elif|else|except|finally|for|from|global|if|import|in|is|lambda|nonlocal|not|or|pass|raise|return|try|while|with|yield|None|True|False)\b/g;
function esc(s) { return s.replace(/&/g, "&amp;").replace(/</g, "&lt;"); }
function highlight() {
  const out = [];
  for (const line of $("editor").value.split("\n")) {
    const parts = line.split(/("[^"]*"|'[^']*'|#.*$)/);
    out.push(parts.map((p, i) => i % 2 ? '<span class="' + (p[0] === "#" ? "com" : "str") + '">' + esc(p) + "</span>"
                                        : esc(p).replace(KW, '<span class="kw">$1</span>')).join(""));
  }
  $("highlight").innerHTML = out.join("\n");
}
$("editor").addEventListener("input", highlight);

// ---- REPL ----
const history = [];
$("repl-input").addEventListener("keydown", async (e) => {
  if (e.key !== "Enter") return;
  const line = e.target.value;
  e.target.value = "";
  history.push(line);
  say(">>> " + line + "\n");
  try { await api("POST", "/api/repl", { line }); } catch (err) { /* shown by api() and in the console */ }
});

// ---- models ----
async function refreshModels() {
  const r = await api("GET", "/api/models");
  models = r.models;
  const t = $("models");
  t.innerHTML = "<tr><th>name</th><th>kind</th><th>input</th><th>labels</th><th>memory</th><th>predicted ms</th><th>where</th></tr>";
  for (const m of models) {
    const h = m.host || {};
    const mem = h.memory ? Object.entries(h.memory).map(([k, v]) => k + " " + kb(v)).join(", ") : "-";
    const ms = h.predicted_ms ? h.predicted_ms.ram + " (RAM)" : "-";
    const row = document.createElement("tr");
    row.innerHTML = [m.name, m.kind, m.input.w + "x" + m.input.h + "x" + m.input.c,
                     (m.labels || []).slice(0, 12).join(", ") + ((m.labels || []).length > 12 ? ", ..." : ""),
                     mem, ms, JSON.stringify(m.source)].map((x) => "<td>" + esc(String(x)) + "</td>").join("");
    t.appendChild(row);
  }
}
$("models-refresh").onclick = refreshModels;

connect();
