"""Error reports to a Sentry-protocol service (Sentry, GlitchTip, ...), on when SENTRY_DSN is set.

Django's views (WSGI and ASGI, Channels' HTTP included) and Celery's tasks report their
unhandled exceptions. No event carries a secret: no user details, cookies, request bodies,
query values, SQL parameters or local variables are sent (data_collection; headers that carry
credentials are dropped by the SDK's own scrubbing), and the values of the app's secrets are
cut out of whatever text remains (an exception message that quotes one).
"""

import json
from urllib.parse import urlsplit

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration

HIDDEN = "[hidden]"


def secret_values() -> list[str]:
    """Every secret of the running settings: keys, the database password, Redis passwords."""
    from django.conf import settings  # settings are complete by the time an event is sent

    values = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    values += list(getattr(settings, "FIELD_ENCRYPTION_KEY", []))
    values += [db.get("PASSWORD", "") for db in settings.DATABASES.values()]
    urls = [
        getattr(settings, "CELERY_BROKER_URL", ""),
        getattr(settings, "CELERY_RESULT_BACKEND", ""),
    ]
    urls += [cache.get("LOCATION", "") for cache in settings.CACHES.values()]
    values += [urlsplit(url).password or "" for url in urls if isinstance(url, str)]
    # Longest first, so a secret that contains another is cut whole.
    return sorted({value for value in values if len(value) >= 8}, key=len, reverse=True)


def without_secrets(event: dict, hint: dict) -> dict:
    """before_send: the event with every secret value replaced."""
    text = json.dumps(event)
    for value in secret_values():
        text = text.replace(json.dumps(value)[1:-1], HIDDEN)
    return json.loads(text)


def init_error_reports(dsn: str, environment: str, release: str) -> None:
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        data_collection={
            "user_info": False,
            "cookies": {"mode": "off"},
            "http_bodies": [],
            "url_query_params": {"mode": "off"},
            "database_query_data": False,
            "queues": False,
            "stack_frame_variables": False,
        },
        before_send=without_secrets,
        # Errors only: no performance traces.
        traces_sample_rate=0,
    )
