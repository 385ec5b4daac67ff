from celery import shared_task


@shared_task
def ping() -> str:
    """Answers `pong`: `manage.py celery_roundtrip` sends it to each queue."""
    return "pong"
