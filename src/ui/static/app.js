// stardag-server web UI: progressive enhancement only. Every page reads and every
// form submits without this file. It adds: live build state (polling with ETag/304),
// the "first build arrived" line, copy buttons, confirmation dialogs and slug suggestions.
"use strict";

const pollMs = Number(document.body.dataset.pollMs || 2000);

const icons = { pending: "○", running: "◐", suspended: "‖", completed: "✓", failed: "✕",
  cancelled: "⊘", exit_early: "⤴", skipped: "»" };

function badge(status) {
  const span = document.createElement("span");
  span.className = "badge st-" + status;
  span.dataset.status = status;
  const icon = document.createElement("span");
  icon.className = "icon";
  icon.setAttribute("aria-hidden", "true");
  icon.textContent = icons[status] || "·";
  span.append(icon, " " + status.replace("_", " "));
  return span;
}

// A poller that stops while the tab is hidden and backs off after errors.
function poll(url, onData, intervalFor) {
  let etag = null;
  let errors = 0;
  let timer = null;
  let last = null;
  const lost = document.querySelector(".conn-lost");
  async function tick() {
    timer = null;
    if (document.hidden) return;
    let next = intervalFor();
    try {
      const headers = etag ? { "If-None-Match": etag } : {};
      const resp = await fetch(url, { headers, credentials: "same-origin", cache: "no-cache" });
      if (resp.status === 401) {
        if (lost) { lost.textContent = "Your session expired — sign in again."; lost.hidden = false; }
        return;
      }
      if (resp.status === 200) {
        etag = resp.headers.get("ETag");
        onData(await resp.json());
      } else if (resp.status !== 304) {
        throw new Error("status " + resp.status);
      }
      errors = 0;
      last = Date.now();
      if (lost) lost.hidden = true;
    } catch (e) {
      errors += 1;
      if (lost && errors >= 2) lost.hidden = false;
      if (errors >= 3) next = 30000;
    }
    timer = setTimeout(tick, next);
  }
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && timer === null) tick();
  });
  timer = setTimeout(tick, intervalFor());
  return () => last;
}

// --- build page -------------------------------------------------------------------
const head = document.querySelector("[data-poll-url]");
if (head) {
  let running = head.dataset.running === "true";
  // The node set the page was drawn with; a new one in a poll swaps in the new graph.
  let nodeSet = head.dataset.nodeSet || null;
  const liveText = head.querySelector(".live-text");
  const graph = document.getElementById("graph");
  const lastSeen = poll(head.dataset.pollUrl, async (s) => {
    running = s.build.status === "running" || s.build.status === "pending";
    const holder = document.querySelector("[data-build-status]");
    if (holder) holder.replaceChildren(badge(s.build.status));
    for (const el of document.querySelectorAll("[data-count]")) {
      el.textContent = String(s.counts[el.dataset.count] || 0);
    }
    for (const el of document.querySelectorAll("[data-task-total]")) el.textContent = String(s.nodes.length);
    const done = document.querySelector("[data-completed-at]");
    if (done && s.build.completed_at) {
      // Rendered as the server does: "2026-12-05 07:12:03 UTC".
      const t = document.createElement("time");
      t.setAttribute("datetime", s.build.completed_at);
      t.textContent = s.build.completed_at.slice(0, 19).replace("T", " ") + " UTC";
      done.replaceChildren(t);
    }
    if (nodeSet !== null && s.node_set !== nodeSet && graph && graph.dataset.svgUrl) {
      const resp = await fetch(graph.dataset.svgUrl, { credentials: "same-origin" });
      if (resp.ok) {
        // Parsed as HTML, like the page itself (inert: no script runs from a parse).
        const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
        const svg = doc.body.firstElementChild;
        if (svg && svg.nodeName.toLowerCase() === "svg") graph.replaceChildren(document.importNode(svg, true));
      }
    }
    nodeSet = s.node_set;
    const nodes = new Map();
    for (const g of document.querySelectorAll("g.node[data-task]")) nodes.set(g.dataset.task, g);
    const rows = new Map();
    for (const tr of document.querySelectorAll("tr[data-task]")) rows.set(tr.dataset.task, tr);
    for (const n of s.nodes) {
      const g = nodes.get(n.task_id);
      if (g && g.getAttribute("class") !== "node st-" + n.status) {
        // The node's colour and its status line (icon and word) follow the task.
        g.setAttribute("class", "node st-" + n.status);
        const icon = g.querySelector("tspan.icon");
        if (icon) icon.textContent = icons[n.status] || "·";
        const word = g.querySelector("tspan.word");
        if (word) word.textContent = n.status.replace("_", " ");
      }
      const tr = rows.get(n.task_id);
      const cell = tr && tr.querySelector("td.st .badge");
      if (cell && cell.dataset.status !== n.status) cell.replaceWith(badge(n.status));
    }
    for (const p of document.querySelectorAll("path.edge")) {
      const to = nodes.get(p.dataset.to);
      const st = to ? to.getAttribute("class") : "";
      p.setAttribute("class", st.includes("st-running") ? "edge into-running" : "edge");
    }
  }, () => (running ? pollMs : pollMs * 5));
  if (liveText) {
    setInterval(() => {
      const t = lastSeen();
      liveText.textContent = t ? "Updated " + Math.round((Date.now() - t) / 1000) + " s ago" : "";
    }, 1000);
  }
}

// --- builds list and connect page: new builds ---------------------------------------
for (const box of document.querySelectorAll("[data-watch-builds]")) {
  const initial = Number(box.dataset.initial || 0);
  poll(box.dataset.watchBuilds, (s) => {
    for (const b of s.builds) {
      const tr = document.querySelector('tr[data-build="' + b.id + '"]');
      const cell = tr && tr.querySelector(".badge");
      if (cell && cell.dataset.status !== b.status) cell.replaceWith(badge(b.status));
    }
    if (s.total <= initial || !s.newest) return;
    const arrived = box.querySelector(".arrived");
    if (arrived) {
      const waiting = box.querySelector(".waiting");
      if (waiting) waiting.hidden = true;
      const a = document.createElement("a");
      a.href = s.newest.url;
      a.textContent = "open it";
      arrived.replaceChildren("Build " + s.newest.name + " arrived → ", a);
      arrived.hidden = false;
    } else {
      box.hidden = false;
    }
  }, () => pollMs);
}

// --- copy buttons -------------------------------------------------------------------
document.addEventListener("click", async (ev) => {
  const btn = ev.target.closest("button[data-copy]");
  if (!btn) return;
  try {
    await navigator.clipboard.writeText(btn.dataset.copy);
    btn.textContent = "Copied";
  } catch (e) {
    const input = btn.parentElement.querySelector("input");
    if (input) { input.select(); }
    btn.textContent = "Press Ctrl+C";
  }
  setTimeout(() => { btn.textContent = "Copy"; }, 1500);
});

// --- confirmations in a <dialog> (no window.confirm) ----------------------------------
document.addEventListener("submit", (ev) => {
  const form = ev.target;
  const btn = ev.submitter;
  if (!btn || !btn.dataset.confirm || form.dataset.confirmed) return;
  ev.preventDefault();
  const dialog = document.createElement("dialog");
  dialog.className = "confirm";
  const p = document.createElement("p");
  p.textContent = btn.dataset.confirm;
  const ok = document.createElement("button");
  ok.className = "danger";
  ok.textContent = btn.textContent;
  const cancel = document.createElement("button");
  cancel.textContent = "Cancel";
  dialog.append(p, ok, " ", cancel);
  document.body.append(dialog);
  cancel.addEventListener("click", () => { dialog.close(); dialog.remove(); });
  ok.addEventListener("click", () => { form.dataset.confirmed = "1"; dialog.close(); form.requestSubmit(btn); });
  dialog.showModal();
});

// --- task explorer: "Add a condition" combobox (ARIA 1.2 combobox + listbox) -----------
// Three stages as upstream's SEARCH_UX: keys (from …/-/search/keys), operators, values
// (from …/-/search/values). Without JS the field keeps its <datalist> of keys.
const ops = [["=", "equals"], ["!=", "not equal"], [">", "greater than"], ["<", "less than"],
  [">=", "at least"], ["<=", "at most"], ["~", "contains"]];
const addInput = document.querySelector("form.explorer-search #add");
if (addInput) {
  const form = addInput.form;
  const list = document.createElement("ul");
  list.id = "add-options";
  list.setAttribute("role", "listbox");
  list.setAttribute("aria-label", "Suggestions");
  list.className = "combo-list";
  list.hidden = true;
  addInput.removeAttribute("list");
  addInput.setAttribute("role", "combobox");
  addInput.setAttribute("aria-autocomplete", "list");
  addInput.setAttribute("aria-expanded", "false");
  addInput.setAttribute("aria-controls", list.id);
  addInput.parentElement.classList.add("combo");
  addInput.after(list);
  let active = -1;
  let items = [];
  let timer = null;
  let inflight = null;
  // Values are asked for keys the server offered only (others answer 422).
  const knownKeys = new Set();
  // "key op value" (upstream style, spaces allowed) → wire "key:op:value".
  const wire = (text) => {
    const m = /^([^\s:]+)\s*(!=|>=|<=|=|>|<|~)\s*(.*)$/.exec(text.trim());
    return m && !text.includes(":") ? m[1] + ":" + m[2] + ":" + m[3].replace(/^"(.*)"$/, "$1") : text.trim();
  };
  const stage = (text) => {
    const parts = text.split(":");
    if (parts.length === 1) return { kind: "key", prefix: parts[0] };
    if (parts.length === 2) return { kind: "op", key: parts[0], prefix: parts[1] };
    return { kind: "value", key: parts[0], op: parts[1], prefix: parts.slice(2).join(":") };
  };
  function close() {
    list.hidden = true;
    list.replaceChildren();
    items = [];
    active = -1;
    addInput.setAttribute("aria-expanded", "false");
    addInput.removeAttribute("aria-activedescendant");
  }
  function show(options) {
    items = options;
    active = -1;
    addInput.removeAttribute("aria-activedescendant");
    list.replaceChildren(...options.map((o, i) => {
      const li = document.createElement("li");
      li.id = "add-opt-" + i;
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", "false");
      li.dataset.value = o.value;
      const main = document.createElement("span");
      main.textContent = o.label;
      li.append(main);
      if (o.note) {
        const note = document.createElement("span");
        note.className = "note";
        note.textContent = o.note;
        li.append(note);
      }
      li.addEventListener("mousedown", (ev) => { ev.preventDefault(); pick(i); });
      return li;
    }));
    list.hidden = options.length === 0;
    addInput.setAttribute("aria-expanded", String(options.length > 0));
  }
  function move(to) {
    if (!items.length) return;
    active = (to + items.length) % items.length;
    list.querySelectorAll("[role=option]").forEach((li, i) => li.setAttribute("aria-selected", String(i === active)));
    const li = document.getElementById("add-opt-" + active);
    addInput.setAttribute("aria-activedescendant", li.id);
    li.scrollIntoView({ block: "nearest" });
  }
  function pick(i) {
    const o = items[i];
    addInput.value = o.value;
    close();
    if (o.submit) { form.requestSubmit(); return; }
    addInput.focus();
    suggest();
  }
  async function fetchJson(url) {
    if (inflight) inflight.abort();
    inflight = new AbortController();
    const resp = await fetch(url, { credentials: "same-origin", signal: inflight.signal });
    if (!resp.ok) throw new Error("status " + resp.status);
    return resp.json();
  }
  async function suggest() {
    const s = stage(addInput.value);
    try {
      if (s.kind === "key") {
        const q = new URLSearchParams({ prefix: s.prefix, limit: "12" });
        const data = await fetchJson(form.dataset.keysUrl + "?" + q);
        for (const k of data.keys) knownKeys.add(k.key);
        show(data.keys.map((k) => ({ value: k.key + ":", label: k.key, note: k.count ? k.count + " tasks" : k.kind })));
      } else if (s.kind === "op") {
        show(ops.filter(([op]) => op.startsWith(s.prefix))
          .map(([op, words]) => ({ value: s.key + ":" + op + ":", label: op, note: words })));
      } else if (!knownKeys.has(s.key) || s.key === "created_at") {
        close();
      } else {
        const q = new URLSearchParams({ key: s.key, prefix: s.prefix, limit: "10" });
        const data = await fetchJson(form.dataset.valuesUrl + "?" + q);
        show(data.values.map((v) => ({ value: s.key + ":" + s.op + ":" + v.value, label: v.value, note: v.count + " tasks", submit: true })));
      }
    } catch (e) {
      if (e.name !== "AbortError") close();
    }
  }
  addInput.addEventListener("input", () => {
    addInput.setCustomValidity("");
    clearTimeout(timer);
    timer = setTimeout(suggest, 150);
  });
  addInput.addEventListener("focus", () => { if (!addInput.value) suggest(); });
  addInput.addEventListener("blur", () => setTimeout(close, 100));
  addInput.addEventListener("keydown", (ev) => {
    if (ev.key === "ArrowDown") { ev.preventDefault(); if (list.hidden) suggest(); else move(active + 1); }
    else if (ev.key === "ArrowUp") { ev.preventDefault(); move(active - 1); }
    else if (ev.key === "Escape") { close(); }
    else if ((ev.key === "Enter" || ev.key === "Tab") && active >= 0) { ev.preventDefault(); pick(active); }
  });
  form.addEventListener("submit", (ev) => {
    const value = wire(addInput.value);
    if (stage(value).kind === "value" && stage(value).prefix.includes(",")) {
      ev.preventDefault();
      addInput.setCustomValidity("Values cannot contain commas.");
      addInput.reportValidity();
      return;
    }
    addInput.value = value;
  });
}

// --- task explorer: Shift/Alt-click on a value excludes it (!=) ------------------------
document.addEventListener("click", (ev) => {
  const a = ev.target.closest("a.cell-filter");
  if (!a || !(ev.shiftKey || ev.altKey)) return;
  ev.preventDefault();
  window.location.assign(a.dataset.exclude);
});

// --- locks: time left counts down; the list is re-read periodically --------------------
const locksLive = document.getElementById("locks-live");
if (locksLive) {
  let loaded = performance.now();
  const tick = () => {
    const gone = performance.now() - loaded;
    for (const el of locksLive.querySelectorAll(".ttl[data-left-ms]")) {
      const left = Math.max(0, Math.round((Number(el.dataset.leftMs) - gone) / 1000));
      el.textContent = left > 0 ? "in " + (left < 60 ? left + " s" : Math.floor(left / 60) + " min " + (left % 60) + " s") : "expired";
    }
  };
  setInterval(tick, 1000);
  setInterval(async () => {
    if (document.hidden) return;
    try {
      const resp = await fetch(locksLive.dataset.refreshUrl, { credentials: "same-origin", cache: "no-cache" });
      if (!resp.ok) return;
      const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
      const fresh = doc.getElementById("locks-live");
      if (!fresh) return;
      locksLive.replaceChildren(...Array.from(fresh.childNodes).map((n) => document.importNode(n, true)));
      const count = doc.querySelector("[data-locks-count]");
      const mine = document.querySelector("[data-locks-count]");
      if (count && mine) mine.replaceWith(document.importNode(count, true));
      loaded = performance.now();
      tick();
    } catch (e) { /* the next refresh retries */ }
  }, pollMs * 5);
}

// --- create forms: the slug follows the name until the user edits it ------------------
// The server's rule (domain::slug::slug_from_name), which also fills an empty slug
// field on submit: lower-case, runs of other characters one "-", none at either end.
function slugFromName(name) {
  const s = name.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "")
    .slice(0, 64).replace(/-+$/, "");
  return s.length >= 2 ? s : "";
}
for (const slug of document.querySelectorAll("input[data-slug-from]")) {
  const name = document.getElementById(slug.dataset.slugFrom);
  if (!name) continue;
  // A slug typed by the user (or kept after a refusal) is theirs; an empty one follows.
  let own = slug.value !== "" && slug.value !== slugFromName(name.value);
  slug.addEventListener("input", () => { own = slug.value !== ""; });
  name.addEventListener("input", () => { if (!own) slug.value = slugFromName(name.value); });
}
