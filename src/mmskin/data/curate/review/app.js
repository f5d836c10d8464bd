// mmskin review: one record at a time. Every text from the dataset is put into the page with textContent.
"use strict";
let EXCLUDING = new Set(), records = [], decisions = {}, pos = 0, undoStack = [], editing = false;
const $ = (id) => document.getElementById(id);

function status(text, ok) { const s = $("status"); s.textContent = text; s.className = ok ? "ok" : "error"; }

async function api(path, body) {
  const opt = body === undefined ? {} : {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)};
  const r = await fetch(path, opt);
  const data = await r.json().catch(() => ({error: "bad answer"}));
  if (!r.ok) throw new Error(data.error || r.statusText);
  return data;
}

function li(text, cls) { const e = document.createElement("li"); e.textContent = text; if (cls) e.className = cls; return e; }

function show() {
  if (!records.length) { $("counter").textContent = "no records"; return; }
  const r = records[pos], d = decisions[r.id] || {};
  const nReview = records.filter((x) => x.flags.includes("review")).length;
  $("counter").textContent = `${pos + 1} / ${records.length} · ${nReview} flagged review · ${Object.keys(decisions).length} decided`;
  $("where").textContent = `${r.id} · ${r.where} · ${r.size[0]}×${r.size[1]} px`;
  const img = $("img");
  $("missing").hidden = true; img.hidden = false;
  img.alt = r.id; img.src = "/image/" + encodeURIComponent(r.id);
  const m = $("modality"); m.textContent = "";
  const shown = d.modality || r.modality || "none";
  const b = document.createElement("b"); b.textContent = shown; if (d.modality) b.className = "human"; m.appendChild(b);
  const score = typeof r.modality_score === "number" ? r.modality_score.toFixed(2) : "–";
  m.appendChild(document.createTextNode(d.modality ? ` (curator; model said ${r.modality} ${score})` : ` (${score}, ${r.modality_source || "?"})`));
  const probs = $("probs"); probs.textContent = "";
  for (const [k, v] of Object.entries(r.probs)) {
    const e = document.createElement("li"), s = document.createElement("span"), mt = document.createElement("meter");
    s.textContent = `${k} ${Number(v).toFixed(2)}`; mt.min = 0; mt.max = 1; mt.value = Number(v) || 0; e.append(s, mt); probs.appendChild(e);
  }
  const parts = [];
  if (d.modality) parts.push(`modality → ${d.modality}`);
  if (d.exclude === true) parts.push("EXCLUDED"); else if (d.exclude === false) parts.push("INCLUDED");
  if (d.caption) parts.push("caption edited");
  $("decision").textContent = parts.length ? parts.join(" · ") : "none yet";
  const fl = $("flags"); fl.textContent = "";
  for (const f of r.flags) fl.appendChild(li(`${f}: ${r.flag_reasons[f] || ""}`, EXCLUDING.has(f) ? "excl" : "info"));
  if (!r.flags.length) fl.appendChild(li("none (usable)", "info"));
  $("caption").textContent = d.caption || r.caption || "(no caption)";
  if (!editing) $("editor").hidden = true;
}

async function decide(change, advance) {
  const r = records[pos];
  try {
    const res = await api("/api/decide", Object.assign({id: r.id}, change));
    undoStack.push({pos, id: r.id, before: res.before});
    setDecision(r.id, res.after);
    status(`saved ${r.id}`, true);
    if (advance && pos < records.length - 1) pos += 1;
    show();
  } catch (e) { status(`not saved: ${e.message}`, false); }
}

function setDecision(id, d) {
  if (d.modality === null && d.exclude === null && d.caption === null) delete decisions[id]; else decisions[id] = d;
}

async function undo() {
  const last = undoStack.pop();
  if (!last) { status("nothing to undo", false); return; }
  try {
    const res = await api("/api/decide", Object.assign({id: last.id}, last.before));
    setDecision(last.id, res.after); pos = last.pos; status(`undone ${last.id}`, true); show();
  } catch (e) { undoStack.push(last); status(`undo failed: ${e.message}`, false); }
}

function edit() {
  const r = records[pos], d = decisions[r.id] || {};
  editing = true; $("editor").hidden = false;
  const t = $("caption-edit"); t.value = d.caption || r.caption || ""; t.focus();
}

function finishEdit(save) {
  editing = false; $("editor").hidden = true;
  if (save) decide({caption: $("caption-edit").value || null}, false);
}

function move(step) { pos = Math.min(records.length - 1, Math.max(0, pos + step)); show(); }

const ACTIONS = {
  "mod:clinical": () => decide({modality: "clinical"}, true), "mod:dermoscopy": () => decide({modality: "dermoscopy"}, true),
  "mod:pathology": () => decide({modality: "pathology"}, true), "mod:other": () => decide({modality: "other"}, true),
  exclude: () => decide({exclude: true}, true), include: () => decide({exclude: false}, true),
  clear: () => decide({modality: null, exclude: null, caption: null}, false), undo, edit,
  save: () => finishEdit(true), cancel: () => finishEdit(false), next: () => move(1), prev: () => move(-1),
};
const KEYS = {"1": "mod:clinical", "2": "mod:dermoscopy", "3": "mod:pathology", "4": "mod:other", x: "exclude", i: "include",
  "0": "clear", u: "undo", e: "edit", j: "next", ArrowRight: "next", k: "prev", ArrowLeft: "prev"};

document.addEventListener("keydown", (ev) => {
  if (editing) {
    if (ev.key === "Escape") { ev.preventDefault(); finishEdit(false); }
    else if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); finishEdit(true); }
    return;
  }
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const act = KEYS[ev.key];
  if (act && records.length) { ev.preventDefault(); ACTIONS[act](); }
});
document.addEventListener("click", (ev) => {
  const act = ev.target.closest("button") && ev.target.closest("button").dataset.act;
  if (act && ACTIONS[act] && records.length) ACTIONS[act]();
});

async function refresh() {  // decisions made in another tab
  try { decisions = await api("/api/decisions"); if (!editing) show(); } catch (e) { status(`offline: ${e.message}`, false); }
}

window.addEventListener("DOMContentLoaded", async () => {
  $("img").addEventListener("error", () => { $("img").hidden = true; $("missing").hidden = false; });
  try {
    const data = await api("/api/records");
    records = data.records; decisions = data.decisions; EXCLUDING = new Set(data.excluding);
    $("dataset").textContent = `${data.dataset} → ${data.corrections}`;
    document.title = `mmskin review: ${data.dataset}`;
    show();
  } catch (e) { status(`cannot load: ${e.message}`, false); }
  window.addEventListener("focus", refresh);
  setInterval(refresh, 3000);
});
