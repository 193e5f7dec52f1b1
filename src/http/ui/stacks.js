// cronstack dashboard: stacks (#/stacks, #/stacks/ID) and schedules (#/schedules). Uses
// app.js's helpers.
"use strict";

// A pipeline stack's blocks, in order, with their conversions (the owner's view has them).
function blockList(st) {
  return h("ol", { class: "blocks" }, (st.blocks || []).map((b) =>
    h("li", { class: "block" },
      h("strong", {}, b.type), b.name ? h("span", { class: "muted" }, ` ${b.name}`) : null,
      b.conversion !== undefined ? h("code", { class: "cmd" }, JSON.stringify(b.conversion)) : null,
      st.public ? h("span", { class: "muted" }, " (public)") : null)));
}

async function stacksPage() {
  const draw = drawer();
  const [stacks, schedules] = await Promise.all([all("/blockstacks", "stacks"), all("/schedules", "schedules")]);
  const own = stacks.filter((st) => Array.isArray(st.jobs)); // the caller's: listed with their jobs

  const cards = stacks.map((st) => {
    const mine = Boolean(st.jobs);
    const rows = (st.jobs || []).map((j) => h("tr", {},
      h("td", {}, h("a", { href: `#/jobs/${j.id}`, class: "job-link" }, j.name || `job-${j.id}`)),
      h("td", {}, badge(j.do_run ? "enabled" : "paused")),
      h("td", { class: "mono" }, configText(j.schedule))));
    return h("section", { class: "panel stack-card" },
      h("header", {},
        h("h2", {}, mine ? h("a", { href: `#/stacks/${st.id}`, class: "stack-link" }, st.name) : st.name),
        h("span", { class: "muted" }, `#${st.id}`, mine ? "" : " · someone else's public stack")),
      st.command !== null && st.command !== undefined
        ? h("p", {}, h("code", { class: "cmd" }, st.command))
        : blockList(st),
      (st.secret_env || []).length
        ? h("p", { class: "muted secret-names" }, "Secret env: ", h("span", { class: "mono" }, st.secret_env.join(", ")))
        : null,
      rows.length
        ? h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Job"), h("th", {}, "State"), h("th", {}, "Schedule"))), h("tbody", {}, rows))
        : mine ? h("p", { class: "muted" }, "No jobs yet.") : null);
  });

  const stackForm = h("form", { class: "stack", id: "stack-form", onsubmit: async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    try {
      const body = { name: f.name.value.trim(), command: f.command.value };
      const secrets = keyValueLines(f.secret_env.value, "Secret env");
      if (Object.keys(secrets).length) body.secret_env = secrets;
      const r = await api("POST", "/blockstacks", body);
      flash(`Created stack ${body.name} (#${r.id})`);
      await stacksPage();
    } catch (e) { fail(e); }
  } },
    field("Name", h("input", { name: "name", id: "stack-name", required: true })),
    field("Command", h("input", { name: "command", id: "stack-command", class: "mono", required: true, placeholder: "echo hello \"$@\"" }),
      "Run with arguments, a command using \"$@\" or $1… gets them there, one simple command or pipeline gets them appended to its last command, and anything else refuses them."),
    field("Secret env", h("textarea", { name: "secret_env", id: "stack-secret-env", class: "mono", rows: 2, autocomplete: "off", spellcheck: "false", placeholder: "API_KEY=value (one per line)" }),
      "Secret values are encrypted at rest, never shown again (names only), and masked as *** in run logs."),
    h("div", {}, h("button", { id: "stack-create", type: "submit" }, "Create stack")));

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
      let r;
      try {
        r = await api("POST", "/jobs", { name, stack_id: Number(f.stack.value), schedule_id: scheduleId, enabled: f.enabled.checked });
      } catch (e) {
        // The schedule made for it goes too: a refused job leaves nothing behind.
        if (!Number(f.schedule.value)) await api("DELETE", `/schedules/${scheduleId}`).catch(() => {});
        throw e;
      }
      flash(`Created job ${name}`, false, true);
      location.hash = `#/jobs/${r.id}`;
    } catch (e) { fail(e); }
  } },
    field("Name", h("input", { name: "name", id: "job-name", required: true })),
    field("Stack", h("select", { name: "stack", id: "job-stack", required: true }, own.map((st) => h("option", { value: st.id }, st.name)))),
    field("Cron expression", h("input", { name: "cron", id: "job-cron", class: "mono", value: "0 3 * * *" })),
    field("Time zone", h("input", { name: "tz", id: "job-tz", value: browserZone() })),
    field("Or an existing schedule", h("select", { name: "schedule", id: "job-schedule" },
      h("option", { value: "" }, "a new schedule from the expression above"),
      schedules.map((x) => h("option", { value: x.id }, `${x.name || "#" + x.id}: ${x.description}`)))),
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "enabled", id: "job-enabled", checked: true }), "Enabled"),
    h("div", {}, h("button", { id: "job-create", type: "submit", disabled: !own.length }, "Create job")));

  draw(
    h("h1", {}, "Stacks"),
    cards.length ? cards : h("p", { class: "panel muted" }, "No stacks yet: create one below, then a job on it."),
    h("div", { class: "grid2" },
      h("section", { class: "panel" }, h("h2", {}, "New stack"), stackForm),
      h("section", { class: "panel" }, h("h2", {}, "New job"), own.length ? jobForm : h("p", { class: "muted" }, "Create a stack first."))));
}

/** A stack's blocks in the shape PUT takes: [[type, conversion, {name}?], …]. */
const blocksInput = (st) => JSON.stringify((st.blocks || []).map((b) =>
  b.name ? [b.type, b.conversion, { name: b.name }] : [b.type, b.conversion]), null, 2);

async function stackPage(id) {
  const draw = drawer();
  const st = await api("GET", `/blockstacks/byid/${id}`);
  if (!st.jobs) { notFound(`Stack #${id} is someone else's public stack: it can be read on the stacks page, not changed.`); return; }
  const pipeline = st.command === null || st.command === undefined;
  const envText = Object.entries(st.env || {}).map(([k, v]) => `${k}=${v}`).join("\n");
  const hookUrl = `${location.origin}/api/v1/blockstacks/hook/${st.id}`;

  const form = h("form", { class: "stack wide", id: "stack-edit", onsubmit: async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    try {
      const body = {
        name: f.name.value.trim(),
        env: keyValueLines(f.env.value, "Env"),
        workdir: f.workdir.value.trim() || null,
        webhook: f.webhook.value || null,
        webhook_method: f.webhook_method.value,
        public: f.public.checked,
      };
      if (pipeline) {
        try { body.blocks = JSON.parse(f.blocks.value); } catch (e) { throw new Error(`Blocks: not JSON (${e.message})`); }
      } else body.command = f.command.value;
      // Secret values are write-only: new ones are sent, removed names sent as null.
      const secrets = keyValueLines(f.secret_env.value, "New secret env");
      for (const box of f.querySelectorAll("input[data-secret]:checked")) secrets[box.dataset.secret] = null;
      if (Object.keys(secrets).length) body.secret_env = secrets;
      await api("PUT", `/blockstacks/${id}`, body);
      flash(`Saved stack ${body.name}`, false, true);
      await route();
    } catch (e) { fail(e); }
  } },
    field("Name", h("input", { name: "name", id: "stack-edit-name", required: true, value: st.name })),
    pipeline
      ? field("Blocks (JSON: [[type, conversion, {\"name\": …}?], …])", h("textarea", { name: "blocks", id: "stack-edit-blocks", class: "mono", rows: 8, spellcheck: "false" }, blocksInput(st)))
      : field("Command", h("textarea", { name: "command", id: "stack-edit-command", class: "mono", rows: 2, spellcheck: "false", required: true }, st.command)),
    field("Env", h("textarea", { name: "env", id: "stack-edit-env", class: "mono", rows: 3, spellcheck: "false", placeholder: "KEY=value (one per line)" }, envText),
      "Plain variables, shown to anyone who can read the stack."),
    h("fieldset", {}, h("legend", {}, "Secret env"),
      (st.secret_env || []).length
        ? h("ul", { class: "secrets", id: "stack-secret-names" }, st.secret_env.map((n) => h("li", {},
          h("code", {}, n), " ", h("label", { class: "check inline" }, h("input", { type: "checkbox", "data-secret": n, id: `secret-remove-${n}` }), "remove"))))
        : h("p", { class: "muted" }, "None."),
      field("Set or replace (KEY=value per line)", h("textarea", { name: "secret_env", id: "stack-edit-secret-env", class: "mono", rows: 2, autocomplete: "off", spellcheck: "false" }),
        "Values are write-only: never shown again, masked as *** in logs.")),
    field("Working directory", h("input", { name: "workdir", id: "stack-edit-workdir", class: "mono", value: optional(st.workdir), placeholder: "the server's" })),
    h("fieldset", {}, h("legend", {}, "Hook (call the stack over HTTP)"),
      field("Access", h("select", { name: "webhook", id: "stack-edit-webhook" },
        [["", "no hook"], ["public", "public: anyone with the URL"], ["token", "token: with the stack's hook token"], ["user", "user: signed-in owner"]]
          .map(([v, t]) => h("option", { value: v, selected: (st.webhook || "") === v }, t)))),
      field("Method", h("select", { name: "webhook_method", id: "stack-edit-webhook-method" },
        ["POST", "GET"].map((m) => h("option", { value: m, selected: st.webhook_method === m }, m)))),
      st.webhook ? h("p", { class: "muted" }, "URL: ", h("code", { class: "cmd", id: "stack-hook-url" }, hookUrl)) : null,
      st.webhook === "token" ? h("p", { class: "muted" }, "Token: ", h("code", { class: "cmd", id: "stack-hook-token" }, st.webhook_token || "–"), " ",
        h("button", { type: "button", class: "link", id: "stack-hook-refresh", onclick: async () => {
          try {
            await api("GET", `/blockstacks/hook/token_refresh/${id}`);
            flash("A new hook token: the old one no longer works", false, true);
            await route();
          } catch (e) { fail(e); }
        } }, "replace it")) : null),
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "public", id: "stack-edit-public", checked: st.public }), "Public (others can read it)"),
    h("div", {}, h("button", { id: "stack-save", type: "submit" }, "Save stack")));

  const remove = h("button", { class: "danger", id: "delete-stack", onclick: async () => {
    if (!confirm(`Delete stack ${st.name}?`)) return;
    try {
      await api("DELETE", `/blockstacks/${id}`);
      flash(`Deleted stack ${st.name}`, false, true);
      location.hash = "#/stacks";
    } catch (e) {
      // A stack jobs still run is refused (409): the message names them.
      fail(e);
    }
  } }, "Delete stack");

  draw(
    h("p", {}, h("a", { href: "#/stacks" }, "← Stacks")),
    h("h1", {}, st.name, h("span", { class: "muted" }, `#${st.id}`), h("span", { class: "spacer" }), remove),
    h("div", { class: "grid2" },
      h("section", { class: "panel" }, h("h2", {}, "Settings"), form),
      h("section", { class: "panel" }, h("h2", {}, "Jobs"),
        st.jobs.length
          ? h("ul", { id: "stack-jobs" }, st.jobs.map((j) => h("li", {}, h("a", { href: `#/jobs/${j.id}` }, j.name || `job-${j.id}`), " ", h("span", { class: "muted" }, configText(j.schedule)))))
          : h("p", { class: "muted" }, "No jobs: it can be deleted."),
        pipeline ? h("div", {}, h("h2", {}, "Blocks"), blockList(st)) : null)));
}

async function schedulesPage() {
  const draw = drawer();
  const schedules = await all("/schedules", "schedules");
  const rows = schedules.map((x) => h("tr", { class: "schedule-row" },
    h("td", {}, x.name || h("span", { class: "muted" }, `#${x.id}`)),
    h("td", {}, x.description),
    h("td", { class: "mono" }, configText(x.config)),
    h("td", {}, x.upcoming.length ? when(x.upcoming[0], configZone(x.config)) : "never again"),
    h("td", {}, h("button", { class: "danger small", "data-schedule": x.id, onclick: async () => {
      if (!confirm(`Delete schedule ${x.name || "#" + x.id}?`)) return;
      try {
        await api("DELETE", `/schedules/${x.id}`);
        flash("Deleted the schedule", false, true);
        await route();
      } catch (e) { fail(e); }
    } }, "Delete"))));
  draw(
    h("h1", {}, "Schedules"),
    h("p", { class: "muted" }, "A schedule in use by a job cannot be deleted: change or delete the job first."),
    h("section", { class: "panel" }, rows.length
      ? h("table", { id: "schedules" }, h("thead", {}, h("tr", {}, ["Name", "In words", "Rule", "Next fire time", ""].map((t) => h("th", {}, t)))), h("tbody", {}, rows))
      : h("p", { class: "muted" }, "No schedules.")));
}
