"""Settings shared by every environment.

The environment is read through one django-environ object, `env` below; the files per
environment import it for their own reads. FileAwareEnv also accepts `<NAME>_FILE` (a path
whose content is the value): that is how Podman secrets reach the app. Every variable read
is documented in `.env.example` and `.env.production.example`; a test enforces it.
"""

import logging
import ssl
import sys
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue
from redis.exceptions import ConnectionError as RedisConnectionError

from senextrader.logs import LOG_FORMATS, configure_structlog, logging_config

BASE_DIR = Path(__file__).resolve().parents[2]


class Env(environ.FileAwareEnv):
    """FileAwareEnv plus `secret()`, a read that returns the value byte for byte.

    django-environ takes any value starting with `$` for the name of another variable and
    returns that one instead; a generated key or password may well start with `$`.
    """

    def secret(self, var: str, default: str | None = None) -> str:
        try:
            return self.ENVIRON[var]
        except KeyError:
            if default is None:
                raise ImproperlyConfigured(f"Set the {var} environment variable") from None
            return default


env = Env()

# SECRET_KEY and FIELD_ENCRYPTION_KEY are read by each environment's file: production
# requires them, development and test fall back to harmless values. Secrets are read with
# env.secret, never interpolated.

DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Origins (or host patterns) allowed to open a WebSocket; by default the allowed hosts.
WS_ALLOWED_ORIGINS = env.list("WS_ALLOWED_ORIGINS", default=ALLOWED_HOSTS)

DJANGO_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]
THIRD_PARTY_APPS = [
    "channels",
    "django_structlog",
]
LOCAL_APPS = [
    "core",
    "accounts",
    "trading",
]
# Prometheus metrics (django-prometheus) at /metrics, for a scraper that reaches the app
# directly; off by default.
METRICS_ENABLED = env.bool("METRICS_ENABLED", default=False)
if METRICS_ENABLED:
    THIRD_PARTY_APPS.append("django_prometheus")
INSTALLED_APPS = DJANGO_APPS + THIRD_PARTY_APPS + LOCAL_APPS

MIDDLEWARE = [
    # First: /metrics and the health checks answer before host validation and HTTPS
    # redirects (a scraper and a health check use the bare address and plain HTTP).
    "core.middleware.MetricsMiddleware",
    "core.middleware.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # After authentication, so each request's log lines carry its user_id.
    "django_structlog.middlewares.RequestMiddleware",
]
if METRICS_ENABLED:
    # django-prometheus's pair first and last, as its documentation says; only /metrics
    # itself answers before them, so scrapes are not counted as requests.
    MIDDLEWARE = [
        MIDDLEWARE[0],
        "django_prometheus.middleware.PrometheusBeforeMiddleware",
        *MIDDLEWARE[1:],
        "django_prometheus.middleware.PrometheusAfterMiddleware",
    ]
# Truly last: the chain runs synchronously, in one thread per request (see its docstring).
MIDDLEWARE.append("core.middleware.SynchronousChainMiddleware")

ROOT_URLCONF = "senextrader.urls"
WSGI_APPLICATION = "senextrader.wsgi.application"
ASGI_APPLICATION = "senextrader.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database
DB_SSL_ROOT_CERT = env.str("DB_SSL_ROOT_CERT", default="")
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": env.str("DB_NAME", default="senex"),
        "USER": env.str("DB_USER", default="senex"),
        "PASSWORD": env.secret("DB_PASSWORD", default=""),
        "HOST": env.str("DB_HOST", default="localhost"),
        "PORT": env.int("DB_PORT", default=5432),
        # 0: under ASGI each request has its own connection, and kept ones are never reused;
        # they piled up until PostgreSQL refused clients (Django: disable them under ASGI).
        # The pool below is how connections are reused; Django refuses both at once.
        "CONN_MAX_AGE": env.int("DB_CONN_MAX_AGE", default=0),
        # A kept connection may have died with a database restart: test it before use.
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {
            "sslmode": env.str("DB_SSL_MODE", default="prefer"),
            # libpq's sslrootcert: the CA that signed the server's certificate, for verify-ca and
            # verify-full (a file, or `system` for the system's CAs); unset: libpq's default.
            **({"sslrootcert": DB_SSL_ROOT_CERT} if DB_SSL_ROOT_CERT else {}),
            # Bounded, so /health/ answers 503 quickly when the database is unreachable.
            "connect_timeout": 5,
        },
    }
}
# Each process keeps a pool of connections (psycopg 3's, which Django opens): a request borrows
# one and gives it back, instead of connecting and authenticating (SCRAM) every time.
# DB_POOL_MAX_SIZE connections at most per process, so every process of the stack together
# must fit PostgreSQL's max_connections; 0 turns the pool off (a connection per request).
DB_POOL_MAX_SIZE = env.int("DB_POOL_MAX_SIZE", default=4)
if DB_POOL_MAX_SIZE > 0:
    DATABASES["default"]["OPTIONS"]["pool"] = {
        # Opened at the first query and kept; the others close after DB_POOL_MAX_IDLE s unused.
        "min_size": min(env.int("DB_POOL_MIN_SIZE", default=1), DB_POOL_MAX_SIZE),
        "max_size": DB_POOL_MAX_SIZE,
        "max_idle": env.float("DB_POOL_MAX_IDLE", default=300.0),
        # A request waits this long for a free connection, then fails (500) rather than hang.
        "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),
    }
if METRICS_ENABLED:
    # Django's PostgreSQL backend (psycopg 3, pool included) counting queries, errors and
    # connections taken (from the pool, when there is one).
    DATABASES["default"]["ENGINE"] = "django_prometheus.db.backends.postgresql"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis: cache, sessions, channel layer, and by default the Celery broker and results.
REDIS_URL = env.str("REDIS_URL", default="redis://localhost:6379/0")
# TLS to Redis, for every client alike: a rediss:// URL gets a connection that checks the
# server's certificate and its name against REDIS_SSL_CA_CERTS (a CA file; unset: the system's
# CAs). No switch turns the check off: kombu would otherwise take rediss:// as CERT_NONE.
REDIS_SSL_CA_CERTS = env.str("REDIS_SSL_CA_CERTS", default="")


def redis_tls_options(url: str) -> dict[str, object]:
    """redis-py's TLS arguments for `url`: none unless it is a rediss:// URL."""
    if urlsplit(url).scheme != "rediss":
        return {}
    return {
        "ssl_cert_reqs": ssl.CERT_REQUIRED,
        "ssl_check_hostname": True,
        "ssl_ca_certs": REDIS_SSL_CA_CERTS or None,
    }


CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            # Bounded, so /health/ answers 503 quickly when Redis is unreachable.
            "SOCKET_CONNECT_TIMEOUT": 2,
            "SOCKET_TIMEOUT": 2,
            "CONNECTION_POOL_KWARGS": redis_tls_options(REDIS_URL),
        },
    }
}
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

CHANNEL_LAYERS = {
    "default": {
        # Redis pub/sub: a group_send is one PUBLISH, which each web process subscribed to the
        # group receives once and hands to its consumers in memory. It cost the web workers
        # about as much CPU per broadcast as the list-based RedisChannelLayer (measured, see
        # docs/performance.md), but an open WebSocket outlives a Redis restart (the subscriber
        # subscribes again) and a
        # full Redis (PUBLISH is not a write), where RedisChannelLayer's waiting consumers
        # failed and closed every page. Pub/sub keeps nothing: what is published while a
        # process is not subscribed is lost; the status page's next heartbeat follows.
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {
            # Bounds every command (PUBLISH, SUBSCRIBE) on a connection that died; the
            # subscriber polls with its own short timeout, so an idle one is not torn down.
            # A pooled connection that Redis closed (a restart) fails its next command once:
            # retried once on a new connection, so the first request after a restart passes.
            "hosts": [
                {
                    "address": REDIS_URL,
                    "socket_timeout": 15,
                    "retry_on_error": [RedisConnectionError],
                    **redis_tls_options(REDIS_URL),
                }
            ],
        },
    }
}

# Celery (read by senextrader/celery.py with namespace="CELERY")
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL)
CELERY_BROKER_USE_SSL = redis_tls_options(CELERY_BROKER_URL) or False
CELERY_REDIS_BACKEND_USE_SSL = redis_tls_options(CELERY_RESULT_BACKEND) or None
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_RESULT_EXPIRES = 3600
CELERY_TIMEZONE = "UTC"
# The queues, declared here once: a worker started without --queues consumes all of them,
# a deployed worker instance names its share (CELERY_WORKER_QUEUES in docker/entrypoint.sh).
# Tasks of these apps run on a queue named after the app, every other task on the default.
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_ROUTES = {f"{app}.tasks.*": {"queue": app} for app in ("accounts", "trading")}
# Each queue bound to an exchange of its own name, as Celery created them before they were
# declared, so a running broker's bindings stay valid.
CELERY_TASK_QUEUES = tuple(
    Queue(name, Exchange(name), routing_key=name)
    for name in dict.fromkeys(
        [CELERY_TASK_DEFAULT_QUEUE, *(route["queue"] for route in CELERY_TASK_ROUTES.values())]
    )
)
# A worker asked for a queue nobody declared refuses to start instead of waiting on it forever.
CELERY_TASK_CREATE_MISSING_QUEUES = False
# A task is acknowledged when it finishes, so a worker killed mid-task does not lose it: the
# broker hands it out again once the visibility timeout passes. The timeout must exceed the
# longest task (the hard time limit below), or a running task is delivered twice.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_TASK_TIME_LIMIT = 300
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
HEARTBEAT_INTERVAL_SECONDS = env.int("HEARTBEAT_INTERVAL_SECONDS", default=30)
CELERY_BEAT_SCHEDULE = {
    # Its last run is stored (trading.Heartbeat); `manage.py heartbeat_status` proves beat lives.
    "trading-heartbeat": {
        "task": "trading.tasks.heartbeat_publish",
        "schedule": HEARTBEAT_INTERVAL_SECONDS,
        # A heartbeat nobody ran in time is stale; the next one replaces it.
        "options": {"expires": HEARTBEAT_INTERVAL_SECONDS},
    },
}

# Authentication
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "trading:status"
LOGOUT_REDIRECT_URL = "login"

# Internationalisation
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Static and media files
STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(BASE_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Logging: to stdout in a container (the journal collects it), to stderr otherwise. json
# writes one JSON object a line (senextrader/logs.py), what a container's logs should be.
CONTAINER_MODE = env.bool("CONTAINER_MODE", default=False)
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOG_FORMAT = env.str("LOG_FORMAT", default="json" if CONTAINER_MODE else "plain").lower()
if LOG_FORMAT not in LOG_FORMATS:
    raise ImproperlyConfigured(
        f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, got {LOG_FORMAT!r}"
    )
# The source revision the image was built from; every JSON log line and error report has it.
SENEX_VERSION = env.str("SENEX_VERSION", default="dev")
LOGGING = logging_config(
    log_format=LOG_FORMAT,
    level=LOG_LEVEL,
    stream=sys.stdout if CONTAINER_MODE else sys.stderr,
    revision=SENEX_VERSION,
)
configure_structlog(log_format=LOG_FORMAT, revision=SENEX_VERSION)
# django-structlog: bind task_id in tasks, and carry request_id from a request to its tasks.
DJANGO_STRUCTLOG_CELERY_ENABLED = True
# request_finished says all request_started would; it stays for LOG_LEVEL=DEBUG.
DJANGO_STRUCTLOG_STATUS_START_LOG_LEVEL = logging.DEBUG

# Error reports (senextrader/errors.py) to a Sentry-protocol service: off unless SENTRY_DSN
# (or SENTRY_DSN_FILE) names one. The DSN holds the project's key: keep it in the vault.
SENTRY_DSN = env.str("SENTRY_DSN", default="")
if SENTRY_DSN:
    from senextrader.errors import init_error_reports

    init_error_reports(
        SENTRY_DSN,
        environment=env.str("ENVIRONMENT", default="development"),
        release=SENEX_VERSION,
    )
