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
