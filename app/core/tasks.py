import time

from celery import shared_task


@shared_task(bind=True)
def ping(self, hold: float = 0.0) -> str:
    """Answers `pong from <worker node>` after `hold` seconds: `manage.py celery_roundtrip`
    sends it to each queue, and the answer names the worker that took it.

    A held ping is a long task on demand, so a deployment can prove that restarting the
    worker lets a running task finish.
    """
    time.sleep(hold)
    return f"pong from {self.request.hostname}"
