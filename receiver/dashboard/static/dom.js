// Building the page from data: elements, formats, ids that copy, long text that folds.
//
// Everything shown came from the network (model names, errors, bodies, URLs), so text goes in
// with textContent, never as HTML: `el` is the only way the other modules make nodes.

const toast = document.getElementById("toast");

export function el(tag, props = {}, ...children) {
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
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

export function showToast(message, kind = "ok") {
  toast.textContent = message;
  toast.dataset.kind = kind;
  toast.hidden = false;
  clearTimeout(showToast.timer);
  showToast.timer = setTimeout(() => (toast.hidden = true), 4000);
}

// ---- formats ---------------------------------------------------------------------------

export function age(iso) {
  if (!iso) return "";
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 60) return `${Math.floor(seconds)}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ago`;
  return `${Math.floor(seconds / 86400)}d ago`;
}

// A cell or span whose "3m ago" ticks (see the interval below); the exact time on hover.
export function ageText(iso, tag = "span", extra = {}) {
  return el(tag, { ...extra, dataset: { age: iso || "" }, title: iso ? new Date(iso).toLocaleString() : "", text: age(iso) });
}

setInterval(() => {
  for (const node of document.querySelectorAll("[data-age]")) node.textContent = age(node.dataset.age);
}, 1000);

export function clock(iso) {
  return iso ? new Date(iso).toLocaleTimeString() : "";
}

export function size(bytes) {
  const units = ["B", "KiB", "MiB", "GiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
}

export function badge(status, title) {
  return el("span", { class: "badge", dataset: { status }, title, text: status });
}

// ---- ids that copy ---------------------------------------------------------------------

const SHORT = 8;

export function shortId(id) {
  return id.length > SHORT + 1 ? `${id.slice(0, SHORT)}…` : id;
}

// navigator.clipboard needs a secure context (https, or localhost); a dashboard reached over
// plain http on a LAN address falls back to a selected textarea and the copy command.
async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // denied (no user gesture, or a policy): try the old way
    }
  }
  const area = el("textarea", { class: "offscreen", readonly: true, "aria-hidden": "true" });
  area.value = text;
  document.body.append(area);
  area.select();
  let done = false;
  try {
    done = document.execCommand("copy");
  } catch {
    done = false;
  }
  area.remove();
  return done;
}

export function copyButton(value, label) {
  const button = el("button", {
    type: "button",
    class: "copy",
    title: `Copy ${label}`,
    "aria-label": `Copy ${label} ${value}`,
    dataset: { copy: value },
    text: "copy",
    onclick: async (event) => {
      event.preventDefault();
      event.stopPropagation();
      const done = await copyText(value);
      button.textContent = done ? "copied" : "select it";
      button.dataset.state = done ? "copied" : "failed";
      clearTimeout(button.timer);
      button.timer = setTimeout(() => {
        button.textContent = "copy";
        delete button.dataset.state;
      }, 1500);
    },
  });
  return button;
}

// An id shown by its first characters (whole on hover), a link when `href`, and a copy button
// that copies all of it.
export function idChip(id, { href, label = "id" } = {}) {
  const text = shortId(id);
  const name = href ? el("a", { href, class: "mono", title: id, text }) : el("span", { class: "mono", title: id, text });
  return el("span", { class: "id", dataset: { id } }, name, copyButton(id, label));
}

// ---- long text -------------------------------------------------------------------------

const FOLD = 140;

// Text that may be long (an error, a stack): its first line, cut at FOLD characters, opens
// into the whole of it.
export function foldable(text, className = "") {
  const firstLine = text.split("\n", 1)[0];
  if (firstLine.length <= FOLD && firstLine === text) return el("span", { class: `text ${className}`.trim(), text });
  const cut = firstLine.length > FOLD ? `${firstLine.slice(0, FOLD)}…` : `${firstLine} …`;
  return el(
    "details",
    { class: `fold ${className}`.trim() },
    el("summary", { text: cut }),
    el("pre", { class: "full", text }),
  );
}
