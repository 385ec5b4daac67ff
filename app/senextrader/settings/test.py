"""Tests: the database and Redis come from the environment the test session sets up."""

from .base import *  # noqa: F403
from .base import env

SECRET_KEY = env.secret("SECRET_KEY", default="test-only-secret-key-not-for-production")
FIELD_ENCRYPTION_KEY = env.list(
    "FIELD_ENCRYPTION_KEY", default=["X1OFawD6WNlFfK-ZlUVrWq7TyZuNp0AAFBJ5mzLAMWk="]
)
DEBUG = False
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "testserver"])
WS_ALLOWED_ORIGINS = env.list("WS_ALLOWED_ORIGINS", default=ALLOWED_HOSTS)

# Fast hashing: tests create users, they do not protect them.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# No collectstatic before tests: serve files from the apps' directories.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Serve static files from the apps' directories, as in development (DEBUG does that there).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
