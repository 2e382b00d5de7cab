// The live feed: /api/events read with fetch (EventSource cannot send a bearer token; the
// wire format is the same), reconnecting with backoff, and the "live" marker in the header.

import { currentToken } from "./api.js";

const live = document.getElementById("live");
let stream = null; // the open reader's AbortController

export function setLive(state, text) {
  live.dataset.state = state;
  live.textContent = text;
}

export function disconnect() {
  if (stream) stream.abort();
  stream = null;
}

// Follows the feed (and `job`'s timeline when given), handing each event to `onEvent(name,
// data)`; `onUnauthorized()` when the token is refused.
export function connect(job, onEvent, onUnauthorized) {
  disconnect();
  const controller = new AbortController();
  stream = controller;
  const query = job ? `?job=${encodeURIComponent(job)}` : "";
  let delay = 1000;

  const run = async () => {
    while (!controller.signal.aborted) {
      let busy = 0; // ms the server asked us to wait: it has all the live streams it allows
      try {
        const response = await fetch(`/api/events${query}`, {
          headers: { Authorization: `Bearer ${currentToken()}`, Accept: "text/event-stream" },
          signal: controller.signal,
        });
        if (response.status === 401) return onUnauthorized();
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
            dispatch(buffer.slice(0, end), onEvent);
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

function dispatch(block, onEvent) {
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
  else onEvent(event, payload);
}
