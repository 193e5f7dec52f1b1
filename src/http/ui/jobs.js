// cronstack dashboard: a job (#/jobs/ID: facts, edit every field, delete, run now, history
// and chart) and a run (#/runs/ID: facts, steps, live log, kill). Uses app.js's helpers.
"use strict";

const ACTIVE = ["queued", "running"];

/** A job's `after` entries in words: "extract (#3) on success, …". */
function afterText(job, jobById) {
  if (!job.after || !job.after.length) return "none";
  const names = job.after.map((a) => {
    const up = jobById.get(a.job_id);
    return `${up ? up.name || "job-" + up.id : "job"} (#${a.job_id}) on ${a.on}`;
  });
  return names.join(", ") + (job.after.length > 1 ? (job.after_any ? " — each run of any" : " — once all ran") : "");
}

/** "extract, load:always" → after entries, the jobs by name or #id (looked up by name). */
async function parseAfter(text) {
  const refs = text.split(",").map((t) => t.trim()).filter(Boolean);
  return Promise.all(refs.map(async (t) => {
    let [ref, on] = [t, "success"];
    const m = t.match(/^(.*):(success|failure|always)$/);
    if (m) [ref, on] = [m[1].trim(), m[2]];
    if (/^#?\d+$/.test(ref)) return { job_id: Number(ref.replace("#", "")), on };
    const j = await api("GET", `/jobs/byname/${encodeURIComponent(ref)}`).catch(() => null);
    if (!j) throw new Error(`after: no job named ${ref}`);
    return { job_id: j.id, on };
  }));
}

/** The schedule config the edit form describes. */
function formConfig(f) {
  switch (f.kind.value) {
    case "manual": return { manual: true };
    case "every": return { period: Number(f.period.value) };
    case "at": {
      const t = Date.parse(f.at.value.trim());
      if (Number.isNaN(t)) throw new Error("At: an RFC 3339 time, e.g. 2027-01-01T09:00:00+01:00");
      return { timestamp: Math.floor(t / 1000) };
    }
    default: return { cron: f.cron.value.trim(), timezone: f.tz.value.trim() || "UTC" };
  }
}

/** Whether the form's config is the schedule's own (then the job keeps its schedule). */
function sameConfig(a, b) {
  if (b.cron !== undefined) return a.cron === b.cron && (a.timezone || "UTC") === (b.timezone || "UTC");
  if (b.manual) return a.manual === true;
  if (b.period !== undefined) return a.period === b.period;
  return a.timestamp === b.timestamp;
}

/** The form changing every field of a job, its schedule included. */
function editForm(job, schedule, stacks, jobById) {
  const c = schedule.config || {};
  const kind = c.cron ? "cron" : c.period ? "every" : c.manual ? "manual" : "at";
  const afterValue = (job.after || []).map((a) => {
    const up = jobById.get(a.job_id);
    const ref = up && up.name ? up.name : String(a.job_id);
    return a.on === "success" ? ref : `${ref}:${a.on}`;
  }).join(", ");
  const select = (name, id, values, current) => h("select", { name, id }, values.map((v) => h("option", { value: v, selected: v === current }, v.replace("_", " "))));
  const num = (name, id, value, attrs) => h("input", { name, id, type: "number", value: optional(value), ...attrs });
  const kindSelect = h("select", { name: "kind", id: "edit-kind" },
    [["cron", "cron expression"], ["every", "every N seconds"], ["at", "once, at a time"], ["manual", "never on its own (after its upstream jobs, or run now)"]].map(([v, t]) => h("option", { value: v, selected: v === kind }, t)));
  const parts = {
    cron: h("div", { class: "row" },
      field("Cron expression", h("input", { name: "cron", id: "edit-cron", class: "mono", value: c.cron || "0 3 * * *" })),
      field("Time zone", h("input", { name: "tz", id: "edit-tz", value: c.timezone || browserZone() }))),
    every: field("Every (seconds)", num("period", "edit-period", c.period || 3600, { min: 1 })),
    manual: h("p", { class: "hint" }, "It runs only after the jobs it runs after (below), or when run now."),
    at: field("At (RFC 3339)", h("input", { name: "at", id: "edit-at", class: "mono", value: c.timestamp ? new Date(c.timestamp * 1000).toISOString() : "" })),
  };
  const showKind = () => { for (const [k, el] of Object.entries(parts)) el.hidden = k !== kindSelect.value; };
  kindSelect.addEventListener("change", showKind);
  showKind();

  return h("form", { class: "stack wide", id: "settings-form", onsubmit: async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    try {
      const body = {
        name: f.name.value.trim() || null,
        stack_id: Number(f.stack.value),
        command: f.command.value.trim() ? f.command.value : null,
        enabled: f.enabled.checked,
        timeout_s: numberOrNull(f.timeout.value),
        overlap: f.overlap.value,
        missed: f.missed.value,
        retries: Number(f.retries.value || 0),
        retry_backoff_s: Number(f.retry_backoff.value || 10),
        retry_lost: f.retry_lost.checked,
        jitter_s: Number(f.jitter.value || 0),
        not_before: f.not_before.value.trim() || null,
        not_after: f.not_after.value.trim() || null,
        max_runs: numberOrNull(f.max_runs.value),
        keep_succeeded: numberOrNull(f.keep_succeeded.value),
        keep_failed: numberOrNull(f.keep_failed.value),
        grace_s: numberOrNull(f.grace.value),
        max_duration_s: numberOrNull(f.max_duration.value),
        after: await parseAfter(f.after.value),
        after_any: f.after_any.checked,
      };
      // A changed rule is a new schedule (one in use cannot change); the old one goes when
      // nothing else uses it and it was this job's own (unnamed or named after it).
      const config = formConfig(f);
      let fresh = null;
      if (!sameConfig(c, config)) {
        fresh = (await api("POST", "/schedules", { config })).id;
        body.schedule_id = fresh;
      }
      try {
        await api("PUT", `/jobs/${job.id}`, body);
      } catch (e) {
        if (fresh) await api("DELETE", `/schedules/${fresh}`).catch(() => {});
        throw e;
      }
      if (fresh && (!schedule.name || schedule.name === job.name)) await api("DELETE", `/schedules/${schedule.id}`).catch(() => {});
      flash("Saved", false, true);
      await route();
    } catch (e) { fail(e); }
  } },
    h("div", { class: "row" },
      field("Name", h("input", { name: "name", id: "edit-name", value: optional(job.name) })),
      field("Stack", h("select", { name: "stack", id: "edit-stack" }, stacks.map((st) => h("option", { value: st.id, selected: st.id === job.stack }, st.name))))),
    field("Command (empty: the stack's)", h("input", { name: "command", id: "edit-command", class: "mono", value: optional(job.command) })),
    h("fieldset", {}, h("legend", {}, "Schedule"), field("Kind", kindSelect), Object.values(parts)),
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "enabled", id: "edit-enabled", checked: job.do_run }), "Enabled"),
    h("div", { class: "row" },
      field("Timeout (s, empty: none)", num("timeout", "edit-timeout", job.timeout_s, { min: 1 })),
      field("Overlap", select("overlap", "edit-overlap", ["forbid", "allow", "replace", "queue"], job.overlap)),
      field("Missed slots", select("missed", "edit-missed", ["skip", "run_once", "catch_up"], job.missed))),
    h("div", { class: "row" },
      field("Retries", num("retries", "edit-retries", job.retries, { min: 0, max: 100 })),
      field("Retry backoff (s)", num("retry_backoff", "edit-retry-backoff", job.retry_backoff_s, { min: 1 })),
      h("label", { class: "check" }, h("input", { type: "checkbox", name: "retry_lost", id: "edit-retry-lost", checked: job.retry_lost }), "Retry lost runs")),
    field("Run after (jobs by name or id, :failure or :always for other ends)",
      h("input", { name: "after", id: "job-after", class: "mono", value: afterValue, placeholder: "extract, load:always" })),
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "after_any", id: "job-after-any", checked: job.after_any }), "On each run of any of them (instead of once all ran)"),
    h("div", { class: "row" },
      field("Jitter (s)", num("jitter", "job-jitter", job.jitter_s, { min: 0 })),
      field("Max runs", num("max_runs", "job-max-runs", job.max_runs, { min: 1 }))),
    h("div", { class: "row" },
      field("Not before (RFC 3339)", h("input", { name: "not_before", id: "job-not-before", class: "mono", value: optional(job.not_before), placeholder: "2027-01-01T00:00:00Z" })),
      field("Not after (RFC 3339)", h("input", { name: "not_after", id: "job-not-after", class: "mono", value: optional(job.not_after) }))),
    h("div", { class: "row" },
      field("Grace (s, empty: 60)", num("grace", "edit-grace", job.grace_s, { min: 1 })),
      field("Stuck after (s, empty: never)", num("max_duration", "edit-max-duration", job.max_duration_s, { min: 1 }))),
    h("div", { class: "row" },
      field("Keep succeeded runs (empty: server's)", num("keep_succeeded", "edit-keep-succeeded", job.keep_succeeded, { min: 0 })),
      field("Keep other runs (empty: server's)", num("keep_failed", "edit-keep-failed", job.keep_failed, { min: 0 }))),
    h("div", {}, h("button", { id: "settings-save", type: "submit" }, "Save")));
}

/** A Kill button for a queued or running run; `done` after the kill was sent. */
function killButton(runId, id, done) {
  const b = h("button", { id, class: "secondary small kill", "data-run": runId, onclick: async () => {
    b.disabled = true;
    try {
      const r = await api("POST", `/runs/${runId}/kill`, {});
      flash(r.outcome === "killed" ? `Killed run #${runId}` : `Kill sent to run #${runId}`);
      if (done) done(r);
    } catch (e) { flash(e.message, true); b.disabled = false; }
  } }, "Kill");
  return b;
}

async function jobPage(id) {
  const draw = drawer();
  const job = await api("GET", `/jobs/byid/${id}`);
  const [schedule, runs, overview, upstream] = await Promise.all([
    api("GET", `/schedules/byid/${job.schedule}`),
    all(`/jobs/byid/${id}/runs`, "runs", 50),
    // Only its `stacks` (every stack of the caller, by name) is needed.
    api("GET", "/overview?per_page=1"),
    Promise.all((job.after || []).map((a) => api("GET", `/jobs/byid/${a.job_id}`).catch(() => null))),
  ]);
  const stacks = overview.stacks;
  const jobs = upstream.filter(Boolean);
  const stackName = (stacks.find((st) => st.id === job.stack) || {}).name || `#${job.stack}`;
  const jobById = new Map(jobs.map((j) => [j.id, j]));
  const zone = configZone(schedule.config);
  const toggle = h("button", { id: "pause-toggle", class: job.do_run ? "secondary" : "", onclick: async () => {
    try {
      await api("PUT", `/jobs/${id}`, { enabled: !job.do_run });
      flash(job.do_run ? "Paused" : "Resumed", false, true);
      await route();
    } catch (e) { fail(e); }
  } }, job.do_run ? "Pause" : "Resume");
  const remove = h("button", { class: "danger", id: "delete-job", onclick: async () => {
    if (!confirm(`Delete job ${job.name || id}?`)) return;
    try {
      const r = await api("DELETE", `/jobs/${id}`);
      flash(r.queued_for_deletion ? "The job is deleted at its next slot" : "Deleted", false, true);
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
    field("Arguments (split like a shell splits them)", h("input", { name: "args", id: "run-args", class: "mono", size: 40, placeholder: "--full \"two words\"" })),
    h("button", { id: "run-now", type: "submit" }, "Run now"));

  const runsBody = h("tbody", { id: "runs" });
  const chartBox = h("div", { class: "chart", id: "chart" });
  const refresh = async () => fill(await all(`/jobs/byid/${id}/runs`, "runs", 50));
  const fill = (list) => {
    runsBody.replaceChildren(...list.map((r) => runRow(r, zone, () => refresh().catch(() => {}))));
    if (!list.length) runsBody.append(h("tr", {}, h("td", { colspan: 9, class: "muted" }, "No runs yet.")));
    chartBox.replaceChildren(chart(list));
  };
  fill(runs);
  // Runs come and go on their schedule: refresh the history while the page is open.
  const timer = setInterval(() => { if (!document.hidden) refresh().catch(() => { /* next time */ }); }, 10000);
  cleanups.push(() => clearInterval(timer));

  draw(
    h("p", {}, h("a", { href: "#/" }, "← Overview")),
    h("h1", {}, job.name || `job-${id}`, badge(jobState(job), "job-state"), h("span", { class: "spacer" }), toggle, remove),
    h("div", { class: "grid2" },
      h("section", { class: "panel" }, h("h2", {}, "Job"),
        h("dl", { class: "facts" },
          h("dt", {}, "Stack"), h("dd", {}, h("a", { href: `#/stacks/${job.stack}` }, stackName), ` (#${job.stack})`),
          h("dt", {}, "Command"), h("dd", {}, job.command === null ? h("span", { class: "muted" }, "the stack's") : h("code", { class: "cmd" }, job.command)),
          h("dt", {}, "Schedule"), h("dd", { id: "schedule-words" }, schedule.description),
          h("dt", {}, "Rule"), h("dd", { class: "mono", id: "schedule-rule" }, configText(schedule.config)),
          h("dt", {}, "Health"), h("dd", {}, badge(job.health, "job-health"),
            job.missed_slot ? h("span", { class: "muted" }, ` since the slot of ${when(job.missed_slot, zone)}`) : null,
            job.stuck_run ? h("span", { class: "muted" }, ` run #${job.stuck_run} past ${job.max_duration_s} s`) : null),
          h("dt", {}, "Last run"), h("dd", { id: "last-run" }, job.last_run
            ? h("span", {}, h("a", { href: `#/runs/${job.last_run.id}` }, `#${job.last_run.id}`), " ", badge(job.last_run.outcome), " ", when(job.last_run.finished_at))
            : "–"),
          h("dt", {}, "Last success"), h("dd", {}, when(job.last_success_at)),
          h("dt", {}, "Last failure"), h("dd", {}, when(job.last_failure_at)),
          h("dt", {}, "Next run"), h("dd", { id: "next-run" }, job.do_run && job.next_run ? `${when(job.next_run, zone)} (${relative(job.next_run)})` : job.do_run ? "–" : "– (paused)"),
          h("dt", {}, "Timeout"), h("dd", {}, job.timeout_s ? `${job.timeout_s} s` : "none"),
          h("dt", {}, "Overlap"), h("dd", {}, job.overlap),
          h("dt", {}, "Missed runs"), h("dd", {}, job.missed),
          h("dt", {}, "Retries"), h("dd", {}, `${job.retries} (backoff ${job.retry_backoff_s} s)`),
          h("dt", {}, "Runs after"), h("dd", { id: "job-after-words" }, afterText(job, jobById)),
          h("dt", {}, "Jitter"), h("dd", { id: "job-jitter-words" }, `${job.jitter_s} s`),
          h("dt", {}, "Window"), h("dd", {}, job.not_before || job.not_after ? `${job.not_before ? when(job.not_before) : "any time"} – ${job.not_after ? when(job.not_after) : "any time"}` : "none"),
          h("dt", {}, "Max runs"), h("dd", {}, job.max_runs ? `${job.max_runs} (${job.runs_fired} fired)` : "no limit"))),
      h("section", { class: "panel" }, h("h2", {}, "Next five fire times ", h("span", { class: "muted", id: "upcoming-zone" }, `(${zone})`)),
        schedule.upcoming && schedule.upcoming.length
          ? h("ol", { class: "upcoming", id: "upcoming" }, schedule.upcoming.map((t) => h("li", {}, when(t, zone), h("span", { class: "muted" }, ` · ${relative(t)}`))))
          : h("p", { class: "muted", id: "upcoming" }, "It never fires again."),
        job.do_run ? null : h("p", { class: "muted" }, "Paused: these slots are skipped until it is resumed."))),
    h("section", { class: "panel" }, h("h2", {}, "Run now"), runForm),
    h("section", { class: "panel" }, h("h2", {}, "Duration and lateness"), chartBox),
    h("section", { class: "panel" }, h("h2", {}, "Runs"),
      h("table", {}, h("thead", {}, h("tr", {},
        h("th", {}, "Run"), h("th", {}, "Trigger"), h("th", {}, "Outcome"), h("th", {}, "Scheduled for"),
        h("th", { class: "num" }, "Duration"), h("th", { class: "num" }, "Lateness"), h("th", { class: "num" }, "Exit"), h("th", {}, "Args"), h("th", {}, ""))),
      runsBody)),
    h("section", { class: "panel" }, h("h2", {}, "Change the job"), editForm(job, schedule, stacks, jobById)));
}

function runRow(r, zone, killed) {
  const exit = r.exit_code !== null ? r.exit_code : r.signal !== null ? `signal ${r.signal}` : "–";
  return h("tr", { class: "run-row" },
    h("td", {}, h("a", { href: `#/runs/${r.id}` }, `#${r.id}`)),
    h("td", {}, r.trigger.replace("_", " ")),
    h("td", {}, badge(r.outcome)),
    h("td", {}, when(r.scheduled_for, zone)),
    h("td", { class: "num" }, duration(r.duration_ms)),
    h("td", { class: "num" }, duration(r.lateness_ms)),
    h("td", { class: "num" }, exit),
    h("td", { class: "mono" }, (r.args || []).join(" ")),
    h("td", {}, ACTIVE.includes(r.outcome) ? killButton(r.id, null, killed) : null));
}

/** Run durations and lateness over time (oldest left), as an inline SVG line chart; failed
 *  runs (failed, timed out, killed, lost) are marked in red with a cross. */
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
  svg.append(s("text", { x: L, y: H - 8 }, when(first.scheduled_for)));
  if (points.length > 1) svg.append(s("text", { x: W - R, y: H - 8, "text-anchor": "end" }, when(last.scheduled_for)));
  // Failed runs first, under the lines: a red band across the plot at each.
  points.forEach((r, i) => {
    if (!FAILURES.includes(r.outcome)) return;
    svg.append(s("line", { class: "failed-band", x1: x(i), x2: x(i), y1: T, y2: H - B }));
  });
  for (const [key, cls] of [["duration_ms", "duration"], ["lateness_ms", "lateness"]]) {
    const d = points.map((r, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(r[key]).toFixed(1)}`).join(" ");
    svg.append(s("path", { class: cls, d }));
    points.forEach((r, i) => {
      const failed = FAILURES.includes(r.outcome);
      svg.append(s("circle", { class: `dot-${cls}${failed ? " failed" : ""}`, cx: x(i), cy: y(r[key]), r: failed && cls === "duration" ? 5 : 3 },
        s("title", {}, `run #${r.id} (${r.outcome.replace("_", " ")}): ${cls} ${duration(r[key])}`)));
    });
  }
  const failures = points.filter((r) => FAILURES.includes(r.outcome)).length;
  return h("div", {}, svg, h("div", { class: "legend" },
    h("span", {}, h("span", { class: "sw duration" }), "duration"),
    h("span", {}, h("span", { class: "sw lateness" }), "lateness (start − scheduled time)"),
    h("span", {}, h("span", { class: "sw failed" }), `failed (${failures})`),
    h("span", {}, `last ${points.length} runs`)));
}

// A pipeline run's steps: each one's status, and its output or error.
function stepTable(steps) {
  return h("table", { id: "run-steps" },
    h("thead", {}, h("tr", {}, h("th", {}, "Step"), h("th", {}, "Type"), h("th", {}, "Status"), h("th", {}, "Output / error"))),
    h("tbody", {}, steps.map((st) => h("tr", { class: "step" },
      h("td", {}, String(st.index + 1)),
      h("td", {}, st.name ? `${st.type} (${st.name})` : st.type),
      h("td", {}, badge(st.status)),
      h("td", {}, h("code", { class: "mono" }, st.error ?? (st.status === "succeeded" ? JSON.stringify(st.output) : "–")))))));
}

async function runPage(id) {
  const draw = drawer();
  const run = await api("GET", `/runs/${id}`);
  const job = await api("GET", `/jobs/byid/${run.job}`).catch(() => null);
  const zone = job ? await api("GET", `/schedules/byid/${job.schedule}`).then((x) => configZone(x.config), () => null) : null;
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
      h("dt", {}, "Scheduled for"), h("dd", {}, when(r.scheduled_for, zone)),
      h("dt", {}, "Started"), h("dd", {}, when(r.started_at, zone)),
      h("dt", {}, "Finished"), h("dd", {}, when(r.finished_at, zone)),
      h("dt", {}, "Duration"), h("dd", {}, duration(r.duration_ms)),
      h("dt", {}, "Lateness"), h("dd", {}, duration(r.lateness_ms)),
      h("dt", {}, "Exit"), h("dd", { id: "run-exit" }, exit),
      h("dt", {}, "Node"), h("dd", { class: "mono" }, r.node || "–"));
  };
  show(run);
  // Kill: SIGTERM to the run's process group wherever it goes (SIGKILL after the kill grace).
  const kill = killButton(id, "kill-run", show);
  draw(
    h("p", {}, job ? h("a", { href: `#/jobs/${job.id}` }, `← ${job.name || "job-" + job.id}`) : h("a", { href: "#/" }, "← Overview")),
    h("h1", {}, `Run #${id}`, outcomeBox, status, ACTIVE.includes(run.outcome) ? kill : null),
    h("section", { class: "panel" }, facts),
    steps,
    h("section", { class: "panel" }, h("h2", {}, "Log", run.log_truncated ? h("span", { class: "muted" }, " (truncated: head and tail kept)") : null), log));

  if (!ACTIVE.includes(run.outcome)) {
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
  if (ctrl.signal.aborted) return;
  status.className = "";
  status.textContent = "";
  // The final record follows the end of the log by a moment.
  for (let i = 0; i < 50 && !ctrl.signal.aborted; i++) {
    const r = await api("GET", `/runs/${id}`);
    if (!ACTIVE.includes(r.outcome)) { show(r); kill.remove(); break; }
    await new Promise((res) => setTimeout(res, 200));
  }
  if (!log.textContent) log.append(h("span", { class: "muted" }, "(no output)"));
}
