import socket

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .models import Heartbeat
from .selectors import BEAT_HEARTBEAT

# Channel-layer group every live status page joins.
STATUS_GROUP = "trading_status"


def heartbeat_record(*, name: str = BEAT_HEARTBEAT) -> Heartbeat:
    """Store that the periodic task `name` ran now."""
    now = timezone.now()
    with transaction.atomic():
        heartbeat, created = Heartbeat.objects.select_for_update().get_or_create(
            name=name, defaults={"last_run_at": now, "runs": 1}
        )
        if not created:
            Heartbeat.objects.filter(pk=heartbeat.pk).update(last_run_at=now, runs=F("runs") + 1)
            heartbeat.refresh_from_db()
    return heartbeat


def heartbeat_publish(*, name: str = BEAT_HEARTBEAT) -> dict:
    """Record a heartbeat and push it to every open status page. Returns what was sent."""
    heartbeat = heartbeat_record(name=name)
    payload = {
        "type": "heartbeat",
        "name": heartbeat.name,
        "sequence": heartbeat.runs,
        "sent_at": heartbeat.last_run_at.isoformat(),
        "worker": socket.gethostname(),
    }
    async_to_sync(get_channel_layer().group_send)(
        STATUS_GROUP, {"type": "status.heartbeat", "payload": payload}
    )
    return payload
