// cronstack dashboard: the overview (#/), the landing page. Every job in one table from
// GET /api/v1/overview (one request a page, the jobs needing attention first), filtered by
// name and stack, paged; kept current while shown. Uses app.js's helpers.
"use strict";

const OVERVIEW_PER_PAGE = 50;

/** The last runs' outcomes as a strip of cells, oldest left, newest right. */
function outcomeStrip(outcomes) {
  const cells = outcomes.slice().reverse().map((o, i, list) =>
    h("span", { class: "cell " + o, title: `${o.replace("_", " ")}${i === list.length - 1 ? " (latest)" : ""}` }));
  return h("span", { class: "strip", "aria-label": `last ${outcomes.length} runs` },
    cells.length ? cells : h("span", { class: "muted" }, "no runs yet"));
}

function overviewRow(j) {
  const zone = j.timezone || "UTC";
  return h("tr", { class: "overview-row", "data-health": j.health },
    h("td", {}, h("a", { href: `#/jobs/${j.id}`, class: "overview-job" }, j.name || `job-${j.id}`),
      j.do_del ? h("span", { class: "muted" }, " (deleting)") : null),
    h("td", {}, h("a", { href: `#/stacks/${j.stack}`, class: "overview-stack" }, j.stack_name || `#${j.stack}`)),
    h("td", {}, j.schedule_description || "–"),
    h("td", { class: "health" }, badge(j.health),
      j.last_run ? h("span", { class: "muted" }, " last ", h("a", { href: `#/runs/${j.last_run.id}` }, j.last_run.outcome.replace("_", " "))) : null),
    h("td", {}, outcomeStrip(j.recent_outcomes || [])),
    h("td", { class: "next" }, j.do_run && j.next_run
      ? [h("span", { class: "next-time" }, when(j.next_run, zone)), h("br"), h("span", { class: "muted next-relative" }, relative(j.next_run))]
      : h("span", { class: "muted" }, !j.do_run ? "paused" : (j.after || []).length ? "after its upstream jobs" : "never again")));
}

async function overviewPage(params) {
  const draw = drawer();
  const state = {
    name: params.get("name") || "",
    stack: params.get("stack") || "",
    page: Math.max(1, Number(params.get("page")) || 1),
  };
  const body = h("tbody", { id: "overview-rows" });
  const counter = h("span", { id: "overview-count", class: "muted" });
  const prev = h("button", { id: "overview-prev", class: "secondary", type: "button" }, "← Previous");
  const next = h("button", { id: "overview-next", class: "secondary", type: "button" }, "Next →");
  const stackSelect = h("select", { id: "overview-stack", name: "stack" }, h("option", { value: "" }, "every stack"));
  const nameInput = h("input", { id: "overview-name", name: "name", type: "search", placeholder: "name contains…", value: state.name, autocomplete: "off" });

  // The filters live in the address (shareable), without a new history entry per keystroke.
  const remember = () => {
    const q = new URLSearchParams();
    if (state.name) q.set("name", state.name);
    if (state.stack) q.set("stack", state.stack);
    if (state.page > 1) q.set("page", state.page);
    const hash = q.toString() ? `#/?${q}` : "#/";
    if (location.hash !== hash) history.replaceState(null, "", hash);
  };
  let shown = 0;
  const load = async () => {
    const ask = ++shown;
    const q = new URLSearchParams({ page: state.page, per_page: OVERVIEW_PER_PAGE });
    if (state.name) q.set("name", state.name);
    if (state.stack) q.set("stack", state.stack);
    const v = await api("GET", `/overview?${q}`);
    if (ask !== shown) return; // a newer filter answered first
    if (stackSelect.options.length !== v.stacks.length + 1) {
      stackSelect.replaceChildren(h("option", { value: "" }, "every stack"),
        ...v.stacks.map((st) => h("option", { value: st.id }, st.name)));
    }
    stackSelect.value = state.stack;
    const pages = Math.max(1, Math.ceil(v.count / OVERVIEW_PER_PAGE));
    if (state.page > pages) { state.page = pages; remember(); return load(); }
    body.replaceChildren(...v.jobs.map(overviewRow));
    if (!v.jobs.length) {
      body.append(h("tr", {}, h("td", { colspan: 6, class: "muted" },
        state.name || state.stack ? "No job matches." : h("span", {}, "No jobs yet: ", h("a", { href: "#/stacks" }, "create a stack and a job"), "."))));
    }
    const first = v.count ? (state.page - 1) * OVERVIEW_PER_PAGE + 1 : 0;
    counter.textContent = `${first}–${first ? first + v.jobs.length - 1 : 0} of ${v.count} job${v.count === 1 ? "" : "s"} · page ${state.page} of ${pages}`;
    prev.disabled = state.page <= 1;
    next.disabled = state.page >= pages;
  };
  const reload = () => { remember(); load().catch(fail); };

  let typing;
  // Typing, a cleared field ("change") and the search field's ✕ ("search") all filter.
  const typed = () => {
    clearTimeout(typing);
    typing = setTimeout(() => {
      if (nameInput.value.trim() === state.name) return;
      state.name = nameInput.value.trim();
      state.page = 1;
      reload();
    }, 250);
  };
  for (const ev of ["input", "change", "search"]) nameInput.addEventListener(ev, typed);
  stackSelect.addEventListener("change", () => { state.stack = stackSelect.value; state.page = 1; reload(); });
  prev.addEventListener("click", () => { state.page -= 1; reload(); });
  next.addEventListener("click", () => { state.page += 1; reload(); });

  await load();
  // Runs come and go on their schedules: refresh while the page is open.
  const timer = setInterval(() => { if (!document.hidden) load().catch(() => { /* next time */ }); }, 15000);
  cleanups.push(() => { clearInterval(timer); clearTimeout(typing); });

  draw(
    h("h1", {}, "Overview", h("span", { class: "spacer" }), h("a", { href: "#/stacks", class: "button secondary" }, "New stack or job")),
    h("section", { class: "panel" },
      h("form", { class: "inline filters", onsubmit: (ev) => ev.preventDefault() },
        field("Job name", nameInput), field("Stack", stackSelect),
        h("span", { class: "spacer" }), counter),
      h("table", { id: "overview" },
        h("thead", {}, h("tr", {}, ["Job", "Stack", "Schedule", "Health", "Last 20 runs", "Next run"].map((t) => h("th", {}, t)))),
        body),
      h("div", { class: "pager" }, prev, next)));
}
