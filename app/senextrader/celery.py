"""The Celery app: configured from Django settings (CELERY_* names), tasks found in each app.

Celery's own logging setup is replaced by Django's LOGGING (senextrader/logs.py), so the worker
and beat write lines in the same format as the web server, and django-structlog binds each
task's id, name and queue to every line logged while it runs.
"""

import logging.config
import os
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
    """In JSON mode the worker's stop (SIGTERM) prints no plain-text line of its own.

    Celery writes "worker: Warm shutdown (MainProcess)" straight to stdout from its signal
    handler, past logging; the handler is installed again, the same but without that line.
    """
    from django.conf import settings

    if settings.LOG_FORMAT == "json":
        install_worker_term_handler(sender.controller, verbose=False)


@receiver(bind_extra_task_metadata)
def _bind_task_name_and_queue(sender: Any, task: Task, **kwargs: Any) -> None:
    delivery = task.request.delivery_info or {}
    structlog.contextvars.bind_contextvars(task=task.name, queue=delivery.get("routing_key"))
