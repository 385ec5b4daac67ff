from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound

from . import views

HEALTH_VIEWS = {"/health/": views.health, "/health/simple/": views.health_simple}


class HealthCheckMiddleware:
    """Answers the health endpoints before any other middleware runs.

    A container health check calls them as http://localhost:8000/...: that host is not in
    ALLOWED_HOSTS and the scheme is not HTTPS, so host validation and the HTTPS redirect
    must not see these requests. Skipping sessions and authentication also keeps them cheap.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = HEALTH_VIEWS.get(request.path_info)
        if view is not None:
            return view(request)
        return self.get_response(request)


class MetricsMiddleware:
    """Answers /metrics (Prometheus) before any other middleware runs; 404 unless it may.

    Prometheus scrapes the app directly over plain HTTP, with the target's address as Host:
    like the health checks, these requests must not meet host validation or the HTTPS
    redirect. A request with X-Forwarded-For came through the public reverse proxy, and
    metrics are never served through the edge: it gets a 404, as when METRICS_ENABLED is off.
    """

    PATH = "/metrics"

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.export = None
        if settings.METRICS_ENABLED:
            from django_prometheus.exports import ExportToDjangoView

            self.export = ExportToDjangoView

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.rstrip("/") != self.PATH:
            return self.get_response(request)
        if self.export is None or "x-forwarded-for" in request.headers:
            return HttpResponseNotFound()
        return self.export(request)


class SynchronousChainMiddleware:
    """Last in MIDDLEWARE: every middleware before it then runs synchronously.

    Under ASGI, Django runs a middleware that can do both in async mode when the handler after
    it is async, and its own middlewares (MiddlewareMixin) then hand each of their hooks to a
    thread and back: about a dozen switches between the event loop and a thread per request.
    A sync-only middleware last turns the whole chain synchronous: one switch into a thread
    for the chain, one out and back for the view. The app's views are synchronous and
    WebSockets do not pass through this chain, so nothing here waits on the event loop.
    docs/performance.md has the figures (CPU per request, before and after).
    """

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)
