from django.contrib import admin
from django.http import HttpRequest

from .models import Heartbeat


@admin.register(Heartbeat)
class HeartbeatAdmin(admin.ModelAdmin):
    """Read-only: the rows are written by the periodic task alone."""

    list_display = ("name", "last_run_at", "runs")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Heartbeat | None = None) -> bool:
        return False
