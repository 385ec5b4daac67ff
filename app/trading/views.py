from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .selectors import heartbeat_get


@login_required
def status(request: HttpRequest) -> HttpResponse:
    return render(request, "trading/status.html", {"heartbeat": heartbeat_get()})
