// Every verified delivery, newest first, with what became of it (accepted, duplicate, stale,
// conflict, unrecognized, malformed): the place to find the bodies framehook did not take for
// job events. A row opens on its raw body, read from /api/deliveries/{id}.

import { api, described, failed } from "./api.js";
import { ageText, badge, el, idChip } from "./dom.js";
import { jobHref } from "./jobs.js";

const PAGE = 50;
const COLUMNS = ["Outcome", "Delivery", "Event", "Job", "Source", "Received", ""];

// What each outcome means, for a person reading the list.
const MEANING = {
  accepted: "Taken: it moved its job",
  duplicate: "The same event again: already had, nothing done",
  stale: "Older than what the job already knew: recorded, not applied",
  conflict: "Disagrees with the event the job already ended with: kept for a look",
  unrecognized: "Not a job event framehook knows: kept, nothing done",
  malformed: "Not a valid event (bad JSON or fields): answered 400",
};

function bodyText(delivery) {
  if (delivery.body === null) return "(the body was pruned)";
  if (delivery.bodyFormat === "json") return JSON.stringify(delivery.body, null, 2);
  return String(delivery.body);
}

function details(delivery) {
  const facts = [
    ["Request", delivery.requestId],
    ["Header event", delivery.headerEvent ?? "—"],
    ["Signed with key", delivery.keyIndex === null ? "—" : `#${delivery.keyIndex}${delivery.derivation ? ` (${delivery.derivation})` : ""}`],
    ["Flags", delivery.flags.length ? delivery.flags.join(", ") : "—"],
    ["Body", delivery.bodyFormat ?? "pruned"],
  ];
  return el(
    "div",
    { class: "delivery-body" },
    el("dl", { class: "facts compact" }, facts.map(([k, v]) => el("div", {}, el("dt", { text: k }), el("dd", { class: "mono", text: String(v) })))),
    el("pre", { class: "body", dataset: { format: delivery.bodyFormat || "none" }, text: bodyText(delivery) }),
  );
}

function deliveryRows(delivery) {
  const panel = el("tr", { class: "opened", hidden: true, dataset: { bodyOf: delivery.id } }, el("td", { colspan: COLUMNS.length }));
  const toggle = el("button", {
    type: "button",
    class: "quiet",
    text: "Body",
    "aria-expanded": "false",
    dataset: { body: delivery.id },
    onclick: async (event) => {
      event.stopPropagation();
      const open = toggle.getAttribute("aria-expanded") === "true";
      toggle.setAttribute("aria-expanded", String(!open));
      toggle.textContent = open ? "Body" : "Hide";
      panel.hidden = open;
      if (open || panel.dataset.loaded) return;
      panel.firstChild.replaceChildren(el("span", { class: "empty", text: "Loading…" }));
      try {
        const full = await api(`/api/deliveries/${delivery.id}`);
        panel.dataset.loaded = "yes";
        panel.firstChild.replaceChildren(details(full));
      } catch (error) {
        panel.firstChild.replaceChildren(el("span", { class: "problem", text: `Could not load the body: ${error.message}` }));
        failed(error, "Could not load the body");
      }
    },
  });
  const row = el(
    "tr",
    { class: "clickable", dataset: { deliveryId: delivery.id, outcome: delivery.outcome }, onclick: () => toggle.click() },
    el("td", {}, badge(delivery.outcome, MEANING[delivery.outcome])),
    el("td", { class: "num mono", text: `#${delivery.id}` }),
    el("td", {}, el("span", { text: delivery.event || "—" }), delivery.eventMismatch ? el("span", { class: "flag", title: `The header said ${delivery.headerEvent}`, text: " header disagreed" }) : null),
    el("td", { class: "id-cell" }, delivery.jobId ? idChip(delivery.jobId, { href: jobHref(delivery.jobId), label: "job id" }) : delivery.loraId ? el("span", { class: "mono", title: "LoRA", text: `LoRA ${delivery.loraId}` }) : "—"),
    el("td", { class: "muted", text: delivery.source }),
    ageText(delivery.receivedAt, "td", { class: "age" }),
    el("td", {}, toggle),
  );
  return { row, panel, toggle };
}

export async function deliveriesPage(params, show) {
  const outcome = params.get("outcome") || "";
  const jobId = params.get("jobId") || "";
  const open = params.get("open");
  const query = new URLSearchParams({ limit: PAGE });
  if (outcome) query.set("outcome", outcome);
  if (jobId) query.set("jobId", jobId);
  const [page, outcomes] = await Promise.all([api(`/api/deliveries?${query}`), described("DeliveryOutcome")]);

  const rows = el("tbody");
  const shown = new Map();
  const add = (delivery, atTop) => {
    const made = deliveryRows(delivery);
    shown.set(delivery.id, made);
    if (atTop) rows.prepend(made.row, made.panel);
    else rows.append(made.row, made.panel);
    return made;
  };
  page.items.forEach((d) => add(d, false));

  let cursor = page.nextCursor;
  const more = el("button", {
    type: "button",
    class: "quiet",
    text: "Older deliveries",
    hidden: !cursor,
    onclick: async () => {
      try {
        const next = await api(`/api/deliveries?${new URLSearchParams({ ...Object.fromEntries(query), cursor })}`);
        next.items.filter((d) => !shown.has(d.id)).forEach((d) => add(d, false));
        cursor = next.nextCursor;
        more.hidden = !cursor;
      } catch (error) {
        failed(error, "Could not load older deliveries");
      }
    },
  });

  // Deliveries have no event of their own on the feed: newer ones are read when a job moves
  // (most deliveries move one), or when asked.
  const newer = async () => {
    try {
      const latest = await api(`/api/deliveries?${query}`);
      const top = Math.max(0, ...shown.keys());
      latest.items.filter((d) => d.id > top).reverse().forEach((d) => add(d, true).row.classList.add("flash"));
      empty.hidden = shown.size > 0;
    } catch (error) {
      failed(error, "Could not refresh the deliveries");
    }
  };
  const go = (nextOutcome) => {
    const next = new URLSearchParams();
    if (nextOutcome) next.set("outcome", nextOutcome);
    if (jobId) next.set("jobId", jobId);
    location.hash = next.toString() ? `#/deliveries?${next}` : "#/deliveries";
  };
  const select = el(
    "select",
    { "aria-label": "Outcome", onchange: () => go(select.value) },
    ["", ...outcomes].map((o) => el("option", { value: o, text: o || "every outcome", selected: o === outcome })),
  );
  const refresh = el("button", { type: "button", class: "quiet", text: "Refresh", onclick: newer });
  const scope = jobId ? el("span", { class: "scope" }, "job ", idChip(jobId, { href: jobHref(jobId), label: "job id" }), el("a", { href: outcome ? `#/deliveries?outcome=${outcome}` : "#/deliveries", text: "× all jobs" })) : null;
  const empty = el("div", { class: "empty", text: outcome ? `No ${outcome} deliveries.` : "No deliveries yet.", hidden: page.items.length > 0 });
  show(
    el(
      "section",
      { id: "deliveries" },
      el("h2", { class: "with-tools" }, "Deliveries", scope, el("span", { class: "spacer" }), el("span", { class: "filters" }, select, refresh)),
      outcome ? el("p", { class: "hint", text: MEANING[outcome] || "" }) : null,
      empty,
      el("table", { class: "list deliveries" }, el("thead", {}, el("tr", {}, COLUMNS.map((h) => el("th", { text: h })))), rows),
      el("div", { class: "empty more" }, more),
    ),
  );
  if (open && shown.has(Number(open))) {
    const { row, toggle } = shown.get(Number(open));
    toggle.click();
    row.scrollIntoView({ block: "center" });
  }

  let pending = null;
  return {
    watch: null,
    on: {
      job: () => {
        clearTimeout(pending);
        pending = setTimeout(newer, 500);
      },
    },
  };
}
