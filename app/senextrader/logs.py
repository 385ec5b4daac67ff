"""Log lines for every logger: readable text (LOG_FORMAT=plain) or one JSON object a line (json).

structlog renders its own events (django-structlog's request and task events) and the records
of the stdlib's loggers (Django, Celery, uvicorn, Daphne) alike: a ProcessorFormatter runs the
records through the same processors (foreign_pre_chain) as structlog's events, then one
renderer. What a request or a task bound with structlog.contextvars (request_id, user_id,
task_id, queue) lands on every line logged while it runs, whichever logger wrote it.
"""

import logging
from typing import Any

import structlog
from structlog.typing import EventDict, Processor

LOG_FORMATS = ("json", "plain")
PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def add_revision(revision: str) -> Processor:
    """A processor stamping each event with the source revision the process runs."""

    def processor(logger: Any, method_name: str, event_dict: EventDict) -> EventDict:
        event_dict["revision"] = revision
        return event_dict

    return processor


def shared_processors(revision: str) -> list[Processor]:
    """What every event gets before it is rendered, from structlog or from the stdlib."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_revision(revision),
    ]


def logging_config(*, log_format: str, level: str, stream: Any, revision: str) -> dict:
    """Django's LOGGING: one console handler on the root logger, in the chosen format."""
    formatters: dict[str, dict] = {
        "plain": {"format": PLAIN_FORMAT},
        "json": {
            "()": structlog.stdlib.ProcessorFormatter,
            "foreign_pre_chain": shared_processors(revision),
            "processors": [
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                # The traceback as a field of the line, not as lines of its own; without the
                # frames' local variables, which may hold secrets.
                structlog.processors.ExceptionRenderer(
                    structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
                ),
                structlog.processors.JSONRenderer(),
            ],
        },
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {log_format: formatters[log_format]},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "stream": stream, "formatter": log_format}
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Each request's line is already written by django-structlog's middleware.
            "django.request": {"level": "WARNING"},
            "django.db.backends": {"level": "WARNING"},
        },
    }


def configure_structlog(*, log_format: str, revision: str) -> None:
    """Route structlog's events into the stdlib's loggers, rendered by LOGGING's handler."""
    if log_format == "json":
        processors = [
            structlog.stdlib.filter_by_level,
            *shared_processors(revision),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ]
    else:
        # The stdlib's plain format writes time, level and logger; the event and its keys follow.
        processors = [
            structlog.stdlib.filter_by_level,
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.format_exc_info,
            structlog.processors.KeyValueRenderer(key_order=["event"], drop_missing=True),
        ]
    structlog.configure(
        processors=processors,
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    # Python's warnings (a deprecation at startup) are log records too, not bare stderr lines.
    logging.captureWarnings(True)
