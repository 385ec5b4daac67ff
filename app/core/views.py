from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

from .health import health_checks


@never_cache
def health(request: HttpRequest) -> JsonResponse:
    """Database and Redis: 200 when both answer, 503 naming the check that failed."""
    results = health_checks()
    healthy = all(results.values())
    return JsonResponse(
        {
            "status": "healthy" if healthy else "unhealthy",
            "checks": {name: "ok" if ok else "failed" for name, ok in results.items()},
        },
        status=200 if healthy else 503,
    )


@never_cache
def health_simple(request: HttpRequest) -> JsonResponse:
    """The process answers HTTP; no dependency is touched."""
    return JsonResponse({"status": "ok"})
