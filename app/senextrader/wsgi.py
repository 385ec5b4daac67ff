"""WSGI entry point (HTTP only; WebSockets need asgi.py)."""

import os

from django.core.wsgi import get_wsgi_application

from .environment import settings_module

os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings_module())

application = get_wsgi_application()
