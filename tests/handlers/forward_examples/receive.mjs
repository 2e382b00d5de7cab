// Receive framehook's forwarded events in Node.js: `npm install standardwebhooks`.
// Run: FRAMEHOOK_FORWARD_SECRET=whsec_... PORT=3000 node receive.mjs
import http from "node:http";
import { Webhook } from "standardwebhooks";

const webhook = new Webhook(process.env.FRAMEHOOK_FORWARD_SECRET);
const handled = new Set(); // webhook-ids already handled: keep them in your database

function handle(event) {
  const data = event.data;
  if (data.test) { // `framehook send-test`: nothing real to act on
    console.log("test event", event.type);
  } else if (event.type === "job.completed") {
    for (const asset of data.assets) { // download each before asset.urlExpiresAt
      console.log("stored", data.id, asset.position, asset.url);
    }
    for (const file of data.missing) { // files framehook could not capture
      console.log("missing", data.id, file.position, file.sourceUrl);
    }
  } else if (event.type === "job.failed") {
    console.log("failed", data.id, data.error);
  }
}

http.createServer((request, response) => {
  const chunks = [];
  request.on("data", (chunk) => chunks.push(chunk));
  request.on("end", () => {
    const body = Buffer.concat(chunks).toString("utf8");
    let event;
    try {
      event = webhook.verify(body, request.headers);
    } catch { // a wrong signature, or one more than 5 minutes old
      response.writeHead(401).end();
      return;
    }
    const id = request.headers["webhook-id"];
    if (!handled.has(id)) { // retries and replays repeat the id
      handle(event);
      handled.add(id);
    }
    response.writeHead(204).end(); // any 2xx: framehook stops sending this event
  });
}).listen(Number(process.env.PORT ?? 3000), "127.0.0.1");
