// One job: its summary, its files (one line each, and previews), its handler tasks with their
// errors grouped, and the timeline of everything that happened to it.

import { api, failed } from "./api.js";
import { ageText, badge, clock, copyButton, el, foldable, shortId, showToast, size } from "./dom.js";
import { captureCell, progressBar, retryTask, testBadge } from "./jobs.js";

// ---- files -----------------------------------------------------------------------------

// Everything about a file on one line: kind and position, size, type, the start of its
// SHA-256 (copyable whole), and a link that opens it.
function fileLine(asset) {
  return el(
    "li",
    { class: "file", dataset: { kind: asset.kind, position: asset.position } },
    el("strong", { class: "what", text: `${asset.kind} #${asset.position}` }),
    el("span", { class: "num", text: size(asset.size) }),
    el("span", { class: "type", text: asset.contentType || "unknown type" }),
    el("span", { class: "sha" }, el("span", { class: "mono", title: `sha256 ${asset.sha256}`, text: asset.sha256.slice(0, 12) }), copyButton(asset.sha256, "SHA-256")),
    el("a", { class: "open", href: asset.contentUrl, target: "_blank", rel: "noopener", title: asset.storageUri, text: "open ↗" }),
  );
}

function preview(asset) {
  const type = asset.contentType || "";
  let media;
  if (type.startsWith("video/") || asset.kind === "video") {
    media = el("video", { src: asset.contentUrl, controls: true, preload: "metadata", playsInline: true });
  } else if (type.startsWith("audio/") || asset.kind === "audio") {
    media = el("audio", { src: asset.contentUrl, controls: true, preload: "metadata" });
  } else {
    media = el("img", { src: asset.contentUrl, alt: `${asset.kind} ${asset.position}`, loading: "lazy" });
  }
  return el("figure", { class: "asset", dataset: { kind: asset.kind, position: asset.position } }, media, el("figcaption", { text: `${asset.kind} #${asset.position}` }));
}

function filesSection(job) {
  const count = job.files.expected ? `(${job.assets.length} of ${job.files.expected})` : `(${job.assets.length})`;
  if (!job.assets.length) {
    return el("section", { id: "assets" }, el("h2", {}, "Files", el("span", { class: "count", text: count })), el("div", { class: "empty", text: "Nothing captured yet." }));
  }
  return el(
    "section",
    { id: "assets" },
    el("h2", {}, "Files", el("span", { class: "count", text: count })),
    el("ul", { class: "files" }, job.assets.map(fileLine)),
    // Many files make a long wall of previews: folded past a few.
    el("details", { class: "previews", open: job.assets.length <= 8 }, el("summary", { text: "Previews" }), el("div", { class: "assets" }, job.assets.map(preview))),
  );
}

// ---- tasks and their errors ------------------------------------------------------------

// [1, 2, 3, 5] as "1–3, 5".
function ranges(positions) {
  const parts = [];
  for (let i = 0; i < positions.length; i += 1) {
    let j = i;
    while (j + 1 < positions.length && positions[j + 1] === positions[j] + 1) j += 1;
    parts.push(j > i ? `${positions[i]}–${positions[j]}` : String(positions[i]));
    i = j;
  }
  return parts.join(", ");
}

// One line per distinct error ("×30 · files 1–5: …"); a task from a server that does not
// group its errors shows its last one.
function errorList(task) {
  const groups = Array.isArray(task.errorGroups) ? task.errorGroups : null;
  if (!groups) return task.lastError ? foldable(task.lastError, "error") : null;
  if (!groups.length) return null;
  return el(
    "ul",
    { class: "error-groups" },
    groups.map((group) =>
      el(
        "li",
        { class: "error-group", dataset: { count: group.count } },
        el("span", { class: "times", title: `${group.count} attempt${group.count === 1 ? "" : "s"} recorded it`, text: `×${group.count}` }),
        group.files.length ? el("span", { class: "where", text: `${group.files.length === 1 ? "file" : "files"} ${ranges(group.files)}` }) : null,
        foldable(group.error, "error"),
        group.lastSeen ? ageText(group.lastSeen, "span", { class: "age" }) : null,
      ),
    ),
  );
}

function taskRow(task) {
  const retry = task.status === "dead" ? el("button", { type: "button", text: "Retry", dataset: { retry: task.id }, onclick: (e) => retryTask(task, e.target) }) : null;
  return el(
    "tr",
    { dataset: { taskId: task.id } },
    el("td", { text: task.handler }),
    el("td", {}, badge(task.status, task.status === "waiting" ? `runs after ${(task.waitsFor || []).join(", ")} for this event` : undefined)),
    el("td", { class: "num attempts", text: String(task.attempts) }),
    el("td", { class: "errors" }, errorList(task)),
    el("td", {}, retry),
  );
}

function tasksSection(job, id) {
  const replay = el("button", {
    type: "button",
    class: "quiet",
    text: "Replay handlers",
    onclick: async () => {
      try {
        const done = await api(`/api/jobs/${encodeURIComponent(id)}/replay`, { method: "POST" });
        showToast(`${done.requeued} task(s) queued again`);
      } catch (error) {
        failed(error, "Replay failed");
      }
    },
  });
  return el(
    "section",
    { id: "tasks" },
    el("h2", {}, "Tasks", el("span", { class: "spacer" }), replay),
    job.tasks.length
      ? el(
          "table",
          { class: "list tasks" },
          el("thead", {}, el("tr", {}, ["Handler", "Status", "Attempts", "Errors", ""].map((h) => el("th", { text: h })))),
          el("tbody", {}, job.tasks.map(taskRow)),
        )
      : el("div", { class: "empty", text: "No handler tasks." }),
  );
}

// ---- timeline --------------------------------------------------------------------------

function timelineEntries(job) {
  const entries = [];
  for (const d of job.deliveries) {
    const progress = d.body && typeof d.body === "object" && "progress" in d.body ? ` ${d.body.progress}%` : "";
    entries.push({
      at: d.receivedAt,
      kind: "delivery",
      what: `${d.event || "?"}${progress}`,
      href: `#/deliveries?open=${d.id}&jobId=${encodeURIComponent(job.id)}`,
      detail: `${d.outcome} · via ${d.source}${d.eventMismatch ? " · header disagreed" : ""}`,
    });
  }
  for (const t of job.tasks) {
    for (const a of t.history) {
      entries.push({ at: a.finishedAt, kind: "attempt", what: `${t.handler} #${a.attempt}`, detail: `${a.outcome}${a.error ? ` — ${a.error}` : ""} (${a.worker})` });
    }
  }
  for (const a of job.assets) {
    entries.push({ at: a.storedAt, kind: "asset", what: `stored ${a.kind} #${a.position}`, detail: a.storageUri });
  }
  return entries.sort((x, y) => Date.parse(x.at) - Date.parse(y.at));
}

function timelineSection(job) {
  return el(
    "section",
    { id: "timeline" },
    el("h2", {}, "Timeline", el("span", { class: "spacer" }), el("a", { href: `#/deliveries?jobId=${encodeURIComponent(job.id)}`, text: "its deliveries" })),
    el(
      "ol",
      { class: "timeline" },
      timelineEntries(job).map((e) =>
        el(
          "li",
          { dataset: { kind: e.kind } },
          el("span", { class: "when", title: e.at, text: clock(e.at) }),
          e.href ? el("a", { class: "what", href: e.href, text: e.what }) : el("span", { class: "what", text: e.what }),
          foldable(e.detail, "detail"),
        ),
      ),
    ),
  );
}

// ---- the page --------------------------------------------------------------------------

export async function jobPage(id, show) {
  const summary = el("div");
  const body = el("div");

  const renderSummary = (job) => {
    summary.replaceChildren(
      el(
        "div",
        { class: "title" },
        el("h1", { class: "mono", title: job.id, text: job.id }),
        copyButton(job.id, "job id"),
        badge(job.status),
        testBadge(job),
        progressBar(job),
      ),
      el(
        "section",
        {},
        el(
          "dl",
          { class: "facts" },
          [
            ["Model", job.model || "—"],
            ["Created", new Date(job.createdAt).toLocaleString()],
            ["Completed", job.completedAt ? new Date(job.completedAt).toLocaleString() : "—"],
            ["Files stored", captureCell(job, "dd")],
            ["Credits", job.creditCost ?? "—"],
            ["Error", job.error ? el("dd", { class: "error" }, foldable(job.error)) : "—"],
          ].map(([k, v]) => el("div", {}, el("dt", { text: k }), v instanceof Node ? v : el("dd", { text: String(v) }))),
        ),
      ),
    );
  };

  const load = async () => {
    const job = await api(`/api/jobs/${encodeURIComponent(id)}`);
    document.title = `${shortId(job.id)} · framehook`;
    renderSummary(job);
    body.replaceChildren(filesSection(job), tasksSection(job, id), timelineSection(job));
  };

  show(el("p", { class: "back" }, el("a", { href: "#/", text: "← all jobs" })), summary, body);
  await load();

  let pending = null;
  const reload = () => {
    clearTimeout(pending);
    pending = setTimeout(() => load().catch((e) => failed(e, "Could not reload the job")), 150);
  };
  return {
    watch: id,
    on: {
      job: (job) => {
        if (job.id !== id) return;
        reload();
      },
      timeline: reload,
    },
  };
}
