// The admin API: the token, authenticated reads and actions, and the vocabularies the API
// describes about itself.
//
// The token lives in sessionStorage. It arrives once in the URL's fragment (#token=…, never
// sent to a server: the page may be opened with it, or already be open when it is) or through
// the sign-in form.

import { showToast } from "./dom.js";

const TOKEN_KEY = "framehook.token";
let token = null;
let signedOut = () => {};

export class Unauthorized extends Error {}

// Reads a #token=… from the URL (and removes it from the address bar and history); the token
// the tab holds otherwise. Called at start and on every hashchange: a link with a token opened
// in a tab that shows the sign-in form signs it in.
export function takeToken() {
  const match = location.hash.match(/[#&]token=([^&]+)/);
  if (match) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname + location.search + "#/");
  }
  token = sessionStorage.getItem(TOKEN_KEY);
  return token;
}

export function currentToken() {
  return token;
}

export function useToken(value) {
  token = value;
  sessionStorage.setItem(TOKEN_KEY, value);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
  token = null;
}

// What a refused token does (the sign-in form), set once by the app.
export function onSignedOut(handler) {
  signedOut = handler;
}

export async function api(path, options = {}) {
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

// An action's or a background load's failure: back to the sign-in form when the token was
// refused, else a toast that names what failed.
export function failed(error, what) {
  if (error instanceof Unauthorized) return signedOut("That token was refused.");
  showToast(`${what}: ${error.message}`, "bad");
}

// The vocabularies (job statuses, delivery outcomes) come from the API's own description
// (public, read once), generated from the enums the server checks its filters against: no
// copy here to fall out of step. Without it a filter offers "every …" only, and the page works.
let spec = null;

export async function described(schema) {
  spec ??= fetch("/api/openapi.json", { headers: { Accept: "application/json" } })
    .then((response) => (response.ok ? response.json() : Promise.reject(new Error(`${response.status}`))))
    .catch(() => {
      spec = null; // the next page load tries again
      return null;
    });
  const loaded = await spec;
  return loaded?.components?.schemas?.[schema]?.enum ?? [];
}
