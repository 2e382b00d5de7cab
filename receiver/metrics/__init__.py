"""Prometheus metrics: what the receiver, the worker and reconciliation count, and ``/metrics``.

Each app gets its own ``CollectorRegistry`` (never the process-wide default): tests build many
apps in one process, and a library should not publish into a registry it does not own.

Counters and histograms are incremented where things happen, through label children bound
once (the webhook's answer is benchmarked: no label parsing per request). The task and capture
gauges are read from the database at scrape time, so they cover every process sharing it
(``gauges``).

Every label value comes from a closed set: the code's own names (outcomes, reasons, statuses),
the configured handlers' names, or, where a webhook's content names it, a bounded mapping (a
body's ``event`` outside the four known is ``other``; its ``model``: ``labels``). Made-up names
can therefore add only so many series.

``/metrics`` is served on the app's port or on one of its own, behind a bearer token when one
is set (``scrape``).
"""

from receiver.metrics.labels import MAX_MODEL_LABEL_LENGTH, MAX_OTHER_MODELS, ModelLabels
from receiver.metrics.meters import HandlerMeter, Metrics
from receiver.metrics.scrape import MetricsEndpoint, bearer_matches, metrics_routes, wsgi_app

__all__ = [
    "MAX_MODEL_LABEL_LENGTH",
    "MAX_OTHER_MODELS",
    "HandlerMeter",
    "Metrics",
    "MetricsEndpoint",
    "ModelLabels",
    "bearer_matches",
    "metrics_routes",
    "wsgi_app",
]
