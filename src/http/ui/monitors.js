// cronstack dashboard: heartbeat monitors (#/monitors, #/monitors/ID). Loaded before app.js,
// whose helpers (h, api, all, drawer, badge, when, duration, flash, fail, cleanups) it uses when
// its pages are shown.
"use strict";

function monitorSchedule(m) {
  const s = m.schedule || {};
  const rule = s.cron ? `${s.cron} (${s.timezone || "UTC"})` : s.period ? `every ${s.period} s` : JSON.stringify(s);
  return m.description ? `${m.description} — ${rule}` : rule;
}

const pingUrl = (m) => location.origin + m.ping_url;

async function monitorsPage() {
  const draw = drawer();
  const table = h("tbody", { id: "monitor-rows" });
  const render = (monitors) => table.replaceChildren(...monitors.map((m) => h("tr", { class: "monitor-row" },
    h("td", {}, h("a", { href: `#/monitors/${m.id}`, class: "monitor-link" }, m.name)),
    h("td", {}, badge(m.state)),
    h("td", {}, monitorSchedule(m)),
    h("td", {}, `${m.grace_s} s`),
    h("td", {}, m.last_ping_at ? `${when(m.last_ping_at)} (${m.last_ping_kind})` : "–"),
    h("td", {}, when(m.next_expected, (m.schedule || {}).timezone)))));
  render(await all("/monitors", "monitors"));
  // Kept current while shown.
  const timer = setInterval(() => all("/monitors", "monitors").then(render).catch(() => {}), 5000);
  cleanups.push(() => clearInterval(timer));

  const form = h("form", { class: "stack", id: "monitor-form", onsubmit: async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const expr = f.cron.value.trim();
    const schedule = expr ? { cron: expr } : { period: Number(f.period.value) };
    if (expr && f.tz.value.trim()) schedule.timezone = f.tz.value.trim();
    const body = { name: f.name.value.trim(), schedule };
    if (f.grace.value.trim()) body.grace_s = Number(f.grace.value);
    try {
      const m = await api("POST", "/monitors", body);
      flash(`Created monitor ${m.name}: ping ${pingUrl(m)}`);
      location.hash = `#/monitors/${m.id}`;
    } catch (e) { fail(e); }
  } },
    h("label", {}, "Name", h("input", { name: "name", id: "monitor-name", required: true })),
    h("label", {}, "Cron expression of the job", h("input", { name: "cron", id: "monitor-cron", class: "mono", placeholder: "0 3 * * *" })),
    h("label", {}, "Time zone", h("input", { name: "tz", id: "monitor-tz", value: browserZone() })),
    h("label", {}, "Or every (seconds)", h("input", { name: "period", id: "monitor-period", type: "number", min: 1, value: 3600 })),
    h("label", {}, "Grace (seconds)", h("input", { name: "grace", id: "monitor-grace", type: "number", min: 1, placeholder: "3600" })),
    h("div", {}, h("button", { id: "monitor-create", type: "submit" }, "Create monitor")));

  draw(
    h("h1", {}, "Monitors"),
    h("p", { class: "muted" }, "Heartbeat monitors watch cron jobs that run elsewhere: each pings its monitor's URL when it runs (curl it, or wrap the job in `cronstack ping UUID -- command`). A monitor is late past its expected time and down past its grace; monitor.down / monitor.up go to webhook subscriptions."),
    h("section", { class: "panel" }, h("table", {},
      h("thead", {}, h("tr", {}, ["Monitor", "State", "Schedule", "Grace", "Last ping", "Next expected"].map((t) => h("th", {}, t)))),
      table)),
    h("section", { class: "panel" }, h("h2", {}, "New monitor"), form));
}

async function monitorPage(id) {
  const draw = drawer();
  const [m, pings] = await Promise.all([
    api("GET", `/monitors/byid/${id}`), api("GET", `/monitors/byid/${id}/pings`),
  ]);
  const paused = m.state === "paused";
  const toggle = h("button", { id: "monitor-pause", class: "secondary", onclick: async () => {
    try {
      await api("PUT", `/monitors/byid/${id}`, { paused: !paused });
      await monitorPage(id);
    } catch (e) { fail(e); }
  } }, paused ? "Resume" : "Pause");
  const remove = h("button", { id: "monitor-delete", class: "danger", onclick: async () => {
    if (!confirm(`Delete monitor ${m.name} and its pings?`)) return;
    try {
      await api("DELETE", `/monitors/byid/${id}`);
      flash(`Deleted monitor ${m.name}`);
      location.hash = "#/monitors";
    } catch (e) { fail(e); }
  } }, "Delete");
  const rows = (pings.pings || []).map((p) => h("tr", { class: "ping-row" },
    h("td", {}, when(p.created_at)),
    h("td", {}, badge(p.kind === "success" ? "succeeded" : p.kind === "fail" ? "failed" : "running")),
    h("td", {}, p.exit_code === null ? "–" : String(p.exit_code)),
    h("td", {}, duration(p.duration_ms)),
    h("td", {}, p.body ? h("pre", { class: "log ping-body" }, p.body) : h("span", { class: "muted" }, "–"))));
  draw(
    h("p", {}, h("a", { href: "#/monitors" }, "← Monitors")),
    h("h1", {}, m.name, badge(m.state, "monitor-state"), h("span", { class: "spacer" }), toggle, remove),
    h("section", { class: "panel" }, h("dl", { class: "facts", id: "monitor-facts" },
      h("dt", {}, "Ping URL"), h("dd", {}, h("code", { class: "cmd", id: "monitor-ping-url" }, pingUrl(m))),
      h("dt", {}, "Schedule"), h("dd", {}, monitorSchedule(m)),
      h("dt", {}, "Grace"), h("dd", {}, `${m.grace_s} s`),
      h("dt", {}, "Last ping"), h("dd", {}, m.last_ping_at ? `${when(m.last_ping_at)} (${m.last_ping_kind})` : "never"),
      h("dt", {}, "Next expected"), h("dd", {}, when(m.next_expected, (m.schedule || {}).timezone)),
      h("dt", {}, "Down after"), h("dd", {}, when(m.down_after)),
      h("dt", {}, "Try it"), h("dd", {}, h("code", { class: "cmd" }, `curl -fsS -m 10 --retry 5 ${pingUrl(m)}`)))),
    h("section", { class: "panel" }, h("h2", {}, `Pings (${pings.count}, the newest ${m.keep_pings} kept)`),
      rows.length
        ? h("table", {}, h("thead", {}, h("tr", {}, ["At", "Kind", "Exit", "Duration", "Body"].map((t) => h("th", {}, t)))), h("tbody", {}, rows))
        : h("p", { class: "muted" }, "No pings yet.")));
}
