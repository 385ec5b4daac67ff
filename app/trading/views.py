from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from .selectors import heartbeat_get, heartbeat_list


@login_required
def status(request: HttpRequest) -> HttpResponse:
    return render(request, "trading/status.html", {"heartbeat": heartbeat_get()})


@require_safe
@never_cache
def heartbeats(request: HttpRequest) -> JsonResponse:
    """When each periodic task last ran: public (no user data), read from the database on
    every request through the full middleware stack, which makes it the benchmarks' view."""
    return JsonResponse(
        {
            "heartbeats": [
                {"name": h.name, "last_run_at": h.last_run_at.isoformat(), "runs": h.runs}
                for h in heartbeat_list()
            ]
        }
    )
