// The dashboard: polls /api/v1/overview and redraws; control buttons POST to /api/v1/control.
// No framework and no CDN: the page must work on a machine with no internet access.
"use strict";
const REFRESH_MS = 1000;
const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("tradingbot-token") || "";
const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
if (fromHash) { token = fromHash; sessionStorage.setItem("tradingbot-token", token); history.replaceState(null, "", location.pathname); }

async function api(path, options = {}) {
  const headers = { "Content-Type": "application/json" };
  if (token) headers.Authorization = "Bearer " + token;
  const response = await fetch(path, { ...options, headers });
  const body = await response.json().catch(() => ({}));
  if (response.status === 401) { $("auth").hidden = false; }
  if (!response.ok) throw new Error(body.detail || response.status + " " + response.statusText);
  return body;
}

function text(value) { return value === null || value === undefined ? "–" : String(value); }
function money(value) {
  if (value === null || value === undefined) return "–";
  return Number(value).toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}
function signClass(value) { return value === null || value === undefined ? "" : Number(value) < 0 ? "neg" : "pos"; }
function cell(tr, value, cls) { const td = document.createElement("td"); td.textContent = value; if (cls) td.className = cls; tr.appendChild(td); return td; }
function fill(tableId, rows, render) {
  const tbody = $(tableId).querySelector("tbody");
  tbody.replaceChildren(...rows.map((row) => { const tr = document.createElement("tr"); render(tr, row); return tr; }));
}
function badge(el, label, level) { el.textContent = label; el.className = "badge " + level; }

function drawChart(curve) {
  const svg = $("pnl-chart");
  const points = curve.filter((p) => p.daily !== null).map((p) => [Date.parse(p.time), Number(p.daily)]);
  if (points.length === 0) { svg.innerHTML = '<text x="10" y="20" fill="#889">no P&amp;L yet</text>'; return; }
  const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]).concat([0]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs) || x0 + 1, y0 = Math.min(...ys), y1 = Math.max(...ys);
  const sx = (x) => (x1 === x0 ? 300 : ((x - x0) / (x1 - x0)) * 590 + 5);
  const sy = (y) => (y1 === y0 ? 80 : 150 - ((y - y0) / (y1 - y0)) * 140);
  const line = points.map((p) => sx(p[0]).toFixed(1) + "," + sy(p[1]).toFixed(1)).join(" ");
  const last = points[points.length - 1][1];
  const colour = last < 0 ? "#c62828" : "#2e7d32";
  svg.innerHTML = '<line x1="0" x2="600" y1="' + sy(0) + '" y2="' + sy(0) + '" stroke="#ccd" />' +
    '<polyline fill="none" stroke-width="2" stroke="' + colour + '" points="' + line + '" />' +
    '<text x="4" y="12" font-size="10" fill="#889">' + money(y1) + '</text>' +
    '<text x="4" y="158" font-size="10" fill="#889">' + money(y0) + '</text>' +
    '<circle r="3" fill="' + colour + '" cx="' + sx(points[points.length - 1][0]).toFixed(1) + '" cy="' + sy(last).toFixed(1) + '" />';
}

function render(o) {
  const state = o.connection.state;
  badge($("conn-state"), "IB: " + state, state === "connected" ? "ok" : state === "degraded" ? "warn" : "bad");
  const risk = o.risk;
  if (risk) {
    badge($("entries-state"), risk.entries_stopped ? "entries stopped" : "entries allowed", risk.entries_stopped ? "warn" : "ok");
    badge($("kill-state"), risk.kill_switch.tripped ? "KILL SWITCH TRIPPED" : "kill switch armed", risk.kill_switch.tripped ? "bad" : "ok");
    fill("rejections", risk.recent_rejections, (tr, r) => { cell(tr, new Date(r.time).toLocaleTimeString()); cell(tr, r.rule); cell(tr, r.message); });
  }
  const c = o.connection;
  const notice = c.last_notice ? c.last_notice.code + " " + c.last_notice.message + " (" + new Date(c.last_notice.time).toLocaleTimeString() + ")" : "none";
  const dl = $("connection");
  dl.replaceChildren();
  for (const [k, v] of [["state", state + " since " + new Date(c.since).toLocaleTimeString()], ["gateway", c.host + ":" + c.port + " client " + c.client_id],
    ["accounts", c.accounts.join(", ")], ["reconnects", c.reconnects], ["last notice", notice]]) {
    const dt = document.createElement("dt"); dt.textContent = k; const dd = document.createElement("dd"); dd.textContent = text(v); dd.style.margin = "0"; dl.append(dt, dd);
  }
  if (o.positions) {
    $("positions-source").textContent = o.positions.source === "ib" ? "" : "(from " + o.positions.source + ")";
    fill("positions", o.positions.positions, (tr, p) => {
      cell(tr, p.symbol); cell(tr, text(p.quantity), "num"); cell(tr, money(p.avg_cost), "num"); cell(tr, money(p.market_price), "num");
      cell(tr, money(p.unrealized_pnl), "num " + signClass(p.unrealized_pnl)); cell(tr, p.account);
      const b = document.createElement("button"); b.textContent = "Flatten"; b.className = "danger"; b.dataset.symbol = p.symbol;
      b.onclick = () => flatten(p.symbol); cell(tr, "").appendChild(b);
    });
  }
  if (o.orders) fill("orders", o.orders.orders, (tr, r) => { cell(tr, r.order_ref); cell(tr, r.symbol); cell(tr, r.side); cell(tr, r.quantity, "num"); cell(tr, r.order_type); cell(tr, money(r.limit_price), "num"); cell(tr, r.status); cell(tr, r.filled, "num"); });
  fill("fills", o.fills.fills, (tr, f) => { cell(tr, new Date(f.time).toLocaleTimeString()); cell(tr, f.symbol); cell(tr, f.side); cell(tr, f.quantity, "num"); cell(tr, money(f.price), "num"); cell(tr, f.order_ref); });
  const p = o.pnl;
  $("pnl-figures").textContent = "daily " + money(p.daily) + " · unrealized " + money(p.unrealized) + " · realized " + money(p.realized);
  drawChart(p.curve);
  const problems = Object.entries(o.errors).map(([k, v]) => k + ": " + v);
  $("error").hidden = problems.length === 0; $("error").textContent = problems.join(" · ");
  $("updated").textContent = "updated " + new Date().toLocaleTimeString();
}

async function refresh() {
  try { render(await api("/api/v1/overview")); }
  catch (e) { $("error").hidden = false; $("error").textContent = e.message; }
}

async function act(path, body) {
  try {
    const result = await api("/api/v1/control/" + path, { method: "POST", body: JSON.stringify(body || {}) });
    $("action-result").textContent = result.message || path + " done";
  } catch (e) { $("action-result").textContent = e.message; }
  await refresh();
}

function flatten(symbol) {
  if (window.confirm("Close the whole " + symbol + " position with a market order?")) act("flatten", { symbol, confirm: symbol });
}

$("btn-stop-entries").onclick = () => act("entries/stop");
$("btn-resume-entries").onclick = () => act("entries/resume");
$("btn-cancel-all").onclick = () => { if (window.confirm("Cancel every open order?")) act("orders/cancel-all"); };
$("btn-flatten-all").onclick = () => { if (window.prompt("Type ALL to close every position") === "ALL") act("flatten", { all: true, confirm: "ALL" }); };
$("btn-reset-kill").onclick = () => { if (window.confirm("Re-arm the kill switch and allow entries?")) act("kill-switch/reset", { confirm: true }); };
$("btn-token").onclick = () => { token = $("token").value.trim(); sessionStorage.setItem("tradingbot-token", token); $("auth").hidden = true; refresh(); };
refresh();
setInterval(refresh, REFRESH_MS);
