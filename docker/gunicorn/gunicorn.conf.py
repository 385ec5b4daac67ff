"""Gunicorn settings for the ASGI app, every value overridable from the environment.

Used by the entrypoint's `gunicorn` route. Uvicorn workers serve HTTP and WebSockets;
Gunicorn adds worker supervision and recycling on top.
"""

import asyncio
import os
import sys

from gunicorn.arbiter import Arbiter
from gunicorn.sock import TCPSocket
from uvicorn.server import Server
from uvicorn_worker import UvicornWorker


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit():
        raise SystemExit(f"gunicorn.conf.py: {name} must be a whole number, got {raw!r}")
    return int(raw)


def _cores() -> int:
    # The CPUs this container may use, not the host's: podman --cpuset-cpus limits them.
    return len(os.sched_getaffinity(0)) or 1


# A systemd socket (LISTEN_FDS, LISTEN_PID = this process) takes precedence over bind.
bind = [os.environ.get("WEB_BIND", "0.0.0.0:8000")]
# Seconds a stopping worker waits for the connections it accepted but has no request from
# yet (DrainingUvicornWorker below).
DRAIN_SECONDS = 2.0


class DrainingServer(Server):
    """A uvicorn server whose stop answers the connections it has just accepted.

    uvicorn's shutdown stops accepting and then closes every connection without a request in
    progress. A connection accepted a moment before, whose request had not been read yet, was
    closed with that request unread: the client got a reset (seen in upgrades under load, and
    on every worker recycle). Here the connections without a first request get up to
    DRAIN_SECONDS to send one, which is then answered; kept-alive idle ones close as before.
    """

    async def shutdown(self, sockets: list | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DRAIN_SECONDS
        # An HTTP connection's cycle is None until its first request's headers arrived;
        # WebSocket connections have none.
        while loop.time() < deadline and any(
            getattr(connection, "cycle", True) is None
            for connection in self.server_state.connections
        ):
            await asyncio.sleep(0.02)
        await super().shutdown()


class DrainingUvicornWorker(UvicornWorker):
    """uvicorn_worker's worker, serving through DrainingServer."""

    async def _serve(self) -> None:
        self.config.app = self.wsgi
        server = DrainingServer(config=self.config)
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)


worker_class = os.environ.get("GUNICORN_WORKER_CLASS") or DrainingUvicornWorker
# Async workers each use one core fully; measured here, one worker per core beat more.
workers = _int("GUNICORN_WORKERS", _cores())
timeout = _int("GUNICORN_TIMEOUT", 30)
# Below the web unit's StopTimeout (20 s), so workers finish their requests before podman
# would kill them.
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 15)
# Longer than a reverse proxy's usual 60 s idle timeout, so the proxy closes idle
# connections first and never reuses one Gunicorn is closing.
keepalive = _int("GUNICORN_KEEPALIVE", 65)
# Off by default: uvicorn's own worker, retiring after max_requests, reset the connections it
# had accepted but not yet answered (measured: a few per recycle under load, each one a 502
# behind a proxy); DrainingUvicornWorker below answers them, not yet measured under recycling.
# Set it to bound a slow leak; the jitter keeps workers from retiring together.
max_requests = _int("GUNICORN_MAX_REQUESTS", 0)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 100)
limit_request_line = _int("GUNICORN_LIMIT_REQUEST_LINE", 4094)
limit_request_fields = _int("GUNICORN_LIMIT_REQUEST_FIELDS", 100)
limit_request_field_size = _int("GUNICORN_LIMIT_REQUEST_FIELD_SIZE", 8190)
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# Logs go to stdout/stderr, where podman and journald collect them.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = os.environ.get("GUNICORN_ERROR_LOG", "-")
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# Gunicorn 25+ opens a control socket by default; two instances on one host collided,
# and nothing here uses it.
control_socket_disable = True


def _json_logconfig(*, access: bool) -> dict | None:
    """Gunicorn's and uvicorn's lines as one JSON object each, with the fields of the app's
    lines (timestamp, level, logger, event, revision, exception); None without structlog,
    which an app that writes plain logs need not have."""
    try:
        import structlog
    except ImportError:
        return None
    revision = os.environ.get("SENEX_VERSION", "dev")

    def add_revision(logger: object, method_name: str, event_dict: dict) -> dict:
        event_dict["revision"] = revision
        return event_dict

    formatter = {
        "()": structlog.stdlib.ProcessorFormatter,
        "foreign_pre_chain": [
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            add_revision,
        ],
        "processors": [
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            ),
            structlog.processors.JSONRenderer(),
        ],
    }
    handlers = {
        name: {"class": "logging.StreamHandler", "formatter": "json", "stream": stream}
        for name, stream in (("console", "ext://sys.stdout"), ("error_console", "ext://sys.stderr"))
    }
    # Not propagated: the root logger's handler would write each line a second time.
    loggers = {
        "gunicorn.error": {
            "level": loglevel.upper(),
            "handlers": ["error_console"],
            "propagate": False,
        },
        # uvicorn's worker gives uvicorn.access this logger's handlers and level.
        "gunicorn.access": {
            "level": "INFO" if access else "WARNING",
            "handlers": ["console"],
            "propagate": False,
        },
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": formatter},
        "handlers": handlers,
        "root": {"level": "INFO", "handlers": ["console"]},
        "loggers": loggers,
    }


# The entrypoint resolves LOG_FORMAT (json in a container unless set) and exports it.
if os.environ.get("LOG_FORMAT", "plain").lower() == "json":
    # The app's own line for each request (django-structlog's request_finished) stands in for
    # the access log, as under Daphne: one line a request, not two (the second cost about a
    # third of /health/simple/'s CPU, docs/performance.md). GUNICORN_ACCESS_LOG brings it back.
    accesslog = os.environ.get("GUNICORN_ACCESS_LOG")
    logconfig_dict = _json_logconfig(access=accesslog is not None) or {}


def when_ready(server) -> None:
    """Under socket activation also listen on the container's own loopback.

    The socket systemd passes lives in the host's network namespace, so the container's
    health check could not reach it; Gunicorn serves only passed sockets once it has any.
    Workers start after this hook and inherit every listener.
    """
    if not server.systemd:
        return
    port = int(bind[0].rpartition(":")[2])
    server.LISTENERS.append(TCPSocket(("127.0.0.1", port), server.cfg, server.log))
    server.log.info("Listening at: http://127.0.0.1:%d (health check)", port)


def child_exit(server, worker) -> None:
    """Under prometheus_client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR, set by the
    entrypoint when METRICS_ENABLED is true) a dead worker's live gauges stop counting."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    # Imported here: an app without prometheus_client runs with this file too.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
