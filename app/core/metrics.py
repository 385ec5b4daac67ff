"""The app's own Prometheus metrics, beside django-prometheus's (served at /metrics).

Under Gunicorn every worker process writes its values to PROMETHEUS_MULTIPROC_DIR and the
scrape adds them up; a gauge counts only the live processes' values ("livesum").
"""

from prometheus_client import Counter, Gauge

# A counter's family is named without its `_total`, so the counter cannot share the gauge's
# name: it counts connections opened, the gauge those open now.
websocket_connections = Gauge(
    "senex_websocket_connections",
    "WebSocket connections open now.",
    multiprocess_mode="livesum",
)
websocket_connections_opened = Counter(
    "senex_websocket_connections_opened",
    "WebSocket connections accepted since the process started.",
)
