// framehook dashboard: the admin API (/api/*) rendered, kept live by /api/events.
//
// No build step and no framework: one module that the receiver serves as a file. Everything
// it shows came from the network (model names, errors, URLs), so text goes in with
// textContent, never innerHTML. The token lives in sessionStorage: it arrives once in the
// URL's fragment (#token=…, never sent to a server) or through the form.

const TOKEN_KEY = "framehook.token";
const PAGE = 50;
const main = document.getElementById("main");
const live = document.getElementById("live");
const toast = document.getElementById("toast");
const forget = document.getElementById("forget");

let token = takeToken();
let stream = null; // the open /api/events reader's AbortController
let view = null; // what is on screen: {kind: "jobs", ...} or {kind: "job", id, ...}

// ---- helpers ---------------------------------------------------------------------------

function takeToken() {
  const match = location.hash.match(/[#&]token=([^&]+)/);
  if (match) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname + location.search + "#/");
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

class Unauthorized extends Error {}

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { Authorization: `Bearer ${token}`, Accept: "application/json" },
  });
  if (response.status === 401) throw new Unauthorized();
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(body.detail || body.reason || `${response.status} ${response.statusText}`);
  }
  return body;
}

function showToast(message, kind = "ok") {
  toast.textContent = message;
  toast.dataset.kind = kind;
  toast.hidden = false;
  clearTimeout(showToast.timer);
  showToast.timer = setTimeout(() => (toast.hidden = true), 4000);
}

function age(iso) {
  if (!iso) return "";
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 60) return `${Math.floor(seconds)}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ago`;
  return `${Math.floor(seconds / 86400)}d ago`;
}

function clock(iso) {
  return iso ? new Date(iso).toLocaleTimeString() : "";
}

function size(bytes) {
  const units = ["B", "KiB", "MiB", "GiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
}

function badge(status) {
  return el("span", { class: "badge", dataset: { status }, text: status });
}

function progressBar(job) {
  return el(
    "span",
    { class: "progress" },
    el("progress", { max: 100, value: job.progress, dataset: { status: job.status } }),
    el("span", { class: "pct", text: `${job.progress}%` }),
  );
}

// A job's capture, from its `files` ({expected, stored}): "4/4", a shortfall such as "0/2"
// marked as a problem, "—" while the result names no file (or the job has not ended).
function capture(files) {
  const { expected, stored } = files;
  if (!expected) {
    // Jobs that ended before framehook counted their files still show what they stored.
    const known = expected === null && stored > 0;
    const why = expected === null ? "Not ended, or ended before files were counted" : "The result names no file";
    return { text: known ? String(stored) : "—", title: known ? `${stored} stored` : why, problem: false };
  }
  const problem = stored < expected;
  const named = `${expected} file${expected === 1 ? "" : "s"}`;
  const title = problem
    ? `${stored} of ${named} stored: the capture is still running, or it failed`
    : `${stored} of ${named} stored`;
  return { text: `${stored}/${expected}`, title, problem };
}

function captureCell(files, tag = "td") {
  const { text, title, problem } = capture(files);
  return el(tag, { class: problem ? "capture problem" : "capture", title, text, dataset: { capture: problem ? "incomplete" : "ok" } });
}

function jobLink(id) {
  return el("a", { href: `#/jobs/${encodeURIComponent(id)}`, class: "mono", text: id });
}

function setLive(state, text) {
  live.dataset.state = state;
  live.textContent = text;
}

// Ages tick without a request.
setInterval(() => {
  for (const node of document.querySelectorAll("[data-age]")) node.textContent = age(node.dataset.age);
}, 1000);

// ---- the live feed ---------------------------------------------------------------------

// EventSource cannot send a bearer token, so the stream is read with fetch: same wire format.
function connect(job) {
  if (stream) stream.abort();
  const controller = new AbortController();
  stream = controller;
  const query = job ? `?job=${encodeURIComponent(job)}` : "";
  let delay = 1000;

  const run = async () => {
    while (!controller.signal.aborted) {
      let busy = 0; // ms the server asked us to wait: it has all the live streams it allows
      try {
        const response = await fetch(`/api/events${query}`, {
          headers: { Authorization: `Bearer ${token}`, Accept: "text/event-stream" },
          signal: controller.signal,
        });
        if (response.status === 401) return loggedOut();
        if (response.status === 503) {
          // The page still works without the feed (lists load on their own); it is only not
          // live. Come back when the server says, not sooner: every refused tab asks again.
          const body = await response.json().catch(() => ({}));
          const seconds = Number.parseInt(response.headers.get("Retry-After") || "", 10);
          if (body.reason === "too_many_streams") busy = (Number.isFinite(seconds) ? seconds : 10) * 1000;
        }
        if (!response.ok || !response.body) throw new Error(`${response.status}`);
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value.replace(/\r\n?/g, "\n");
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            dispatch(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
          }
          delay = 1000;
        }
      } catch (error) {
        if (controller.signal.aborted) return;
      }
      if (busy) setLive("busy", "not live: server busy");
      else setLive("retrying", "reconnecting…");
      await new Promise((resolve) => setTimeout(resolve, Math.max(delay, busy)));
      delay = Math.min(delay * 2, 10000);
    }
  };
  run();
}

function dispatch(block) {
  let event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue; // a keep-alive comment
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  if (!data.length) return;
  const payload = JSON.parse(data.join("\n"));
  if (event === "ready") setLive("live", "live");
  else if (event === "down") setLive("down", "database unavailable");
  else if (view && view.on[event]) view.on[event](payload);
}

// ---- sign in ---------------------------------------------------------------------------

function loggedOut(problem) {
  if (stream) stream.abort();
  sessionStorage.removeItem(TOKEN_KEY);
  token = null;
  forget.hidden = true;
  setLive("off", "offline");
  const input = el("input", {
    type: "password",
    name: "token",
    autocomplete: "current-password",
    placeholder: "FRAMEHOOK_ADMIN_TOKEN",
    required: true,
  });
  const form = el(
    "form",
    {
      onsubmit: (event) => {
        event.preventDefault();
        token = input.value.trim();
        sessionStorage.setItem(TOKEN_KEY, token);
        route();
      },
    },
    el("p", {
      text: "Enter the admin token: FRAMEHOOK_ADMIN_TOKEN, or the one `framehook serve` logged at start.",
    }),
    problem ? el("p", { class: "problem", text: problem }) : null,
    input,
    el("button", { type: "submit", text: "Open the dashboard" }),
  );
  main.replaceChildren(el("section", { class: "login" }, el("h2", { text: "Sign in" }), form));
  input.focus();
}

forget.addEventListener("click", () => loggedOut());

// ---- the jobs page ---------------------------------------------------------------------

// The job statuses come from the API's own description (public, read once), generated from
// the enum the server checks ?status= against: no copy here to fall out of step. Without it
// the filter offers "every status" only, and the page works on.
let jobStatuses = null;

function loadJobStatuses() {
  jobStatuses ??= fetch("/api/openapi.json", { headers: { Accept: "application/json" } })
    .then((response) => (response.ok ? response.json() : Promise.reject(new Error(`${response.status}`))))
    .then((spec) => spec.components.schemas.JobStatus.enum)
    .catch(() => {
      jobStatuses = null; // the next page load tries again
      return [];
    });
  return jobStatuses;
}

function jobRow(job) {
  return el(
    "tr",
    { dataset: { jobId: job.id, status: job.status } },
    el("td", {}, badge(job.status)),
    el("td", {}, jobLink(job.id)),
    el("td", { text: job.model || "—" }),
    el("td", {}, progressBar(job)),
    captureCell(job.files),
    el("td", { class: "age", dataset: { age: job.createdAt }, text: age(job.createdAt) }),
  );
}

function deadRow(task, onRetry) {
  const button = el("button", {
    type: "button",
    text: "Retry",
    dataset: { retry: task.id },
    onclick: () => onRetry(task, button),
  });
  return el(
    "tr",
    { dataset: { taskId: task.id } },
    el("td", { class: "num mono", text: `#${task.id}` }),
    el("td", { text: task.handler }),
    el("td", {}, task.jobId ? jobLink(task.jobId) : "—"),
    el("td", { class: "num", text: String(task.attempts) }),
    el("td", { class: "error", text: task.lastError || "" }),
    el("td", { class: "age", dataset: { age: task.updatedAt }, text: age(task.updatedAt) }),
    el("td", {}, button),
  );
}

async function retryTask(task, button) {
  button.disabled = true;
  try {
    await api(`/api/tasks/${task.id}/retry`, { method: "POST" });
    showToast(`Task #${task.id} (${task.handler}) queued again`);
    button.closest("tr")?.remove();
  } catch (error) {
    if (error instanceof Unauthorized) return loggedOut();
    showToast(`Retry failed: ${error.message}`, "bad");
    button.disabled = false;
  }
}

function deadSection(items) {
  const body = el("tbody");
  const count = el("span", { class: "count" });
  const section = el(
    "section",
    { id: "dead" },
    el("h2", {}, "Dead tasks", count),
    el("div", { class: "empty", text: "No dead tasks." }),
    el(
      "table",
      {},
      el("thead", {}, el("tr", {}, ...["Task", "Handler", "Job", "Attempts", "Last error", "Died", ""].map((h) => el("th", { text: h })))),
      body,
    ),
  );
  const render = (tasks) => {
    body.replaceChildren(...tasks.map((t) => deadRow(t, retryTask)));
    count.textContent = `(${tasks.length})`;
    section.querySelector(".empty").hidden = tasks.length > 0;
    section.querySelector("table").hidden = tasks.length === 0;
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
        ledger.items.slice(0, 6).map((row) =>
          el("li", {}, el("span", { text: row.key || "(unknown)" }), el("span", { class: "num", text: String(row.credits) })),
        ),
      ),
    );
  };
  const load = () =>
    show().catch((error) => {
      if (error instanceof Unauthorized) return loggedOut();
      body.replaceChildren(el("p", { class: "problem", role: "alert", text: `Credits unavailable: ${error.message}` }));
    });
  let pending = null;
  const refresh = () => {
    clearTimeout(pending);
    pending = setTimeout(load, 500);
  };
  return { section, load, refresh };
}

async function jobsPage() {
  const filter = new URLSearchParams(location.hash.split("?")[1] || "").get("status") || "";
  const query = new URLSearchParams({ limit: PAGE });
  if (filter) query.set("status", filter);
  const [page, dead, statuses] = await Promise.all([
    api(`/api/jobs?${query}`),
    api("/api/tasks?status=dead&limit=100"),
    loadJobStatuses(),
  ]);

  const rows = el("tbody");
  const shown = new Map();
  const add = (job, atTop) => {
    const row = jobRow(job);
    shown.set(job.id, row);
    if (atTop) rows.prepend(row);
    else rows.append(row);
    return row;
  };
  page.items.forEach((job) => add(job, false));

  let cursor = page.nextCursor;
  const more = el("button", {
    type: "button",
    class: "quiet",
    text: "Older jobs",
    hidden: !cursor,
    onclick: async () => {
      query.set("cursor", cursor);
      const next = await api(`/api/jobs?${query}`);
      next.items.filter((j) => !shown.has(j.id)).forEach((job) => add(job, false));
      cursor = next.nextCursor;
      more.hidden = !cursor;
    },
  });
  const select = el(
    "select",
    {
      "aria-label": "Status",
      onchange: () => (location.hash = select.value ? `#/?status=${select.value}` : "#/"),
    },
    ...["", ...statuses].map((s) => el("option", { value: s, text: s || "every status", selected: s === filter })),
  );
  const empty = el("div", { class: "empty", text: "No jobs yet. Send one with `framehook send-test completed`.", hidden: page.items.length > 0 });
  const jobs = el(
    "section",
    { id: "jobs" },
    el("h2", {}, "Jobs", el("span", { class: "spacer" }), select),
    empty,
    el(
      "table",
      {},
      el("thead", {}, el("tr", {}, ...["Status", "Job", "Model", "Progress", "Files", "Created"].map((h) => el("th", { text: h })))),
      rows,
    ),
    el("div", { class: "empty" }, more),
  );
  const deadList = deadSection(dead.items);
  const credits = creditsSection();
  main.replaceChildren(credits.section, deadList.section, jobs);
  credits.load();

  return {
    kind: "jobs",
    watch: null,
    on: {
      job: (job) => {
        const old = shown.get(job.id);
        if (filter && job.status !== filter) {
          old?.remove();
          shown.delete(job.id);
          return;
        }
        const row = old ? jobRow(job) : add(job, true);
        if (old) {
          old.replaceWith(row);
          shown.set(job.id, row);
        }
        row.classList.add("flash");
        empty.hidden = true;
        if (job.status === "COMPLETED" || job.status === "FAILED") credits.refresh();
      },
      dead: (payload) => deadList.render(payload.items),
      overflow: () => route(),
    },
  };
}

// ---- one job ---------------------------------------------------------------------------

function assetFigure(asset) {
  const type = asset.contentType || "";
  let media;
  if (type.startsWith("video/") || asset.kind === "video") {
    media = el("video", { src: asset.contentUrl, controls: true, preload: "metadata", playsInline: true });
  } else if (type.startsWith("audio/") || asset.kind === "audio") {
    media = el("audio", { src: asset.contentUrl, controls: true, preload: "metadata" });
  } else {
    media = el("img", { src: asset.contentUrl, alt: `${asset.kind} ${asset.position}`, loading: "lazy" });
  }
  return el(
    "figure",
    { class: "asset", dataset: { kind: asset.kind, position: asset.position } },
    media,
    el(
      "figcaption",
      {},
      el("strong", { text: `${asset.kind} #${asset.position}` }),
      el("span", { text: `${type || "unknown type"} · ${size(asset.size)}` }),
      el("span", { class: "mono", title: asset.sha256, text: `sha256 ${asset.sha256.slice(0, 16)}…` }),
      el("span", { class: "mono", title: asset.storageUri, text: asset.key }),
    ),
  );
}

function timelineEntries(job) {
  const entries = [];
  for (const d of job.deliveries) {
    const progress = d.body && typeof d.body === "object" && "progress" in d.body ? ` ${d.body.progress}%` : "";
    entries.push({
      at: d.receivedAt,
      kind: "delivery",
      what: `${d.event || "?"}${progress}`,
      detail: `${d.outcome} · via ${d.source}${d.eventMismatch ? " · header disagreed" : ""}`,
    });
  }
  for (const t of job.tasks) {
    for (const a of t.history) {
      entries.push({
        at: a.finishedAt,
        kind: "attempt",
        what: `${t.handler} #${a.attempt}`,
        detail: `${a.outcome}${a.error ? ` — ${a.error}` : ""} (${a.worker})`,
      });
    }
  }
  for (const a of job.assets) {
    entries.push({ at: a.storedAt, kind: "asset", what: `stored ${a.kind} #${a.position}`, detail: a.storageUri });
  }
  return entries.sort((x, y) => Date.parse(x.at) - Date.parse(y.at));
}

function taskRow(task) {
  const retry =
    task.status === "dead"
      ? el("button", { type: "button", text: "Retry", dataset: { retry: task.id }, onclick: (e) => retryTask(task, e.target) })
      : null;
  return el(
    "tr",
    { dataset: { taskId: task.id } },
    el("td", { text: task.handler }),
    el("td", {}, badge(task.status)),
    el("td", { class: "num", text: String(task.attempts) }),
    el("td", { class: "error", text: task.lastError || "" }),
    el("td", {}, retry),
  );
}

async function jobPage(id) {
  const summary = el("div");
  const body = el("div");

  const renderSummary = (job) => {
    summary.replaceChildren(
      el("div", { class: "title" }, el("h1", { class: "mono", text: job.id }), badge(job.status), progressBar(job)),
      el(
        "section",
        {},
        el(
          "dl",
          { class: "facts" },
          ...[
            ["Model", job.model || "—"],
            ["Created", `${new Date(job.createdAt).toLocaleString()}`],
            ["Completed", job.completedAt ? new Date(job.completedAt).toLocaleString() : "—"],
            ["Files stored", captureCell(job.files, "dd")],
            ["Credits", job.creditCost ?? "—"],
            ["Error", job.error || "—"],
          ].map(([k, v]) => el("div", {}, el("dt", { text: k }), v instanceof Node ? v : el("dd", { text: String(v) }))),
        ),
      ),
    );
  };

  const load = async () => {
    const job = await api(`/api/jobs/${encodeURIComponent(id)}`);
    renderSummary(job);
    const replay = el("button", {
      type: "button",
      class: "quiet",
      text: "Replay handlers",
      onclick: async () => {
        try {
          const done = await api(`/api/jobs/${encodeURIComponent(id)}/replay`, { method: "POST" });
          showToast(`${done.requeued} task(s) queued again`);
        } catch (error) {
          if (error instanceof Unauthorized) return loggedOut();
          showToast(`Replay failed: ${error.message}`, "bad");
        }
      },
    });
    body.replaceChildren(
      el(
        "section",
        { id: "assets" },
        el("h2", {}, "Assets", el("span", { class: "count", text: `(${job.assets.length})` })),
        job.assets.length ? el("div", { class: "assets" }, job.assets.map(assetFigure)) : el("div", { class: "empty", text: "Nothing captured yet." }),
      ),
      el(
        "section",
        { id: "tasks" },
        el("h2", {}, "Tasks", el("span", { class: "spacer" }), replay),
        job.tasks.length
          ? el(
              "table",
              {},
              el("thead", {}, el("tr", {}, ...["Handler", "Status", "Attempts", "Last error", ""].map((h) => el("th", { text: h })))),
              el("tbody", {}, job.tasks.map(taskRow)),
            )
          : el("div", { class: "empty", text: "No handler tasks." }),
      ),
      el(
        "section",
        { id: "timeline" },
        el("h2", {}, "Timeline"),
        el(
          "ol",
          { class: "timeline" },
          timelineEntries(job).map((e) =>
            el(
              "li",
              { dataset: { kind: e.kind } },
              el("span", { class: "when", title: e.at, text: clock(e.at) }),
              el("span", { class: "what", text: e.what }),
              el("span", { class: "detail", text: e.detail }),
            ),
          ),
        ),
      ),
    );
  };

  main.replaceChildren(el("p", {}, el("a", { href: "#/", text: "← all jobs" })), summary, body);
  await load();

  let pending = null;
  const reload = () => {
    clearTimeout(pending);
    pending = setTimeout(() => load().catch((e) => showToast(e.message, "bad")), 150);
  };
  return {
    kind: "job",
    watch: id,
    on: {
      job: (job) => {
        if (job.id !== id) return;
        renderSummary(job);
        reload();
      },
      timeline: reload,
    },
  };
}

// ---- routing ---------------------------------------------------------------------------

async function route() {
  if (!token) return loggedOut();
  forget.hidden = false;
  const match = location.hash.match(/^#\/jobs\/([^?]+)/);
  try {
    view = match ? await jobPage(decodeURIComponent(match[1])) : await jobsPage();
    connect(view.watch);
  } catch (error) {
    if (error instanceof Unauthorized) return loggedOut(token ? "That token was refused." : undefined);
    main.replaceChildren(el("section", {}, el("div", { class: "empty", text: `Could not load: ${error.message}` })));
  }
}

window.addEventListener("hashchange", () => {
  takeToken();
  route();
});
route();
