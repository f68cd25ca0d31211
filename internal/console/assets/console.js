// The operator console's one script: it fills in a revocation's
// confirmation until it is in force, and keeps the verifiers table live.
// It only ever sets textContent: no value from the server becomes markup.
"use strict";

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

async function getJSON(url) {
  const r = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (r.status === 401) {
    window.location.reload(); // the session ended: the page sends to sign-in
    throw new Error("signed out");
  }
  if (!r.ok) throw new Error("HTTP " + r.status);
  return r.json();
}

function pendingName(p) {
  return p.name + (p.host ? " on " + p.host : "") + " (at " + p.position + ")";
}

async function followConfirmation(section) {
  const seq = section.dataset.seq;
  const status = document.getElementById("status");
  const list = document.getElementById("pending");
  for (let failures = 0; section.dataset.inForce !== "true" && failures < 30; ) {
    let c;
    try {
      c = await getJSON("/console/api/confirm?seq=" + encodeURIComponent(seq));
    } catch (e) {
      failures++;
      status.textContent = "Cannot reach the console (" + e.message + "); trying again.";
      await new Promise((res) => setTimeout(res, 2000));
      continue;
    }
    list.replaceChildren(...c.pending.map((p) => el("li", pendingName(p))));
    if (c.in_force) {
      section.dataset.inForce = "true";
      status.className = "ok";
      status.textContent = "In force on every verifier (" + c.confirmed + ").";
    } else {
      status.className = "pending";
      status.textContent = "Waiting: in force on " + c.confirmed + ", pending on " + c.pending_count + ".";
    }
  }
}

function age(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.floor(s / 60) + " min ago";
  return Math.floor(s / 3600) + " h ago";
}

async function followVerifiers(table) {
  const body = table.tBodies[0];
  const head = document.getElementById("vhead");
  const updated = document.getElementById("vupdated");
  for (;;) {
    try {
      const l = await getJSON(table.dataset.live);
      const now = Date.now();
      body.replaceChildren(...l.verifiers.map((v) => {
        const tr = el("tr");
        tr.append(el("td", v.name), el("td", v.host), el("td", v.node_url), el("td", v.position),
          el("td", v.lag_entries + " (" + v.lag_ms + " ms)"), el("td", v.state, "state-" + v.state),
          el("td", age(now - Date.parse(v.last_heard))));
        return tr;
      }));
      head.textContent = l.head;
      updated.textContent = "live, updated " + new Date().toLocaleTimeString();
    } catch (e) {
      updated.textContent = "cannot reach the console (" + e.message + ")";
    }
    await new Promise((res) => setTimeout(res, 2000));
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const c = document.getElementById("confirmation");
  if (c) followConfirmation(c);
  const v = document.getElementById("verifiers-table");
  if (v) followVerifiers(v);
});
