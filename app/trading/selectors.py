from .models import Heartbeat

BEAT_HEARTBEAT = "beat"


def heartbeat_get(*, name: str = BEAT_HEARTBEAT) -> Heartbeat | None:
    return Heartbeat.objects.filter(name=name).first()
