import time

from celery import shared_task


@shared_task
def ping(hold: float = 0.0) -> str:
    """Answers `pong` after `hold` seconds: `manage.py celery_roundtrip` sends it to each queue.

    A held ping is a long task on demand, so a deployment can prove that restarting the
    worker lets a running task finish.
    """
    time.sleep(hold)
    return "pong"
