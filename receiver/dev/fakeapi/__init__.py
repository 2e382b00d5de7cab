"""A fake Apiframe v2 for tests, demos and offline development.

It accepts jobs on the real routes, runs them in the background, sends the signed webhooks
Apiframe would send (or, on request, duplicates, reorders, delays, drops them, or signs them
with a rotated key; or sends results and bodies in the shapes Apiframe's reference allows but
does not show: ``receiver.dev.fakeapi.shapes``), answers the job API (and 429/503 on request)
and serves real, small media files from its own CDN route until they expire. It also trains
LoRAs (``POST /v2/loras``) and sends their terminal webhook in the shape framehook infers
(``receiver.dev.fakeapi.loras``). Sending over the network, it is sealed: it refuses (400) and
never sends to a webhook URL on a public host unless ``allow_public_webhooks=True``
(``receiver.dev.fakeapi.sealing``)::

    app = create_fake_apiframe("afk_...", behaviour=Behaviour(step_seconds=0.01))
    # serve `app` with uvicorn, or drive it through httpx.ASGITransport inside its lifespan;
    # fake_of(app).deliveries says what was sent and what the receiver answered.
"""

from receiver.dev.fakeapi.app import create_fake_apiframe, fake_of
from receiver.dev.fakeapi.bodies import CDN_BASE_URL, MODALITIES, sample_webhook
from receiver.dev.fakeapi.chaos import Behaviour
from receiver.dev.fakeapi.jobs import Job
from receiver.dev.fakeapi.lifecycle import FakeApiframe
from receiver.dev.fakeapi.media import media_file
from receiver.dev.fakeapi.webhooks import Delivery, signature

__all__ = [
    "CDN_BASE_URL",
    "MODALITIES",
    "Behaviour",
    "Delivery",
    "FakeApiframe",
    "Job",
    "create_fake_apiframe",
    "fake_of",
    "media_file",
    "sample_webhook",
    "signature",
]
