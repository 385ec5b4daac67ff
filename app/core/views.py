from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

from .services import health_check


@never_cache
def health(request: HttpRequest) -> JsonResponse:
    """Database, Redis and the channel layer: 200 when all work, 503 naming what failed."""
    results = health_check()
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
