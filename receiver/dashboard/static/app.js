// framehook dashboard: the admin API (/api/*) rendered, kept live by /api/events.
//
// No build step and no framework: small ES modules the receiver serves as files (the page's
// policy allows scripts from its own origin only). This one signs in and routes:
//
//   #/                     jobs.js        the jobs, dead tasks and credits
//   #/jobs/ID              job.js         one job: files, tasks and errors, timeline
//   #/deliveries[?outcome] deliveries.js  every delivery, its outcome and raw body
//
// A page is `async (…, show) => view`: it reads its data, then calls show(...nodes) to take the
// screen (refused if another route started meanwhile), and returns what it does with the
// feed's events. Everything shown came from the network, so text goes in with textContent
// (dom.js's `el`), never as HTML.

import { Unauthorized, currentToken, forgetToken, onSignedOut, takeToken, useToken } from "./api.js";
import { deliveriesPage } from "./deliveries.js";
import { el } from "./dom.js";
import { connect, disconnect, setLive } from "./feed.js";
import { jobPage } from "./job.js";
import { jobsPage } from "./jobs.js";

const main = document.getElementById("main");
const forget = document.getElementById("forget");
let view = null; // what is on screen: {watch, on: {event: handler}, leave?}
let turn = 0; // counts routes: a page that loads after a newer route started is not shown

// Thrown by `show` for a page whose route was overtaken (a slow list, then a quick click).
class Superseded extends Error {}

// What a page calls to put itself on screen, once its data is in.
function shower(mine) {
  return (...nodes) => {
    if (mine !== turn) throw new Superseded();
    main.replaceChildren(...nodes);
  };
}

// ---- sign in ---------------------------------------------------------------------------

function signIn(problem) {
  turn += 1;
  leave();
  disconnect();
  forgetToken();
  forget.hidden = true;
  setLive("off", "offline");
  const input = el("input", { type: "password", name: "token", autocomplete: "current-password", placeholder: "FRAMEHOOK_ADMIN_TOKEN", required: true });
  const form = el(
    "form",
    {
      onsubmit: (event) => {
        event.preventDefault();
        useToken(input.value.trim());
        route();
      },
    },
    el("p", { text: "Enter the admin token: FRAMEHOOK_ADMIN_TOKEN, or the one `framehook serve` logged at start." }),
    problem ? el("p", { class: "problem", text: problem }) : null,
    input,
    el("button", { type: "submit", text: "Open the dashboard" }),
  );
  main.replaceChildren(el("section", { class: "login" }, el("h2", { text: "Sign in" }), form));
  input.focus();
}

onSignedOut(signIn);
forget.addEventListener("click", () => signIn());

// ---- routing ---------------------------------------------------------------------------

function leave() {
  view?.leave?.();
  view = null;
}

function markNav(name) {
  for (const link of document.querySelectorAll(".top nav a")) {
    if (link.dataset.nav === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function onEvent(name, payload) {
  if (name === "overflow") return route(); // too much changed at once: read the page again
  view?.on[name]?.(payload);
}

async function route() {
  if (!currentToken()) return signIn();
  forget.hidden = false;
  leave();
  const mine = ++turn;
  const show = shower(mine);
  const [path, search] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(search || "");
  const job = path.match(/^\/jobs\/(.+)$/);
  document.title = "framehook";
  try {
    let shown;
    if (job) {
      markNav("jobs");
      shown = await jobPage(decodeURIComponent(job[1]), show);
    } else if (path === "/deliveries") {
      markNav("deliveries");
      shown = await deliveriesPage(params, show);
    } else {
      markNav("jobs");
      shown = await jobsPage(params, show);
    }
    if (mine !== turn) return shown.leave?.();
    view = shown;
    connect(view.watch, onEvent, () => signIn("That token was refused."));
  } catch (error) {
    if (error instanceof Superseded || mine !== turn) return;
    if (error instanceof Unauthorized) return signIn("That token was refused.");
    main.replaceChildren(el("section", {}, el("div", { class: "empty", role: "alert", text: `Could not load: ${error.message}` })));
  }
}

// A link with #token=… opened in a tab already on the page (the sign-in form, say) signs it
// in: the token is read again on every change of the fragment.
window.addEventListener("hashchange", () => {
  takeToken();
  route();
});
takeToken();
route();
