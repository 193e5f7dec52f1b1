// cronstack dashboard: API tokens (#/tokens) and webhook subscriptions (#/webhooks,
// #/webhooks/ID with their deliveries). Uses app.js's helpers.
"use strict";

const SCOPES = ["public", "jobs", "admin"];
const EVENTS = ["run.started", "run.succeeded", "run.failed", "run.timed_out", "job.paused", "job.unpaused",
  "job.deleted", "job.fail", "job.backon", "job.missed", "job.stuck", "job.recovered", "monitor.down", "monitor.up"];
const KINDS = ["webhook", "slack", "discord", "teams", "email"];

/** A secret shown this once, with a copy button. */
function onceBox(id, label, secret) {
  const code = h("code", { class: "cmd secret", id }, secret);
  return h("section", { class: "panel once" },
    h("h2", {}, label),
    h("p", {}, code, " ", h("button", { type: "button", class: "secondary small", onclick: () => navigator.clipboard && navigator.clipboard.writeText(secret).then(() => flash("Copied")) }, "Copy")),
    h("p", { class: "muted" }, "Shown this once: copy it now, it cannot be read again."));
}

async function tokensPage(created) {
  const draw = drawer();
  const list = await api("GET", "/tokens");
  const rows = list.tokens.map((t) => h("tr", { class: "token-row" },
    h("td", {}, t.name || h("span", { class: "muted" }, "(no name)")),
    h("td", {}, t.scopes.join(", ")),
    h("td", {}, when(t.created_at)),
    h("td", {}, h("button", { class: "danger small", "data-token": t.id, onclick: async () => {
      if (!confirm(`Revoke token ${t.name || "#" + t.id}? Whatever uses it stops working.`)) return;
      try {
        await api("DELETE", `/tokens/${t.id}`);
        flash(`Revoked token ${t.name || "#" + t.id}`);
        await tokensPage();
      } catch (e) { fail(e); }
    } }, "Revoke"))));
  const form = h("form", { class: "stack", id: "new-token-form", onsubmit: async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const scopes = SCOPES.filter((sc) => f[`scope_${sc}`].checked);
    try {
      const t = await api("POST", "/tokens", { name: f.name.value.trim() || null, scopes });
      await tokensPage(t);
    } catch (e) { fail(e); }
  } },
    field("Name", h("input", { name: "name", id: "new-token-name", placeholder: "ci-deploy" })),
    h("fieldset", {}, h("legend", {}, "Scopes"),
      SCOPES.map((sc) => h("label", { class: "check" }, h("input", { type: "checkbox", name: `scope_${sc}`, id: `new-token-scope-${sc}`, checked: sc === "public" }), sc)),
      h("p", { class: "hint" }, "public reads and runs or pauses jobs; jobs also changes stacks, schedules and jobs; admin also manages tokens.")),
    h("div", {}, h("button", { id: "new-token-create", type: "submit" }, "Create token")));
  draw(
    h("h1", {}, "API tokens"),
    created ? onceBox("new-token-secret", `Token ${created.name || "#" + created.id} (${created.scopes.join(", ")})`, created.token) : null,
    h("section", { class: "panel" }, rows.length
      ? h("table", { id: "tokens" }, h("thead", {}, h("tr", {}, ["Name", "Scopes", "Created", ""].map((t) => h("th", {}, t)))), h("tbody", {}, rows))
      : h("p", { class: "muted" }, "No tokens.")),
    h("section", { class: "panel" }, h("h2", {}, "New token"), form));
}

function webhookScope(w, stackName) {
  if (w.job_id) return h("a", { href: `#/jobs/${w.job_id}` }, `job #${w.job_id}`);
  if (w.stack_id) return h("a", { href: `#/stacks/${w.stack_id}` }, stackName(w.stack_id));
  if (w.monitor_id) return h("a", { href: `#/monitors/${w.monitor_id}` }, `monitor #${w.monitor_id}`);
  return "everything";
}

/** The fields of a subscription, filled from `w` (a new one when absent). */
function webhookFields(w, stacks, prefix) {
  const events = new Set(w ? w.events : ["run.failed", "job.fail", "job.backon"]);
  return [
    field("Name", h("input", { name: "name", id: `${prefix}-name`, value: w ? optional(w.name) : "" })),
    field("Kind", h("select", { name: "kind", id: `${prefix}-kind` }, KINDS.map((k) => h("option", { value: k, selected: (w ? w.kind : "webhook") === k }, k)))),
    field("URL (kind email: the addresses, comma-separated)", h("input", { name: "url", id: `${prefix}-url`, class: "mono", required: true, value: w ? (w.to ? w.to.join(", ") : w.url) : "", placeholder: "https://example.com/hooks/cronstack" })),
    h("fieldset", { class: "events" }, h("legend", {}, "Events"),
      EVENTS.map((e) => h("label", { class: "check" }, h("input", { type: "checkbox", name: "event", value: e, checked: events.has(e) }), e))),
    field("Only the events of one stack", h("select", { name: "stack", id: `${prefix}-stack` },
      h("option", { value: "" }, "every stack"),
      stacks.map((st) => h("option", { value: st.id, selected: w && w.stack_id === st.id }, st.name)))),
    field("Only the events of one job (its name or #id)", h("input", { name: "job", id: `${prefix}-job`, value: w && w.job_id ? `#${w.job_id}` : "", placeholder: "every job" })),
  ];
}

async function webhookBody(f) {
  const ref = f.job.value.trim();
  let job = null;
  if (/^#?\d+$/.test(ref)) job = Number(ref.replace("#", ""));
  else if (ref) {
    const j = await api("GET", `/jobs/byname/${encodeURIComponent(ref)}`).catch(() => null);
    if (!j) throw new Error(`no job named ${ref}`);
    job = j.id;
  }
  // An email channel takes its recipients as `to`, never a url (the server makes its mailto:).
  const target = f.kind.value === "email"
    ? { to: f.url.value.trim().replace(/^mailto:/, "").split(/[,\s]+/).filter(Boolean) }
    : { url: f.url.value.trim() };
  return {
    ...target,
    name: f.name.value.trim() || null,
    kind: f.kind.value,
    events: [...f.querySelectorAll("input[name=event]:checked")].map((b) => b.value),
    stack_id: f.stack.value ? Number(f.stack.value) : null,
    job_id: job,
  };
}

async function webhooksPage(created) {
  const draw = drawer();
  const [hooks, overview] = await Promise.all([all("/webhooks", "webhooks"), api("GET", "/overview?per_page=1")]);
  const stacks = overview.stacks;
  const stackName = (id) => (stacks.find((st) => st.id === id) || {}).name || `stack #${id}`;
  const rows = hooks.map((w) => h("tr", { class: "webhook-row" },
    h("td", {}, h("a", { href: `#/webhooks/${w.id}`, class: "webhook-link" }, w.name || `#${w.id}`)),
    h("td", {}, w.kind),
    h("td", { class: "mono" }, w.url),
    h("td", {}, w.events.join(", ")),
    h("td", {}, webhookScope(w, stackName))));
  const form = h("form", { class: "stack", id: "new-webhook-form", onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      const body = await webhookBody(ev.target);
      const r = await api("POST", "/webhooks", body);
      await webhooksPage({ ...r, name: body.name });
    } catch (e) { fail(e); }
  } }, webhookFields(null, stacks, "new-webhook"), h("div", {}, h("button", { id: "new-webhook-create", type: "submit" }, "Subscribe")));
  draw(
    h("h1", {}, "Webhooks"),
    h("p", { class: "muted" }, "Subscriptions send each event they name to their URL (signed JSON with their secret for kind webhook; a chat message for slack, discord, teams; a mail for email), retried with backoff."),
    created ? onceBox("new-webhook-secret", `Signing secret of ${created.name || "#" + created.id}`, created.secret) : null,
    h("section", { class: "panel" }, rows.length
      ? h("table", { id: "webhooks" }, h("thead", {}, h("tr", {}, ["Name", "Kind", "URL", "Events", "Of"].map((t) => h("th", {}, t)))), h("tbody", {}, rows))
      : h("p", { class: "muted" }, "No subscriptions.")),
    h("section", { class: "panel" }, h("h2", {}, "New subscription"), form));
}

async function webhookPage(id) {
  const draw = drawer();
  const [w, overview] = await Promise.all([api("GET", `/webhooks/byid/${id}`), api("GET", "/overview?per_page=1")]);
  let page = 1;
  const body = h("tbody", { id: "deliveries" });
  const more = h("button", { class: "secondary", id: "deliveries-more", type: "button" }, "Older deliveries");
  const counter = h("span", { class: "muted", id: "deliveries-count" });
  const load = async (append) => {
    const v = await api("GET", `/webhooks/byid/${id}/deliveries?page=${page}`);
    const rows = v.deliveries.map((d) => h("tr", { class: "delivery-row" },
      h("td", {}, when(d.created_at)),
      h("td", {}, d.event),
      h("td", {}, badge(d.status)),
      h("td", { class: "num" }, d.attempts),
      h("td", {}, d.last_status_code === null ? "–" : String(d.last_status_code)),
      h("td", {}, d.last_error || (d.next_attempt ? `next try ${relative(d.next_attempt)}` : d.delivered_at ? `delivered ${when(d.delivered_at)}` : "–"))));
    if (append) body.append(...rows); else body.replaceChildren(...rows);
    if (!v.count) body.replaceChildren(h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No deliveries yet.")));
    counter.textContent = `${body.querySelectorAll(".delivery-row").length} of ${v.count}`;
    more.hidden = page * v.pagesize >= v.count;
  };
  more.addEventListener("click", () => { page += 1; load(true).catch(fail); });
  await load(false);
  const timer = setInterval(() => { if (!document.hidden && page === 1) load(false).catch(() => {}); }, 5000);
  cleanups.push(() => clearInterval(timer));

  const form = h("form", { class: "stack", id: "webhook-edit", onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      await api("PUT", `/webhooks/${id}`, await webhookBody(ev.target));
      flash("Saved", false, true);
      await route();
    } catch (e) { fail(e); }
  } }, webhookFields(w, overview.stacks, "webhook-edit"), h("div", {}, h("button", { id: "webhook-save", type: "submit" }, "Save")));
  const remove = h("button", { class: "danger", id: "webhook-delete", onclick: async () => {
    if (!confirm(`Delete subscription ${w.name || "#" + id} and its deliveries?`)) return;
    try {
      await api("DELETE", `/webhooks/${id}`);
      flash("Deleted the subscription", false, true);
      location.hash = "#/webhooks";
    } catch (e) { fail(e); }
  } }, "Delete");
  draw(
    h("p", {}, h("a", { href: "#/webhooks" }, "← Webhooks")),
    h("h1", {}, w.name || `Webhook #${id}`, badge(w.kind), h("span", { class: "spacer" }), remove),
    h("section", { class: "panel" }, h("h2", {}, "Deliveries ", counter),
      h("table", {}, h("thead", {}, h("tr", {}, ["Created", "Event", "Status", "Attempts", "HTTP", "Detail"].map((t, i) => h("th", { class: i === 3 ? "num" : null }, t)))), body),
      more),
    h("section", { class: "panel" }, h("h2", {}, "Change it"), form));
}
