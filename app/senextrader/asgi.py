"""ASGI entry point: Django for HTTP, Channels for WebSockets (session auth, origin checked)."""

import os

from django.core.asgi import get_asgi_application

from .environment import settings_module

os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings_module())

# Build the Django app first: it sets up the app registry that the routing imports need.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import OriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from trading.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": OriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
            settings.WS_ALLOWED_ORIGINS,
        ),
    }
)

if settings.SENTRY_DSN:
    # Django's integration sees views only; wrapped whole, as Sentry advises for Channels, the
    # WebSocket consumers' errors are reported too (scrubbed by senextrader/errors.py as well).
    from sentry_sdk.integrations.asgi import SentryAsgiMiddleware

    application = SentryAsgiMiddleware(application)
