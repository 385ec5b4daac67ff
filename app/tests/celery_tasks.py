"""Tasks only the tests' workers load (`celery worker --include tests.celery_tasks`)."""

import os
import time

import redis
from celery import shared_task
from django.conf import settings


@shared_task(name="tests.record_and_sleep")
def record_and_sleep(key: str, seconds: float) -> int:
    """Append this process's pid to the Redis list `key`; the first run then sleeps."""
    runs = redis.Redis.from_url(settings.REDIS_URL).rpush(key, os.getpid())
    if runs == 1:
        time.sleep(seconds)
    return runs
