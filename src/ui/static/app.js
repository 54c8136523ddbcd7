// stardag-server web UI: progressive enhancement only. Every page reads and every
// form submits without this file. It adds: live build state (polling with ETag/304),
// the "first build arrived" line, copy buttons and confirmation dialogs.
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
