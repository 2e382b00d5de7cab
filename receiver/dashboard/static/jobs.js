// The front page: the credits of the last week, the dead tasks (with Retry), and the jobs,
// newest first, searchable by id and filterable by status, kept live by the feed.

import { Unauthorized, api, described, failed } from "./api.js";
import { ageText, badge, el, foldable, idChip, showToast } from "./dom.js";

const PAGE = 50;

// ---- pieces a job page shares ----------------------------------------------------------

export function jobHref(id) {
  return `#/jobs/${encodeURIComponent(id)}`;
}

export function progressBar(job) {
  return el(
    "span",
    { class: "progress" },
    el("progress", { max: 100, value: job.progress, dataset: { status: job.status } }),
    el("span", { class: "pct", text: `${job.progress}%` }),
  );
}

export function testBadge(job) {
  return job.test ? el("span", { class: "badge test", title: "A test job (framehook send-test): no credits, nothing captured", text: "test" }) : null;
}

// A job's capture, from its `files` ({expected, stored}) and its open tasks, as one of:
// pending (not ended: files are counted when it ends), none (the result names no file),
// complete (all stored), capturing (a shortfall while its tasks still run), missing (a
// shortfall with nothing left running: a capture that failed).
export function capture(job) {
  const { expected, stored } = job.files;
  if (expected === null) {
    // Jobs that ended before framehook counted their files still show what they stored.
    if (stored > 0) return { state: "complete", text: `${stored} stored`, title: `${stored} stored (ended before files were counted)` };
    return { state: "pending", text: "—", title: "Not ended: its files are counted when it ends" };
  }
  if (expected === 0) return { state: "none", text: "no files", title: "The result names no file to capture" };
  const named = `${expected} file${expected === 1 ? "" : "s"}`;
  if (stored >= expected) return { state: "complete", text: `${stored}/${expected}`, title: `All ${named} stored` };
  if (job.openTasks > 0) {
    return { state: "capturing", text: `${stored}/${expected} capturing`, title: `${stored} of ${named} stored: the capture is running` };
  }
  const missing = expected - stored;
  return {
    state: "missing",
    text: `${stored}/${expected} · ${missing} missing`,
    title: `${stored} of ${named} stored, nothing running: ${missing} missing (see the job's tasks)`,
  };
}

export function captureCell(job, tag = "td") {
  const { state, text, title } = capture(job);
  return el(tag, { class: state === "missing" ? "capture problem" : "capture", title, text, dataset: { capture: state, label: "Files" } });
}

// ---- rows ------------------------------------------------------------------------------

function jobRow(job) {
  return el(
    "tr",
    { dataset: { jobId: job.id, status: job.status } },
    el("td", { dataset: { label: "Status" } }, badge(job.status), testBadge(job)),
    el("td", { class: "id-cell", dataset: { label: "Job" } }, idChip(job.id, { href: jobHref(job.id), label: "job id" })),
    el("td", { class: "model", dataset: { label: "Model" }, text: job.model || "—" }),
    el("td", { dataset: { label: "Progress" } }, progressBar(job)),
    captureCell(job),
    ageText(job.createdAt, "td", { class: "age" }),
  );
}

export async function retryTask(task, button) {
  button.disabled = true;
  try {
    await api(`/api/tasks/${task.id}/retry`, { method: "POST" });
    showToast(`Task #${task.id} (${task.handler}) queued again`);
    button.closest("tr")?.remove();
  } catch (error) {
    failed(error, "Retry failed");
    button.disabled = false;
  }
}

function deadRow(task) {
  const button = el("button", { type: "button", text: "Retry", dataset: { retry: task.id }, onclick: () => retryTask(task, button) });
  return el(
    "tr",
    { dataset: { taskId: task.id } },
    el("td", { class: "num mono", text: `#${task.id}` }),
    el("td", { text: task.handler }),
    el("td", { class: "id-cell" }, task.jobId ? idChip(task.jobId, { href: jobHref(task.jobId), label: "job id" }) : "—"),
    el("td", { class: "num attempts", text: String(task.attempts) }),
    el("td", { class: "error" }, foldable(task.lastError || "")),
    ageText(task.updatedAt, "td", { class: "age" }),
    el("td", {}, button),
  );
}

// ---- sections --------------------------------------------------------------------------

function table(headings, body) {
  return el("table", { class: "list" }, el("thead", {}, el("tr", {}, headings.map((h) => el("th", { text: h })))), body);
}

function deadSection(items) {
  const body = el("tbody");
  const count = el("span", { class: "count" });
  const empty = el("div", { class: "empty", text: "No dead tasks." });
  const list = table(["Task", "Handler", "Job", "Attempts", "Last error", "Died", ""], body);
  const section = el("section", { id: "dead" }, el("h2", {}, "Dead tasks", count), empty, list);
  const render = (tasks) => {
    body.replaceChildren(...tasks.map(deadRow));
    count.textContent = `(${tasks.length})`;
    empty.hidden = tasks.length > 0;
    list.hidden = tasks.length === 0;
  };
  render(items);
  return { section, render };
}

// The credits panel loads on its own: a ledger that cannot be read shows its error here and
// leaves the jobs and dead tasks, which matter more, on the page.
function creditsSection() {
  const body = el("div", { class: "credits" }, el("span", { class: "empty", text: "Loading…" }));
  const section = el("section", { id: "credits" }, el("h2", {}, "Credits, last 7 days"), body);
  const show = async () => {
    const ledger = await api("/api/credits?by=model&since=7d");
    const total = ledger.total;
    body.replaceChildren(
      el(
        "div",
        { class: "credit-total" },
        el("strong", { dataset: { credits: total.credits }, text: String(total.credits) }),
        el("span", { text: ` credits · ${total.completed} completed · ${total.failed} failed (refunded)` }),
      ),
      el(
        "ul",
        { class: "credit-models" },
        ledger.items.slice(0, 6).map((row) => el("li", {}, el("span", { text: row.key || "(unknown)" }), el("span", { class: "num", text: String(row.credits) }))),
      ),
    );
  };
  const load = () =>
    show().catch((error) => {
      if (error instanceof Unauthorized) return failed(error, "Credits");
      body.replaceChildren(el("p", { class: "problem", role: "alert", text: `Credits unavailable: ${error.message}` }));
    });
  let pending = null;
  const refresh = () => {
    clearTimeout(pending);
    pending = setTimeout(load, 500);
  };
  return { section, load, refresh };
}

function filters(status, prefix, statuses) {
  const go = (nextStatus, nextPrefix) => {
    const query = new URLSearchParams();
    if (nextStatus) query.set("status", nextStatus);
    if (nextPrefix) query.set("jobId", nextPrefix);
    location.hash = query.toString() ? `#/?${query}` : "#/";
  };
  const search = el("input", {
    type: "search",
    name: "jobId",
    class: "search",
    placeholder: "Job id or its start",
    "aria-label": "Search by job id",
    autocomplete: "off",
    spellcheck: false,
    value: prefix,
  });
  const form = el(
    "form",
    {
      class: "filters",
      role: "search",
      onsubmit: (event) => {
        event.preventDefault();
        go(select.value, search.value.trim());
      },
    },
    search,
  );
  const select = el(
    "select",
    { "aria-label": "Status", onchange: () => go(select.value, search.value.trim()) },
    ["", ...statuses].map((s) => el("option", { value: s, text: s || "every status", selected: s === status })),
  );
  form.append(select, el("button", { type: "submit", class: "quiet", text: "Search" }));
  return form;
}

// ---- the page --------------------------------------------------------------------------

export async function jobsPage(params, show) {
  const status = params.get("status") || "";
  const prefix = (params.get("jobId") || "").trim();
  const query = new URLSearchParams({ limit: PAGE });
  if (status) query.set("status", status);
  if (prefix) query.set("jobId", prefix);
  const [page, dead, statuses] = await Promise.all([
    api(`/api/jobs?${query}`),
    api("/api/tasks?status=dead&limit=100"),
    described("JobStatus"),
  ]);

  const rows = el("tbody");
  const shown = new Map();
  const put = (job, atTop) => {
    const row = jobRow(job);
    const old = shown.get(job.id);
    shown.set(job.id, row);
    if (old) old.replaceWith(row);
    else if (atTop) rows.prepend(row);
    else rows.append(row);
    return row;
  };
  page.items.forEach((job) => put(job, false));

  let cursor = page.nextCursor;
  const more = el("button", {
    type: "button",
    class: "quiet",
    text: "Older jobs",
    hidden: !cursor,
    onclick: async () => {
      try {
        query.set("cursor", cursor);
        const next = await api(`/api/jobs?${query}`);
        next.items.filter((j) => !shown.has(j.id)).forEach((job) => put(job, false));
        cursor = next.nextCursor;
        more.hidden = !cursor;
      } catch (error) {
        failed(error, "Could not load older jobs");
      }
    },
  });
  const searching = prefix ? `No job id starts with “${prefix}”.` : status ? `No ${status} jobs.` : "No jobs yet. Send one with `framehook send-test completed`.";
  const empty = el("div", { class: "empty", text: searching, hidden: page.items.length > 0 });
  const jobs = el(
    "section",
    { id: "jobs" },
    el("h2", { class: "with-tools" }, "Jobs", el("span", { class: "spacer" }), filters(status, prefix, statuses)),
    empty,
    table(["Status", "Job", "Model", "Progress", "Files", "Created"], rows),
    el("div", { class: "empty more" }, more),
  );
  const deadList = deadSection(dead.items);
  const credits = creditsSection();
  show(credits.section, deadList.section, jobs);
  credits.load();

  // A task that dies or finishes without storing a file moves no job row, so the feed sends
  // no job: the rows still "capturing" are read again when the dead tasks change.
  const recheck = async () => {
    const open = [...shown.values()].filter((row) => row.querySelector('[data-capture="capturing"]')).slice(0, 20);
    for (const row of open) {
      const id = row.dataset.jobId;
      try {
        const found = await api(`/api/jobs?${new URLSearchParams({ jobId: id, limit: 5 })}`);
        const job = found.items.find((j) => j.id === id);
        if (job && shown.get(id) === row) put(job, false);
      } catch (error) {
        return failed(error, "Could not refresh a job");
      }
    }
  };
  const rechecker = setInterval(() => {
    if (!document.body.contains(rows)) return clearInterval(rechecker);
    recheck();
  }, 10000);

  return {
    watch: null,
    on: {
      job: (job) => {
        const old = shown.get(job.id);
        if ((status && job.status !== status) || (prefix && !job.id.startsWith(prefix))) {
          old?.remove();
          shown.delete(job.id);
          return;
        }
        put(job, true).classList.add("flash");
        empty.hidden = true;
        if (job.status === "COMPLETED" || job.status === "FAILED") credits.refresh();
      },
      dead: (payload) => {
        deadList.render(payload.items);
        recheck();
      },
    },
    leave: () => clearInterval(rechecker),
  };
}
