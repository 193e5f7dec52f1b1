// cronstack dashboard: a small single-page app over the v1 API. No framework, no build step.
// Routes: #/ (stacks and their jobs), #/jobs/ID, #/runs/ID. Signed in by the auth_tkt cookie
// (username/password) or a bearer token kept in this browser's localStorage.
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
  const headers = {};
  if (token) headers.Authorization = "Bearer " + token;
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

function flash(message, isError) {
  const el = document.getElementById("flash");
  el.textContent = message;
  el.className = "flash" + (isError ? " error" : "");
  el.hidden = false;
  clearTimeout(flash.timer);
  flash.timer = setTimeout(() => { el.hidden = true; }, isError ? 8000 : 4000);
}

function fail(e) {
  if (e instanceof ApiError && e.status === 401) { showSignIn(); return; }
  flash(e.message || String(e), true);
}

const when = (iso) => (iso ? new Date(iso).toLocaleString() : "–");

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

function configText(c) {
  if (!c) return "–";
  if (c.cron) return `cron ${c.cron} (${c.timezone || "UTC"})`;
  if (c.period) return `every ${c.period} s`;
  if (c.timestamp) return `at ${new Date(c.timestamp * 1000).toLocaleString()}`;
  return JSON.stringify(c);
}

function view(...children) {
  const main = document.getElementById("view");
  main.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

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
    h("label", {}, "Username or email", h("input", { name: "username", id: "login-username", autocomplete: "username", required: true })),
    h("label", {}, "Password", h("input", { name: "password", id: "login-password", type: "password", autocomplete: "current-password", required: true })),
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
    h("label", {}, "API token", h("input", { name: "token", id: "token-input", placeholder: "cst_…", autocomplete: "off", required: true })),
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
  showSignIn();
}

// ---------- routing ----------

function stop() {
  for (const f of cleanups) { try { f(); } catch { /* already stopped */ } }
  cleanups = [];
}

async function route() {
  stop();
  if (!me) return;
  const hash = location.hash || "#/";
  let m;
  try {
    if ((m = hash.match(/^#\/jobs\/(\d+)$/))) await jobPage(Number(m[1]));
    else if ((m = hash.match(/^#\/runs\/(\d+)$/))) await runPage(Number(m[1]));
    else if ((m = hash.match(/^#\/monitors\/(\d+)$/))) await monitorPage(Number(m[1]));
    else if (hash === "#/monitors") await monitorsPage();
    else await stacksPage();
  } catch (e) { fail(e); }
}

// ---------- stacks and their jobs ----------

// `KEY=VALUE` lines (blank ones skipped) as a secret_env object. The value is never echoed.
function secretLines(text) {
  const out = {};
  text.split("\n").map((l) => l.trim()).filter(Boolean).forEach((line, i) => {
    const at = line.indexOf("=");
    if (at < 1) throw new Error(`Secret env, line ${i + 1}: expected KEY=VALUE`);
    out[line.slice(0, at)] = line.slice(at + 1);
  });
  return out;
}

async function stacksPage() {
  const [stacks, jobs, schedules] = await Promise.all([
    all("/blockstacks", "stacks"), all("/jobs", "jobs"), all("/schedules", "schedules"),
  ]);
  const jobById = new Map(jobs.map((j) => [j.id, j]));
  const scheduleById = new Map(schedules.map((x) => [x.id, x]));

  const cards = stacks.map((st) => {
    const rows = (st.jobs || []).map((sj) => {
      const j = jobById.get(sj.id) || { ...sj, do_del: false };
      const sched = scheduleById.get(j.schedule);
      return h("tr", {},
        h("td", {}, h("a", { href: `#/jobs/${j.id}`, class: "job-link" }, j.name || `job-${j.id}`)),
        h("td", {}, badge(jobState(j))),
        h("td", {}, j.health ? badge(j.health) : "–"),
        h("td", {}, sched ? sched.description : configText(sj.schedule)),
        h("td", {}, when(j.next_run)));
    });
    return h("section", { class: "panel stack-card" },
      h("header", {}, h("h2", {}, st.name), h("span", { class: "muted" }, `#${st.id}`)),
      st.command !== null && st.command !== undefined
        ? h("p", {}, h("code", { class: "cmd" }, st.command))
        : blockList(st),
      (st.secret_env || []).length
        ? h("p", { class: "muted secret-names" }, "Secret env: ", h("span", { class: "mono" }, st.secret_env.join(", ")))
        : null,
      rows.length
        ? h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Job"), h("th", {}, "State"), h("th", {}, "Health"), h("th", {}, "Schedule"), h("th", {}, "Next run"))), h("tbody", {}, rows))
        : h("p", { class: "muted" }, "No jobs yet."));
  });

  const stackForm = h("form", { class: "stack", id: "stack-form", onsubmit: async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    try {
      const body = { name: f.name.value.trim(), command: f.command.value };
      const secrets = secretLines(f.secret_env.value);
      if (Object.keys(secrets).length) body.secret_env = secrets;
      const r = await api("POST", "/blockstacks", body);
      flash(`Created stack ${f.name.value.trim()} (#${r.id})`);
      await stacksPage();
    } catch (e) { fail(e); }
  } },
    h("label", {}, "Name", h("input", { name: "name", id: "stack-name", required: true })),
    h("label", {}, "Command", h("input", { name: "command", id: "stack-command", class: "mono", required: true, placeholder: "echo hello \"$@\"" })),
    h("p", { class: "muted", id: "stack-command-hint" }, "Run with arguments, a command using \"$@\" or $1… gets them there, one simple command or pipeline gets them appended to its last command, and anything else refuses them."),
    h("label", {}, "Secret env", h("textarea", { name: "secret_env", id: "stack-secret-env", class: "mono", rows: 2, autocomplete: "off", spellcheck: "false", placeholder: "API_KEY=value (one per line)" })),
    h("p", { class: "muted" }, "Secret values are encrypted at rest, never shown again (names only), and masked as *** in run logs."),
    h("div", {}, h("button", { id: "stack-create", type: "submit" }, "Create stack")));

  const stackSelect = h("select", { name: "stack", id: "job-stack", required: true },
    stacks.map((st) => h("option", { value: st.id }, st.name)));
  const scheduleSelect = h("select", { name: "schedule", id: "job-schedule" },
    h("option", { value: "" }, "a new schedule from the expression above"),
    schedules.map((x) => h("option", { value: x.id }, `${x.name || "#" + x.id}: ${x.description}`)));
  const jobForm = h("form", { class: "stack", id: "job-form", onsubmit: async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const name = f.name.value.trim();
    try {
      let scheduleId = Number(f.schedule.value);
      if (!scheduleId) {
        const config = { cron: f.cron.value.trim() };
        if (f.tz.value.trim()) config.timezone = f.tz.value.trim();
        scheduleId = (await api("POST", "/schedules", { name, config })).id;
      }
      const r = await api("POST", "/jobs", {
        name, stack_id: Number(f.stack.value), schedule_id: scheduleId, enabled: f.enabled.checked,
      });
      flash(`Created job ${name}`);
      location.hash = `#/jobs/${r.id}`;
    } catch (e) { fail(e); }
  } },
    h("label", {}, "Name", h("input", { name: "name", id: "job-name", required: true })),
    h("label", {}, "Stack", stackSelect),
    h("label", {}, "Cron expression", h("input", { name: "cron", id: "job-cron", class: "mono", value: "0 3 * * *" })),
    h("label", {}, "Time zone", h("input", { name: "tz", id: "job-tz", value: Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC" })),
    h("label", {}, "Or an existing schedule", scheduleSelect),
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "enabled", id: "job-enabled", checked: true }), "Enabled"),
    h("div", {}, h("button", { id: "job-create", type: "submit", disabled: !stacks.length }, "Create job")));

  view(
    h("h1", {}, "Stacks"),
    cards.length ? cards : h("p", { class: "panel muted" }, "No stacks yet: create one below, then a job on it."),
    h("div", { class: "grid2" },
      h("section", { class: "panel" }, h("h2", {}, "New stack"), stackForm),
      h("section", { class: "panel" }, h("h2", {}, "New job"), stacks.length ? jobForm : h("p", { class: "muted" }, "Create a stack first."))));
}

// ---------- a job ----------

/** A job's `after` entries in words: "extract (#3) on success, …". */
function afterText(job, jobById) {
  if (!job.after || !job.after.length) return "none";
  const names = job.after.map((a) => {
    const up = jobById.get(a.job_id);
    return `${up ? up.name || "job-" + up.id : "job"} (#${a.job_id}) on ${a.on}`;
  });
  return names.join(", ") + (job.after.length > 1 ? (job.after_any ? " — each run of any" : " — once all ran") : "");
}

/** "extract, load:always" → after entries, the jobs by name or id. */
function parseAfter(text, jobs) {
  return text.split(",").map((t) => t.trim()).filter(Boolean).map((t) => {
    let [ref, on] = [t, "success"];
    const m = t.match(/^(.*):(success|failure|always)$/);
    if (m) [ref, on] = [m[1].trim(), m[2]];
    const j = jobs.find((x) => x.name === ref) || jobs.find((x) => String(x.id) === ref.replace(/^#/, ""));
    if (!j) throw new Error(`after: no job named ${ref}`);
    return { job_id: j.id, on };
  });
}

/** The settings form of a job: window, jitter, run limit, chains. */
function settingsForm(job, jobs, jobById) {
  const afterValue = (job.after || []).map((a) => {
    const up = jobById.get(a.job_id);
    const ref = up && up.name ? up.name : String(a.job_id);
    return a.on === "success" ? ref : `${ref}:${a.on}`;
  }).join(", ");
  return h("form", { class: "stack", id: "settings-form", onsubmit: async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    try {
      const body = {
        jitter_s: Number(f.jitter.value || 0),
        not_before: f.not_before.value.trim() || null,
        not_after: f.not_after.value.trim() || null,
        max_runs: f.max_runs.value.trim() ? Number(f.max_runs.value) : null,
        after: parseAfter(f.after.value, jobs),
        after_any: f.after_any.checked,
      };
      await api("PUT", `/jobs/${job.id}`, body);
      flash("Saved");
      await route();
    } catch (e) { fail(e); }
  } },
    h("label", {}, "Run after (jobs by name or id, :failure or :always for other ends)",
      h("input", { name: "after", id: "job-after", class: "mono", value: afterValue, placeholder: "extract, load:always" })),
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "after_any", id: "job-after-any", checked: job.after_any }), "On each run of any of them (instead of once all ran)"),
    h("label", {}, "Jitter (seconds)", h("input", { name: "jitter", id: "job-jitter", type: "number", min: 0, value: job.jitter_s })),
    h("label", {}, "Not before (RFC 3339)", h("input", { name: "not_before", id: "job-not-before", class: "mono", value: job.not_before || "", placeholder: "2027-01-01T00:00:00Z" })),
    h("label", {}, "Not after (RFC 3339)", h("input", { name: "not_after", id: "job-not-after", class: "mono", value: job.not_after || "" })),
    h("label", {}, "Max runs", h("input", { name: "max_runs", id: "job-max-runs", type: "number", min: 1, value: job.max_runs ?? "" })),
    h("div", {}, h("button", { id: "settings-save", type: "submit" }, "Save")));
}

async function jobPage(id) {
  const job = await api("GET", `/jobs/byid/${id}`);
  const [schedule, stack, runs, jobs] = await Promise.all([
    api("GET", `/schedules/byid/${job.schedule}`),
    api("GET", `/blockstacks/byid/${job.stack}`),
    all(`/jobs/byid/${id}/runs`, "runs", 50),
    all("/jobs", "jobs"),
  ]);
  const jobById = new Map(jobs.map((j) => [j.id, j]));
  const state = jobState(job);
  const toggle = h("button", { id: "pause-toggle", class: job.do_run ? "secondary" : "", onclick: async () => {
    try {
      await api("PUT", `/jobs/${id}`, { enabled: !job.do_run });
      flash(job.do_run ? "Paused" : "Resumed");
      await route();
    } catch (e) { fail(e); }
  } }, job.do_run ? "Pause" : "Resume");
  const remove = h("button", { class: "danger", id: "delete-job", onclick: async () => {
    if (!confirm(`Delete job ${job.name || id}?`)) return;
    try {
      const r = await api("DELETE", `/jobs/${id}`);
      flash(r.queued_for_deletion ? "The job is deleted at its next slot" : "Deleted");
      location.hash = "#/";
    } catch (e) { fail(e); }
  } }, "Delete");

  const runForm = h("form", { class: "inline", id: "run-form", onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      const run = await api("POST", `/jobs/byid/${id}/run`, { args: ev.target.args.value });
      location.hash = `#/runs/${run.id}`;
    } catch (e) { fail(e); }
  } },
    h("label", {}, "Arguments (split like a shell splits them)", h("input", { name: "args", id: "run-args", class: "mono", size: 40, placeholder: "--full \"two words\"" })),
    h("button", { id: "run-now", type: "submit" }, "Run now"));

  const runsBody = h("tbody", { id: "runs" });
  const chartBox = h("div", { class: "chart", id: "chart" });
  const fill = (list) => {
    runsBody.replaceChildren(...list.map(runRow));
    if (!list.length) runsBody.append(h("tr", {}, h("td", { colspan: 8, class: "muted" }, "No runs yet.")));
    chartBox.replaceChildren(chart(list));
  };
  fill(runs);
  // Runs come and go on their schedule: refresh the history while the page is open.
  const timer = setInterval(async () => {
    if (document.hidden) return;
    try { fill(await all(`/jobs/byid/${id}/runs`, "runs", 50)); } catch { /* next time */ }
  }, 10000);
  cleanups.push(() => clearInterval(timer));

  view(
    h("p", {}, h("a", { href: "#/" }, "← Stacks")),
    h("h1", {}, job.name || `job-${id}`, badge(state, "job-state"), h("span", { class: "spacer" }), toggle, remove),
    h("div", { class: "grid2" },
      h("section", { class: "panel" }, h("h2", {}, "Job"),
        h("dl", { class: "facts" },
          h("dt", {}, "Stack"), h("dd", {}, `${stack.name} (#${stack.id})`),
          h("dt", {}, "Command"), h("dd", {}, h("code", { class: "cmd" }, job.command ?? stack.command), job.command === null ? h("span", { class: "muted" }, " (the stack's)") : null),
          h("dt", {}, "Schedule"), h("dd", { id: "schedule-words" }, schedule.description),
          h("dt", {}, "Rule"), h("dd", { class: "mono" }, configText(schedule.config)),
          h("dt", {}, "Health"), h("dd", {}, badge(job.health, "job-health"),
            job.missed_slot ? h("span", { class: "muted" }, ` since the slot of ${when(job.missed_slot)}`) : null,
            job.stuck_run ? h("span", { class: "muted" }, ` run #${job.stuck_run} past ${job.max_duration_s} s`) : null),
          h("dt", {}, "Last run"), h("dd", { id: "last-run" }, job.last_run
            ? h("span", {}, h("a", { href: `#/runs/${job.last_run.id}` }, `#${job.last_run.id}`), " ", badge(job.last_run.outcome), " ", when(job.last_run.finished_at))
            : "–"),
          h("dt", {}, "Last success"), h("dd", {}, job.last_success_at ? when(job.last_success_at) : "–"),
          h("dt", {}, "Last failure"), h("dd", {}, job.last_failure_at ? when(job.last_failure_at) : "–"),
          h("dt", {}, "Next run"), h("dd", { id: "next-run" }, job.do_run ? when(job.next_run) : "– (paused)"),
          h("dt", {}, "Timeout"), h("dd", {}, job.timeout_s ? `${job.timeout_s} s` : "none"),
          h("dt", {}, "Overlap"), h("dd", {}, job.overlap),
          h("dt", {}, "Missed runs"), h("dd", {}, job.missed),
          h("dt", {}, "Retries"), h("dd", {}, `${job.retries} (backoff ${job.retry_backoff_s} s)`),
          h("dt", {}, "Runs after"), h("dd", { id: "job-after-words" }, afterText(job, jobById)),
          h("dt", {}, "Jitter"), h("dd", {}, `${job.jitter_s} s`),
          h("dt", {}, "Window"), h("dd", {}, job.not_before || job.not_after ? `${job.not_before ? when(job.not_before) : "any time"} – ${job.not_after ? when(job.not_after) : "any time"}` : "none"),
          h("dt", {}, "Max runs"), h("dd", {}, job.max_runs ? `${job.max_runs} (${job.runs_fired} fired)` : "no limit"))),
      h("section", { class: "panel" }, h("h2", {}, "Next five fire times"),
        schedule.upcoming && schedule.upcoming.length
          ? h("ol", { class: "upcoming", id: "upcoming" }, schedule.upcoming.map((t) => h("li", {}, when(t))))
          : h("p", { class: "muted", id: "upcoming" }, "It never fires again."),
        job.do_run ? null : h("p", { class: "muted" }, "Paused: these slots are skipped until it is resumed."))),
    h("section", { class: "panel" }, h("h2", {}, "Run now"), runForm),
    h("section", { class: "panel" }, h("h2", {}, "Chains, window and limits"), settingsForm(job, jobs.filter((j) => j.id !== job.id), jobById)),
    h("section", { class: "panel" }, h("h2", {}, "Duration and lateness"), chartBox),
    h("section", { class: "panel" }, h("h2", {}, "Runs"),
      h("table", {}, h("thead", {}, h("tr", {},
        h("th", {}, "Run"), h("th", {}, "Trigger"), h("th", {}, "Outcome"), h("th", {}, "Scheduled for"),
        h("th", { class: "num" }, "Duration"), h("th", { class: "num" }, "Lateness"), h("th", { class: "num" }, "Exit"), h("th", {}, "Args"))),
      runsBody)));
}

function runRow(r) {
  const exit = r.exit_code !== null ? r.exit_code : r.signal !== null ? `signal ${r.signal}` : "–";
  return h("tr", {},
    h("td", {}, h("a", { href: `#/runs/${r.id}` }, `#${r.id}`)),
    h("td", {}, r.trigger.replace("_", " ")),
    h("td", {}, badge(r.outcome)),
    h("td", {}, when(r.scheduled_for)),
    h("td", { class: "num" }, duration(r.duration_ms)),
    h("td", { class: "num" }, duration(r.lateness_ms)),
    h("td", { class: "num" }, exit),
    h("td", { class: "mono" }, (r.args || []).join(" ")));
}

/** Run durations and lateness over time (oldest left), as an inline SVG line chart. */
function chart(runs) {
  const points = runs.filter((r) => r.started_at).slice().reverse();
  if (points.length < 1) return h("p", { class: "muted" }, "The chart appears after the first run.");
  const W = 720, H = 180, L = 58, R = 12, T = 12, B = 28;
  const max = Math.max(1, ...points.map((r) => Math.max(r.duration_ms || 0, r.lateness_ms || 0)));
  const x = (i) => L + (points.length === 1 ? (W - L - R) / 2 : (i * (W - L - R)) / (points.length - 1));
  const y = (v) => T + (H - T - B) * (1 - Math.max(0, v || 0) / max);
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "run duration and lateness" });
  for (const frac of [0, 0.5, 1]) {
    const v = max * frac;
    svg.append(s("line", { class: "axis", x1: L, x2: W - R, y1: y(v), y2: y(v) }));
    svg.append(s("text", { x: L - 6, y: y(v) + 3, "text-anchor": "end" }, duration(Math.round(v))));
  }
  const first = points[0], last = points[points.length - 1];
  svg.append(s("text", { x: L, y: H - 8 }, new Date(first.scheduled_for).toLocaleString()));
  if (points.length > 1) svg.append(s("text", { x: W - R, y: H - 8, "text-anchor": "end" }, new Date(last.scheduled_for).toLocaleString()));
  for (const [key, cls] of [["duration_ms", "duration"], ["lateness_ms", "lateness"]]) {
    const d = points.map((r, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(r[key]).toFixed(1)}`).join(" ");
    svg.append(s("path", { class: cls, d }));
    points.forEach((r, i) => {
      svg.append(s("circle", { class: "dot-" + cls, cx: x(i), cy: y(r[key]), r: 3 },
        s("title", {}, `run #${r.id}: ${cls} ${duration(r[key])}`)));
    });
  }
  return h("div", {}, svg, h("div", { class: "legend" },
    h("span", {}, h("span", { class: "sw duration" }), "duration"),
    h("span", {}, h("span", { class: "sw lateness" }), "lateness (start − scheduled time)"),
    h("span", {}, `last ${points.length} runs`)));
}

// ---------- a run ----------

// A pipeline stack's blocks, in order, with their conversions (the owner's view has them).
function blockList(st) {
  return h("ol", { class: "blocks" }, (st.blocks || []).map((b) =>
    h("li", { class: "block" },
      h("strong", {}, b.type), b.name ? h("span", { class: "muted" }, ` ${b.name}`) : null,
      b.conversion !== undefined ? h("code", { class: "cmd" }, JSON.stringify(b.conversion)) : null,
      st.public ? h("span", { class: "muted" }, " (public)") : null)));
}

// A pipeline run's steps: each one's status, and its output or error.
function stepTable(steps) {
  return h("table", { id: "run-steps" },
    h("thead", {}, h("tr", {}, h("th", {}, "Step"), h("th", {}, "Type"), h("th", {}, "Status"), h("th", {}, "Output / error"))),
    h("tbody", {}, steps.map((s) => h("tr", { class: "step" },
      h("td", {}, String(s.index + 1)),
      h("td", {}, s.name ? `${s.type} (${s.name})` : s.type),
      h("td", {}, badge(s.status)),
      h("td", {}, h("code", { class: "mono" }, s.error ?? (s.status === "succeeded" ? JSON.stringify(s.output) : "–")))))));
}

async function runPage(id) {
  const run = await api("GET", `/runs/${id}`);
  const job = await api("GET", `/jobs/byid/${run.job}`).catch(() => null);
  const log = h("pre", { class: "log", id: "log" });
  const status = h("span", { id: "live" });
  const facts = h("dl", { class: "facts", id: "run-facts" });
  const outcomeBox = h("span", {});
  const steps = h("div", {});
  const show = (r) => {
    outcomeBox.replaceChildren(badge(r.outcome, "run-outcome"));
    steps.replaceChildren(r.steps ? h("section", { class: "panel" }, h("h2", {}, "Steps"), stepTable(r.steps)) : "");
    const exit = r.exit_code !== null ? String(r.exit_code) : r.signal !== null ? `signal ${r.signal}` : "–";
    facts.replaceChildren(
      h("dt", {}, "Job"), h("dd", {}, job ? h("a", { href: `#/jobs/${job.id}` }, job.name || `job-${job.id}`) : `#${r.job}`),
      h("dt", {}, "Trigger"), h("dd", {}, `${r.trigger.replace("_", " ")} (attempt ${r.attempt})`),
      ...(r.upstream_runs ? [h("dt", {}, "After runs"), h("dd", { id: "upstream-runs" }, r.upstream_runs.flatMap((u, i) => [i ? ", " : "", h("a", { href: `#/runs/${u}` }, `#${u}`)]))] : []),
      h("dt", {}, "Arguments"), h("dd", { class: "mono" }, (r.args || []).join(" ") || "none"),
      h("dt", {}, "Scheduled for"), h("dd", {}, when(r.scheduled_for)),
      h("dt", {}, "Started"), h("dd", {}, when(r.started_at)),
      h("dt", {}, "Finished"), h("dd", {}, when(r.finished_at)),
      h("dt", {}, "Duration"), h("dd", {}, duration(r.duration_ms)),
      h("dt", {}, "Lateness"), h("dd", {}, duration(r.lateness_ms)),
      h("dt", {}, "Exit"), h("dd", { id: "run-exit" }, exit),
      h("dt", {}, "Node"), h("dd", { class: "mono" }, r.node || "–"));
  };
  show(run);
  // Kill: SIGTERM to the run's process group wherever it goes (SIGKILL after the kill grace).
  const kill = h("button", { id: "kill-run", class: "secondary", onclick: async () => {
    kill.disabled = true;
    try {
      const r = await api("POST", `/runs/${id}/kill`, {});
      show(r);
      flash(r.outcome === "killed" ? "Killed" : "Kill sent");
    } catch (e) { flash(e.message, true); kill.disabled = false; }
  } }, "Kill");
  view(
    h("p", {}, job ? h("a", { href: `#/jobs/${job.id}` }, `← ${job.name || "job-" + job.id}`) : h("a", { href: "#/" }, "← Stacks")),
    h("h1", {}, `Run #${id}`, outcomeBox, status, ["queued", "running"].includes(run.outcome) ? kill : null),
    h("section", { class: "panel" }, facts),
    steps,
    h("section", { class: "panel" }, h("h2", {}, "Log", run.log_truncated ? h("span", { class: "muted" }, " (truncated: head and tail kept)") : null), log));

  const final = !["queued", "running"].includes(run.outcome);
  if (final) {
    const r = await fetch(`/api/v1/runs/${id}/log`, { headers: authHeaders(), credentials: "same-origin" });
    log.textContent = await r.text();
    if (!log.textContent) log.append(h("span", { class: "muted" }, "(no output)"));
    return;
  }
  // Live: stream the log until the run ends, then show its outcome.
  status.className = "live";
  status.textContent = "live";
  const ctrl = new AbortController();
  cleanups.push(() => ctrl.abort());
  try {
    const r = await fetch(`/api/v1/runs/${id}/log?follow=1`, { headers: authHeaders(), credentials: "same-origin", signal: ctrl.signal });
    const reader = r.body.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
      log.append(decoder.decode(value, { stream: true }));
      if (stick) log.scrollTop = log.scrollHeight;
    }
    log.append(decoder.decode());
  } catch (e) {
    if (ctrl.signal.aborted) return;
    flash(`The log stream broke: ${e.message}`, true);
  }
  status.className = "";
  status.textContent = "";
  // The final record follows the end of the log by a moment.
  for (let i = 0; i < 50; i++) {
    const r = await api("GET", `/runs/${id}`);
    if (!["queued", "running"].includes(r.outcome)) { show(r); kill.remove(); break; }
    await new Promise((res) => setTimeout(res, 200));
  }
  if (!log.textContent) log.append(h("span", { class: "muted" }, "(no output)"));
}

function authHeaders() {
  return token ? { Authorization: "Bearer " + token } : {};
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

document.getElementById("sign-out").addEventListener("click", signOut);
window.addEventListener("hashchange", route);
start();
