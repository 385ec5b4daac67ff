from django.db.models import QuerySet

from .models import Heartbeat

BEAT_HEARTBEAT = "beat"


def heartbeat_get(*, name: str = BEAT_HEARTBEAT) -> Heartbeat | None:
    return Heartbeat.objects.filter(name=name).first()


def heartbeat_list() -> QuerySet[Heartbeat]:
    """Every periodic task's last run, by name: a few rows, no user data."""
    return Heartbeat.objects.order_by("name")
