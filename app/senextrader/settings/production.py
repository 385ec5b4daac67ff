"""Production: secrets required, DEBUG off, behind a TLS-terminating proxy.

Boots from environment variables alone. Only SECRET_KEY and FIELD_ENCRYPTION_KEY are
required at import, so `collectstatic` runs at image build time with dummy values and
neither database nor Redis.
"""

from .base import *  # noqa: F403
from .base import env

SECRET_KEY = env.secret("SECRET_KEY")
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
