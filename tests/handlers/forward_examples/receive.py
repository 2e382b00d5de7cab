"""Receive framehook's forwarded events in Python: `pip install standardwebhooks`.

Run: FRAMEHOOK_FORWARD_SECRET=whsec_... PORT=3000 python receive.py
"""

import logging
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError

log = logging.getLogger("framehook-events")
webhook = Webhook(os.environ["FRAMEHOOK_FORWARD_SECRET"])
handled = set()  # webhook-ids already handled: keep them in your database


def handle(event):
    data = event["data"]
    if data["test"]:  # `framehook send-test`: nothing real to act on
        log.info("test event %s", event["type"])
    elif event["type"] == "job.completed":
        for asset in data["assets"]:  # download each before asset["urlExpiresAt"]
            log.info("stored %s %s %s", data["id"], asset["position"], asset["url"])
        for file in data["missing"]:  # files framehook could not capture
            log.info("missing %s %s %s", data["id"], file["position"], file["sourceUrl"])
    elif event["type"] == "job.failed":
        log.info("failed %s %s", data["id"], data["error"])


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            event = webhook.verify(body, headers)
        except WebhookVerificationError:  # a wrong signature, or one more than 5 minutes old
            self.send_response(401)
            self.end_headers()
            return
        if headers["webhook-id"] not in handled:  # retries and replays repeat the id
            handle(event)
            handled.add(headers["webhook-id"])
        self.send_response(204)  # any 2xx: framehook stops sending this event
        self.end_headers()

    def log_message(self, format, *args):  # no access log
        pass


logging.basicConfig(level=logging.INFO, format="%(message)s")
ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PORT", "3000"))), Receiver).serve_forever()
