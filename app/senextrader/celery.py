"""The Celery app: configured from Django settings (CELERY_* names), tasks found in each app.

Celery's own logging setup is replaced by Django's LOGGING (senextrader/logs.py), so the worker
and beat write lines in the same format as the web server, and django-structlog binds each
task's id, name and queue to every line logged while it runs.
"""

import logging
import logging.config
import os
import sys
from typing import Any

import structlog
from celery import Celery, Task, signals
from celery.apps.worker import install_worker_term_handler
from django.dispatch import receiver
from django_structlog.celery.signals import bind_extra_task_metadata
from django_structlog.celery.steps import DjangoStructLogInitStep

from .environment import settings_module

os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings_module())

app = Celery("senextrader")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.steps["worker"].add(DjangoStructLogInitStep)


@signals.setup_logging.connect
def _apply_django_logging(**kwargs: Any) -> None:
    """A receiver of this signal stops Celery from configuring logging itself."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


@signals.worker_ready.connect
def _no_plain_shutdown_line(sender: Any, **kwargs: Any) -> None:
    """In JSON mode the worker's stop (SIGTERM) prints its line as JSON (below).

    Celery writes "worker: Warm shutdown (MainProcess)" straight to stdout from its signal
    handler, past logging; the handler is installed again, the same but without that line.
    """
    from django.conf import settings

    if settings.LOG_FORMAT == "json":
        install_worker_term_handler(sender.controller, verbose=False)


@signals.worker_shutting_down.connect
def _shutdown_line_in_json(how: str, **kwargs: Any) -> None:
    """The shutdown line, rendered by the root logger's formatter and written with os.write:
    this runs in a signal handler, where writing to a Python stream may re-enter one."""
    from django.conf import settings

    if settings.LOG_FORMAT != "json":
        return
    record = logging.LogRecord(
        "celery.apps.worker", logging.INFO, __file__, 0, f"worker: {how} shutdown", None, None
    )
    for handler in logging.getLogger().handlers[:1]:
        os.write(sys.__stdout__.fileno(), (handler.format(record) + "\n").encode())


@receiver(bind_extra_task_metadata)
def _bind_task_name_and_queue(sender: Any, task: Task, **kwargs: Any) -> None:
    delivery = task.request.delivery_info or {}
    structlog.contextvars.bind_contextvars(task=task.name, queue=delivery.get("routing_key"))
