"""Production: secrets required, DEBUG off, behind a TLS-terminating proxy.

Boots from environment variables alone. Only SECRET_KEY and FIELD_ENCRYPTION_KEY are
required at import, so `collectstatic` runs at image build time with dummy values and
neither database nor Redis.
"""

import json

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import env

SECRET_KEY = env.secret("SECRET_KEY")
# Earlier keys, newest first, as a JSON list of strings (a key may hold a comma): signatures
# they made (sessions, password reset links) stay valid while a new SECRET_KEY takes over.
SECRET_KEY_FALLBACKS = json.loads(env.secret("SECRET_KEY_FALLBACKS", default="[]"))
if not isinstance(SECRET_KEY_FALLBACKS, list) or not all(
    isinstance(key, str) for key in SECRET_KEY_FALLBACKS
):
    raise ImproperlyConfigured("SECRET_KEY_FALLBACKS must be a JSON list of strings")
# Fernet keys, comma-separated: the first encrypts, all decrypt (so a key can be rotated).
FIELD_ENCRYPTION_KEY = env.list("FIELD_ENCRYPTION_KEY")

DEBUG = False

# The proxy terminates TLS and says so in X-Forwarded-Proto; it must overwrite, never pass
# through, a client's header of that name.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
# Container health checks call these over plain HTTP on localhost.
SECURE_REDIRECT_EXEMPT = [r"^health/"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
# An hour by default: long enough for `check --deploy`, short enough to back out of HTTPS.
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
