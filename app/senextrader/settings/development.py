"""Local development: DEBUG on, harmless secrets, a `.env` at the repository root if present."""

from pathlib import Path

import environ

# Read before base.py reads the environment; variables already set win over the file.
_DOT_ENV = Path(__file__).resolve().parents[3] / ".env"
if _DOT_ENV.is_file():
    environ.Env.read_env(_DOT_ENV)

from .base import *  # noqa: E402, F403
from .base import INSTALLED_APPS, env  # noqa: E402

SECRET_KEY = env.secret("SECRET_KEY", default="development-only-secret-key-not-for-production")
FIELD_ENCRYPTION_KEY = env.list(
    "FIELD_ENCRYPTION_KEY", default=["g6LtpsszncHRYIK0FGhWp1YYySl6rOQD_s2tTM_sqUI="]
)
DEBUG = env.bool("DEBUG", default=True)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
WS_ALLOWED_ORIGINS = env.list("WS_ALLOWED_ORIGINS", default=ALLOWED_HOSTS)

# Daphne's runserver serves WebSockets too; it must come before staticfiles.
INSTALLED_APPS = ["daphne", *INSTALLED_APPS]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
