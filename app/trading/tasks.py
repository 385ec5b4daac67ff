from celery import shared_task

from . import services


@shared_task
def heartbeat_publish() -> dict:
    """Scheduled by beat (CELERY_BEAT_SCHEDULE); runs on the `trading` queue."""
    return services.heartbeat_publish()
