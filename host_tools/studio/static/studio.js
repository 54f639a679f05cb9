// The studio page, part 2 (after board.js): the editor (CodeMirror), the console and REPL terminals (xterm.js), the
// files, camera and models panes. CodeMirror and xterm.js are served from /static/vendor/ (host_tools/studio/assets.py).
"use strict";
let openPath = null, selected = null, models = [];

const editor = CodeMirror.fromTextArea($("editor"), { mode: "python", lineNumbers: true, indentUnit: 4,
                                                      extraKeys: { Tab: (cm) => cm.execCommand("insertSoftTab") } });

function terminal(id, options) {
  const t = new Terminal(Object.assign({ fontSize: 12, rows: 12, scrollback: 5000 }, options));
  const fit = new FitAddon.FitAddon();
  t.loadAddon(fit);
  t.open($(id));
  fit.fit();
  window.addEventListener("resize", () => fit.fit());
  return t;
}
const consoleTerm = terminal("console", { disableStdin: true, convertEol: true });  // the server sends \n
const replTerm = terminal("repl", {});        // the board's own bytes: \r\n, echo, prompts
replTerm.onData((data) => {      // keys typed, Ctrl-C included, go to the board as they are
  if (writer && ws && ws.readyState === 1) ws.send(JSON.stringify({ type: "keys", data }));
});

// A terminal's text as lines (wrapped rows joined, trailing spaces cut), for the tests and anyone scripting the page.
function termText(t) {
  const b = t.buffer.active, lines = [];
  for (let i = 0; i < b.length; i++) {
    const line = b.getLine(i);
    if (line.isWrapped && lines.length) lines[lines.length - 1] += line.translateToString(true);
    else lines.push(line.translateToString(true));
  }
  return lines.map((l) => l.replace(/\s+$/, "")).join("\n").replace(/\n+$/, "");   // a prompt's space too
}
window.studio = { editor, consoleTerm, replTerm, termText, webcamSent: [] };

function say(text) { consoleTerm.write(text); }

// Which file actions stop the app (host_tools/studio/files.py): a real board has one serial line and only the REPL.
const FILES_NOTE_REAL = "Every file action goes over the REPL, so it stops the running app first (Ctrl-C, as fs " +
  "does); Reset starts it again.";
const FILES_NOTE_VIRTUAL = "Reading (the tree, opening a file, the models) looks at the virtual board's file " +
  "systems and the app runs on. Save, New, Rename, Remove and Run go over the REPL and stop the app first " +
  "(Ctrl-C), as on a real board; Reset starts it again.";

onPageMessage((m) => {
  if (m.type === "hello") {
    $("files-note").textContent = virtual ? FILES_NOTE_VIRTUAL : FILES_NOTE_REAL;
    replTerm.reset();
    replTerm.write(m.terminal ? m.term : "(no terminal on this server)\r\n");
  } else if (m.type === "role") {
    editor.setOption("readOnly", !writer);
    replTerm.options.disableStdin = !writer;
  } else if (m.type === "out") say(m.text);
  else if (m.type === "term") replTerm.write(m.text);
});

// ---- camera ----
async function sendPictures(files) {
  const fd = new FormData();
  for (const f of files) if (f.type.startsWith("image/") || f.type.startsWith("video/")) fd.append("picture", f, f.name);
  const r = await api("POST", "/api/camera", fd);
  $("camera-status").textContent = r.pictures + " picture(s) in front of the camera";
}
// The webcam: a frame every WEBCAM_MS, scaled to the camera's 320x240, becomes the simulated camera's scene. One
// upload at a time (a slow server skips frames rather than queueing them); a choice of pictures waits for the one
// in flight, so no late webcam frame replaces them.
const WEBCAM_MS = 500;
let webcamTimer = null, webcamUpload = null;
function stopWebcam() {
  if (webcamTimer === null) return;
  clearInterval(webcamTimer); webcamTimer = null;
  const v = $("webcam-video");
  v.srcObject.getTracks().forEach((t) => t.stop());
  v.srcObject = null; v.hidden = true;
}
// Each choice replaces the camera's pictures; the input is emptied so the same file can be chosen again.
async function choose(input) {
  stopWebcam();
  try { await webcamUpload; await sendPictures(input.files); } finally { input.value = ""; }
}
$("camera-files").onchange = (e) => choose(e.target);
$("camera-folder").onchange = (e) => choose(e.target);
$("webcam").onclick = async () => {
  if (webcamTimer !== null) return;
  const v = $("webcam-video");
  try { v.srcObject = await navigator.mediaDevices.getUserMedia({ video: { width: 320, height: 240 } }); }
  catch (e) { $("camera-status").textContent = "no webcam: " + e.message; return; }
  v.hidden = false;
  const canvas = document.createElement("canvas");
  canvas.width = 320; canvas.height = 240;
  let sent = 0;
  webcamTimer = setInterval(() => {
    if (v.readyState < 2 || webcamUpload !== null) return;     // no frame yet, or the last one still on its way
    canvas.getContext("2d").drawImage(v, 0, 0, 320, 240);
    const url = canvas.toDataURL("image/png");
    webcamUpload = new Promise((resolve) => canvas.toBlob(resolve, "image/png")).then((b) => {
      if (!b || webcamTimer === null) return;                  // stopped meanwhile: not sent
      const fd = new FormData();
      fd.append("picture", b, "webcam.png");
      return api("POST", "/api/camera", fd).then(() => {
        studio.webcamSent = studio.webcamSent.concat([url]).slice(-8);   // the last frames the camera got
        $("camera-status").textContent = "webcam: " + (++sent) + " frame(s) sent to the camera";
      });
    }).catch(() => {}).finally(() => { webcamUpload = null; });
  }, WEBCAM_MS);
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
  editor.setValue(r.text);
  editor.clearHistory();
}
$("save").onclick = async () => {
  if (!openPath) return;
  $("editor-status").textContent = "saving...";
  try { await api("POST", "/api/file", { path: openPath, text: editor.getValue() });
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

// ---- models ----
function esc(s) { return s.replace(/&/g, "&amp;").replace(/</g, "&lt;"); }
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

