// cronstack dashboard: a small single-page app over the v1 API. No framework, no build step.
// This file holds the helpers every page uses, sign-in and the router; the pages are in
// overview.js, stacks.js, jobs.js, account.js and monitors.js (loaded before this one, which
// starts the app). Signed in by the auth_tkt cookie (username/password) or a bearer token kept
// in this browser's localStorage.
"use strict";

const TOKEN_KEY = "cronstack.token";
let token = localStorage.getItem(TOKEN_KEY) || "";
let me = null;
// Work to stop when the page changes: timers, streams.
let cleanups = [];

// ---------- helpers ----------

/** Builds an element: h("a", {href: "#/"}, "text", child…). Text is never parsed as HTML. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

const SVG = "http://www.w3.org/2000/svg";
function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  for (const c of children) el.append(c instanceof Node ? c : String(c));
  return el;
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(method, path, body) {
  const headers = authHeaders();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch("/api/v1" + path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!r.ok) {
    const msg = (data && (data.msg || data.error_description)) || r.statusText || "request failed";
    throw new ApiError(r.status, msg);
  }
  return data;
}

function authHeaders() {
  return token ? { Authorization: "Bearer " + token } : {};
}

/** Every item of a paged v1 list, up to `max`. */
async function all(path, key, max = 1000) {
  const items = [];
  for (let page = 1; items.length < max; page++) {
    const sep = path.includes("?") ? "&" : "?";
    const v = await api("GET", `${path}${sep}page=${page}`);
    const batch = v[key] || [];
    items.push(...batch);
    if (!batch.length || items.length >= v.count) break;
  }
  return items;
}

/** A message above the page. It belongs to the page it was shown on: the next navigation
 *  clears it, unless `carry` (a success message for the page being navigated to). */
function flash(message, isError, carry) {
  const el = document.getElementById("flash");
  el.textContent = message;
  el.className = "flash" + (isError ? " error" : "");
  el.hidden = false;
  flash.carry = Boolean(carry);
  clearTimeout(flash.timer);
  flash.timer = setTimeout(() => { el.hidden = true; }, isError ? 8000 : 4000);
}

function clearFlash() {
  if (flash.carry) { flash.carry = false; return; }
  clearTimeout(flash.timer);
  document.getElementById("flash").hidden = true;
}

function fail(e) {
  if (e instanceof ApiError && e.status === 401) { showSignIn(); return; }
  flash(e.message || String(e), true);
}

/** A time with its zone's abbreviation: in `tz` (an IANA name) when given, else in the
 *  browser's zone. */
function when(iso, tz) {
  if (!iso) return "–";
  const d = new Date(iso);
  const opts = {
    weekday: "short", year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
  };
  if (tz) opts.timeZone = tz;
  try { return `${d.toLocaleString("en-GB", opts)} ${zoneLabel(d, tz)}`; } catch { return d.toISOString(); }
}

/** The zone's abbreviation at that time (CET, EST, …); its offset (GMT+9) where English has
 *  none. Each English locale knows the abbreviations of its own region's zones only. */
function zoneLabel(d, tz) {
  let label = "";
  for (const locale of ["en-GB", "en-US"]) {
    const parts = new Intl.DateTimeFormat(locale, { timeZone: tz, timeZoneName: "short" }).formatToParts(d);
    label = (parts.find((p) => p.type === "timeZoneName") || {}).value || label;
    if (!/^(GMT|UTC)[+-]/.test(label)) return label;
  }
  return label;
}

/** "in 3 h", "12 min ago": how far a time is from now. */
function relative(iso) {
  if (!iso) return "";
  const ms = new Date(iso).getTime() - Date.now();
  const a = Math.abs(ms);
  const text = a < 60000 ? `${Math.round(a / 1000)} s`
    : a < 3600000 ? `${Math.round(a / 60000)} min`
    : a < 172800000 ? `${Math.round(a / 3600000)} h`
    : `${Math.round(a / 86400000)} d`;
  return ms >= 0 ? `in ${text}` : `${text} ago`;
}

/** The browser's own zone, the default of the zone fields. */
const browserZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

function duration(ms) {
  if (ms === null || ms === undefined) return "–";
  const sign = ms < 0 ? "-" : "";
  ms = Math.abs(ms);
  if (ms < 1000) return `${sign}${ms} ms`;
  if (ms < 60000) return `${sign}${(ms / 1000).toFixed(2)} s`;
  if (ms < 3600000) return `${sign}${Math.floor(ms / 60000)} m ${String(Math.floor(ms / 1000) % 60).padStart(2, "0")} s`;
  return `${sign}${Math.floor(ms / 3600000)} h ${String(Math.floor(ms / 60000) % 60).padStart(2, "0")} m`;
}

function jobState(j) { return j.do_del ? "deleting" : j.do_run ? "enabled" : "paused"; }
const badge = (text, id) => h("span", { class: "badge " + text, id }, text.replace("_", " "));
const FAILURES = ["failed", "timed_out", "killed", "lost"];

/** The zone a schedule config's times are read in. */
const configZone = (c) => (c && c.cron ? c.timezone || "UTC" : "UTC");

function configText(c) {
  if (!c) return "–";
  if (c.cron) return `cron ${c.cron} (${c.timezone || "UTC"})`;
  if (c.period) return `every ${c.period} s`;
  if (c.timestamp) return `at ${when(new Date(c.timestamp * 1000).toISOString(), "UTC")}`;
  if (c.manual) return "manual: after its upstream jobs or when run now";
  return JSON.stringify(c);
}

/** `KEY=VALUE` lines (blank ones skipped) as an object; `what` names the field in errors. */
function keyValueLines(text, what) {
  const out = {};
  text.split("\n").map((l) => l.trim()).filter(Boolean).forEach((line, i) => {
    const at = line.indexOf("=");
    if (at < 1) throw new Error(`${what}, line ${i + 1}: expected KEY=VALUE`);
    out[line.slice(0, at)] = line.slice(at + 1);
  });
  return out;
}

/** Replaces the page. */
function view(...children) {
  const main = document.getElementById("view");
  main.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

/** Which navigation is current: each route() takes the next number. */
let routeGen = 0;

/** The `view` of a page, taken as the page starts: it draws nothing once another navigation
 *  began, so a slow page never draws over the one the person went on to. */
function drawer() {
  const gen = routeGen;
  return (...children) => { if (gen === routeGen) view(...children); };
}

/** The page of something that does not exist: nothing of the previous page stays. */
function notFound(message) {
  view(h("h1", { id: "not-found" }, "Not found"),
    h("p", { class: "panel" }, message, " ", h("a", { href: "#/" }, "Back to the overview")));
}

const field = (label, input, hint) => h("label", {}, label, input, hint ? h("span", { class: "hint" }, hint) : null);
const optional = (v) => (v === null || v === undefined ? "" : String(v));
const numberOrNull = (v) => (String(v).trim() === "" ? null : Number(v));

// ---------- sign in ----------

function showSignIn() {
  stop();
  me = null;
  document.getElementById("nav").hidden = true;
  const pwForm = h("form", { class: "stack", id: "login-form", onsubmit: async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    try {
      token = "";
      localStorage.removeItem(TOKEN_KEY);
      await api("POST", "/authenticate", { username: f.username.value.trim(), password: f.password.value });
      await start();
    } catch (e) { flash(e.message, true); }
  } },
    field("Username or email", h("input", { name: "username", id: "login-username", autocomplete: "username", required: true })),
    field("Password", h("input", { name: "password", id: "login-password", type: "password", autocomplete: "current-password", required: true })),
    h("div", {}, h("button", { id: "login-submit", type: "submit" }, "Sign in")));
  const tokenForm = h("form", { class: "stack", id: "token-form", onsubmit: async (ev) => {
    ev.preventDefault();
    token = ev.target.token.value.trim();
    try {
      await api("GET", "/whoami");
      localStorage.setItem(TOKEN_KEY, token);
      await start();
    } catch (e) { token = ""; flash(e.message, true); }
  } },
    // A token is a password: not shown as typed, not offered by autocomplete.
    field("API token", h("input", { name: "token", id: "token-input", type: "password", placeholder: "cst_…", autocomplete: "off", required: true })),
    h("div", {}, h("button", { id: "token-submit", type: "submit", class: "secondary" }, "Use token")));
  view(h("div", { class: "signin" },
    h("h1", {}, "Sign in to cronstack"),
    h("div", { class: "grid2" },
      h("section", { class: "panel" }, h("h2", {}, "With your password"), pwForm),
      h("section", { class: "panel" }, h("h2", {}, "With an API token"), tokenForm,
        h("p", { class: "muted" }, "Kept in this browser until you sign out.")))));
}

async function signOut() {
  try { await api("POST", "/logout"); } catch { /* signed out either way */ }
  token = "";
  localStorage.removeItem(TOKEN_KEY);
  clearFlash();
  showSignIn();
}

// ---------- routing ----------

function stop() {
  for (const f of cleanups) { try { f(); } catch { /* already stopped */ } }
  cleanups = [];
}

const ROUTES = [
  [/^#\/(\?.*)?$/, (m) => overviewPage(new URLSearchParams(m[1] || ""))],
  [/^#\/stacks$/, () => stacksPage()],
  [/^#\/stacks\/(\d+)$/, (m) => stackPage(Number(m[1]))],
  [/^#\/schedules$/, () => schedulesPage()],
  [/^#\/jobs\/(\d+)$/, (m) => jobPage(Number(m[1]))],
  [/^#\/runs\/(\d+)$/, (m) => runPage(Number(m[1]))],
  [/^#\/monitors$/, () => monitorsPage()],
  [/^#\/monitors\/(\d+)$/, (m) => monitorPage(Number(m[1]))],
  [/^#\/tokens$/, () => tokensPage()],
  [/^#\/webhooks$/, () => webhooksPage()],
  [/^#\/webhooks\/(\d+)$/, (m) => webhookPage(Number(m[1]))],
];

async function route() {
  const gen = ++routeGen;
  stop();
  clearFlash();
  if (!me) return;
  const hash = location.hash || "#/";
  for (const a of document.querySelectorAll("#nav a[data-section]")) {
    a.classList.toggle("current", hash.startsWith(a.dataset.section) && (a.dataset.section !== "#/" || !/^#\/\w/.test(hash)));
  }
  // The previous page goes at once: none of its buttons stay live while this one loads.
  view(h("p", { class: "muted", id: "loading" }, "Loading…"));
  const found = ROUTES.find(([re]) => re.test(hash));
  if (!found) { notFound(`The dashboard has no page ${hash}.`); return; }
  try {
    await found[1](hash.match(found[0]));
  } catch (e) {
    if (gen !== routeGen) return; // the person went on to another page meanwhile
    if (e instanceof ApiError && e.status === 404) notFound(e.message);
    else if (e instanceof ApiError && e.status === 401) showSignIn();
    else {
      // Not "Loading…" forever: the page says why it is not there (a token without the
      // admin scope on the tokens page, a server that went away).
      view(h("h1", {}, "This page cannot be shown"), h("p", { class: "panel", id: "page-error" }, e.message || String(e)));
    }
  }
}

// ---------- start ----------

async function start() {
  try {
    me = await api("GET", "/whoami");
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      if (token) { token = ""; localStorage.removeItem(TOKEN_KEY); }
      showSignIn();
      return;
    }
    view(h("p", { class: "flash error" }, `The server did not answer: ${e.message}`));
    return;
  }
  document.getElementById("nav").hidden = false;
  document.getElementById("whoami").textContent = me.username;
  await route();
}

// Any error of a page's script shows, rather than failing silently.
window.addEventListener("error", (ev) => flash(`The dashboard hit an error: ${ev.message}`, true));
window.addEventListener("unhandledrejection", (ev) => flash(`The dashboard hit an error: ${ev.reason && ev.reason.message}`, true));
document.getElementById("sign-out").addEventListener("click", signOut);
window.addEventListener("hashchange", route);
start();
