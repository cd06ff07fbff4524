// Hotline console: plain JS, no framework. All data goes in via textContent.
"use strict";
const CSRF = document.querySelector('meta[name="csrf-token"]').content;
const page = document.body.dataset.page;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else if (k.startsWith("on")) node.addEventListener(k.slice(2), v); else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
  return node;
}
function minutes(seconds) {
  if (seconds == null) return "–";
  const m = Math.floor(seconds / 60), s = Math.floor(seconds % 60);
  return m ? `${m} 分 min ${s} s` : `${s} s`;
}
function time(ts) { return ts ? new Date(ts * 1000).toLocaleString() : ""; }
async function post(url, body) {
  const response = await fetch(url, {
    method: "POST", credentials: "same-origin",
    headers: {"Content-Type": "application/json", "X-CSRF-Token": CSRF},
    body: JSON.stringify(body || {}),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error((data.error && data.error.message) || response.statusText);
  return data;
}
async function get(url) {
  const response = await fetch(url, {credentials: "same-origin"});
  if (response.status === 401) { location.href = "/login"; throw new Error("signed out"); }
  const data = await response.json();
  if (!response.ok) throw new Error((data.error && data.error.message) || response.statusText);
  return data;
}
function live(url, handlers) {
  const dot = document.getElementById("live");
  const source = new EventSource(url);
  source.onopen = () => dot && dot.classList.remove("off");
  source.onerror = () => dot && dot.classList.add("off");
  source.addEventListener("logout", () => { source.close(); location.href = "/login"; });
  for (const [name, fn] of Object.entries(handlers)) source.addEventListener(name, (e) => fn(JSON.parse(e.data)));
  return source;
}

// ----------------------------------------------------------------- queue
function renderQueue(snapshot) {
  const body = document.querySelector("#queue tbody");
  body.replaceChildren();
  for (const t of snapshot.tickets) {
    const waiting = t.status === "open" ? snapshot.now - t.created_at : t.waiting_seconds;
    const row = el("tr", {"class": `${t.urgency} ${t.status}`, "data-ticket": t.id},
      el("td", {}, t.id),
      el("td", {}, el("span", {"class": `badge ${t.urgency}`}, t.urgency)),
      el("td", {}, t.trigger), el("td", {}, t.channel), el("td", {}, t.language), el("td", {}, t.sender),
      el("td", {}, t.child_age_months == null ? "–" : `${t.child_age_months} 月 mo`),
      el("td", {"class": "wait", "data-created": t.created_at, "data-status": t.status}, minutes(waiting)),
      el("td", {}, el("span", {"class": `badge ${t.status}`}, t.status + (t.claimed_by ? ` · ${t.claimed_by}` : ""))),
      el("td", {}, el("a", {href: `/tickets/${t.id}`, "class": "open-ticket"}, "打开 Open")));
    body.append(row);
  }
  document.getElementById("empty").hidden = snapshot.tickets.length > 0;
}
let clockOffset = 0;  // server time minus browser time, seconds
function renderQueueLive(snapshot) {
  clockOffset = snapshot.now - Date.now() / 1000;
  renderQueue(snapshot);
}
if (page === "queue") {
  get("/queue").then(renderQueueLive).catch(() => {});
  live("/events", {queue: renderQueueLive});
  // Waiting times tick between updates.
  setInterval(() => {
    const now = Date.now() / 1000 + clockOffset;
    for (const cell of document.querySelectorAll("td.wait[data-status=open]")) {
      cell.textContent = minutes(now - Number(cell.dataset.created));
    }
  }, 1000);
}

// ----------------------------------------------------------------- ticket
if (page === "ticket") {
  const id = document.body.dataset.ticket;
  const error = document.getElementById("error");
  const shown = new Set();
  const show = (msg) => { error.textContent = msg || ""; };
  const transcriptBox = document.getElementById("transcript");
  let ticket = null;

  function line(who, text, at, extra) {
    const node = el("div", {"class": `line ${who}`}, el("small", {}, `${who} · ${time(at)}${extra ? " · " + extra : ""}`), text);
    transcriptBox.append(node);
    transcriptBox.scrollTop = transcriptBox.scrollHeight;
  }
  function setStatus(status, claimedBy, mine) {
    const badge = document.getElementById("status");
    badge.className = `badge ${status}`;
    badge.textContent = status + (claimedBy ? ` · ${claimedBy}` : "");
    document.getElementById("claim").disabled = status !== "open";
    document.getElementById("release").disabled = !(status === "claimed" && mine);
    document.getElementById("resolve").disabled = status !== "claimed";
    document.getElementById("send").disabled = status !== "claimed";
  }
  function renderNotes(notes) {
    document.getElementById("notes").replaceChildren(...notes.map(n => el("li", {}, `${n.username} (${time(n.at)}): ${n.text}`)));
  }
  function renderCallbacks(callbacks) {
    document.getElementById("callbacks").replaceChildren(...callbacks.map(c => el("li", {},
      `${c.phone} · ${c.text} · ${c.status}`,
      c.status === "pending" ? el("button", {onclick: () => post(`/tickets/${id}/callbacks/${c.id}/done`).then(load).catch(e => show(e.message))}, "已回拨 Done") : "")));
  }
  async function load() {
    const data = await get(`/tickets/${id}/data`);
    ticket = data.ticket;
    document.getElementById("ticket-id").textContent = ticket.id;
    const facts = document.getElementById("facts");
    const rows = [["用户 User", ticket.sender], ["渠道 Channel", `${ticket.channel} (${ticket.route})`], ["语言 Language", ticket.language],
      ["紧急 Urgency", ticket.urgency], ["原因 Trigger", ticket.trigger],
      ["孩子月龄 Child age", ticket.child_age_months == null ? "–" : `${ticket.child_age_months}`],
      ["开始 Opened", time(ticket.created_at)]];
    facts.replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
    document.getElementById("summary").replaceChildren(...ticket.summary.map(s => el("li", {}, el("b", {}, "问 Q: "), s.question, el("br"), el("b", {}, "答 A: "), s.answer)));
    document.getElementById("reveal").disabled = !ticket.has_phone;
    renderNotes(data.notes);
    renderCallbacks(data.callbacks);
    setStatus(ticket.status, ticket.claimed_by, ticket.claimed_by_me);
    return data;
  }
  async function loadTranscript() {
    try {
      const data = await get(`/tickets/${id}/transcript`);
      transcriptBox.replaceChildren();
      for (const e of data.events) line(e.who, e.text, e.at);
    } catch (e) { show(`对话记录读取失败 Transcript unavailable: ${e.message}`); }
  }
  (async () => {
    const data = await load();
    const after = data.messages.reduce((m, x) => Math.max(m, x.id), 0);
    await loadTranscript();
    live(`/tickets/${id}/stream?after=${after}`, {
      status: (s) => { setStatus(s.status, s.claimed_by, s.claimed_by_me); },
      message: (m) => {
        if (shown.has(m.id)) return;
        shown.add(m.id);
        line(m.kind, m.text, m.at, m.username ? `${m.username} · ${m.delivery || ""}` : m.delivery);
      },
    });
  })().catch(e => show(e.message));

  document.getElementById("claim").onclick = () => post(`/tickets/${id}/claim`).then(load).catch(e => show(e.message));
  document.getElementById("release").onclick = () => post(`/tickets/${id}/release`).then(load).catch(e => show(e.message));
  document.getElementById("resolve").onclick = () => post(`/tickets/${id}/resolve`).then(load).catch(e => show(e.message));
  document.getElementById("reveal").onclick = () => post(`/tickets/${id}/reveal-phone`).then(d => {
    document.getElementById("phone").textContent = d.phone || "–";
  }).catch(e => show(e.message));
  document.getElementById("reply-form").onsubmit = (ev) => {
    ev.preventDefault();
    const box = document.getElementById("reply");
    post(`/tickets/${id}/reply`, {text: box.value}).then(d => { box.value = ""; show(d.delivery === "voice" ? "来电用户：已建回拨任务 Voice caller: call-back task created" : ""); load(); })
      .catch(e => show(e.message));
  };
  document.getElementById("note-form").onsubmit = (ev) => {
    ev.preventDefault();
    const box = document.getElementById("note");
    post(`/tickets/${id}/notes`, {text: box.value}).then(() => { box.value = ""; load(); }).catch(e => show(e.message));
  };
}

// -------------------------------------------------------------- dashboard
if (page === "dashboard") {
  get("/dashboard/data").then(d => {
    const t = d.tickets;
    const card = (label, value) => el("div", {"class": "card"}, el("b", {}, value == null ? "–" : value), label);
    document.getElementById("cards").replaceChildren(
      card("待处理 Open", t.by_status.open), card("处理中 Claimed", t.by_status.claimed),
      card("已解决 Resolved", t.by_status.resolved),
      card("等待中位数 Median wait", minutes(t.wait_to_claim_seconds.median)),
      card("等待 P90 wait", minutes(t.wait_to_claim_seconds.p90)),
      card("当前最长等待 Longest waiting now", minutes(t.open_now.longest_wait_seconds)),
      card("解决中位数 Median time to resolve", minutes(t.time_to_resolve_seconds.median)));
    document.querySelector("#unanswered tbody").replaceChildren(...d.unanswered.map(q =>
      el("tr", {}, el("td", {}, q.question), el("td", {}, q.count), el("td", {}, q.people), el("td", {}, q.languages.join(", ")), el("td", {}, time(q.last_at)))));
    const r = d.reminders, box = document.getElementById("reminders");
    if (!r.available) { box.textContent = `提醒服务不可用 Reminders service not available: ${r.reason}`; return; }
    const counts = r.reminders || {};
    box.replaceChildren(el("div", {"class": "cards"}, card("已发送 Sent", counts.sent), card("已确认 Acknowledged", counts.acknowledged), card("失败 Failed", counts.failed)));
    const overdue = r.overdue_by_community;
    if (Array.isArray(overdue)) {
      // rows come sorted by overdue children, most first (hotline/bridge.py overdue_rows)
      box.append(el("h3", {}, "逾期儿童（按社区）Children overdue for a vaccination or check-up, by community"),
        el("table", {"id": "overdue"},
          el("thead", {}, el("tr", {}, el("th", {}, "社区 Community"), el("th", {}, "儿童 Children"),
            el("th", {}, "逾期儿童 Overdue children"), el("th", {}, "逾期项目 Overdue items"))),
          el("tbody", {}, ...overdue.map(o => el("tr", {}, el("td", {}, o.community), el("td", {}, o.children ?? "–"),
            el("td", {}, o.overdue_children), el("td", {}, o.overdue_items ?? "–"))))));
      if (!overdue.length) box.append(el("p", {"class": "hint"}, "没有登记的儿童 No children registered"));
    } else if (r.note) box.append(el("p", {"class": "hint"}, r.note));
  }).catch(e => { document.getElementById("cards").textContent = e.message; });
}

// ------------------------------------------------------------------ audit
if (page === "audit") {
  get("/audit/data").then(d => {
    document.querySelector("#audit tbody").replaceChildren(...d.entries.map(a =>
      el("tr", {}, el("td", {}, time(a.at)), el("td", {}, a.username), el("td", {}, a.action), el("td", {}, a.ticket_id ?? ""), el("td", {}, a.sender_id ?? ""), el("td", {}, a.detail))));
  });
}
