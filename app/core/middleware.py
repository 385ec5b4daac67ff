from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

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
