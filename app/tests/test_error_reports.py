"""Error reports reach a Sentry-protocol receiver, with no secret in them, only when a DSN is set.

The receiver is a few lines of HTTP server on loopback that keeps every envelope the SDK
posts: the real SDK, over the real protocol, to a local address.
"""

import gzip
import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sentry_sdk
from django.conf import settings
from django.test import Client, override_settings

from senextrader.errors import HIDDEN, init_error_reports
from tests.commands import run_manage
from tests.test_production_settings import production_env

pytestmark = pytest.mark.django_db


@contextmanager
def receiver() -> Iterator[tuple[str, list[bytes]]]:
    """A DSN pointing at a local receiver, and the envelopes it received."""
    envelopes: list[bytes] = []

    class Envelopes(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            envelopes.append(body)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Envelopes)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://publickey@127.0.0.1:{server.server_address[1]}/1", envelopes
    finally:
        server.shutdown()
        server.server_close()


def test_error_reports_are_off_without_a_dsn() -> None:
    assert settings.SENTRY_DSN == ""
    assert not sentry_sdk.get_client().is_active()


def test_production_settings_turn_error_reports_on_with_a_dsn() -> None:
    code = (
        "import sentry_sdk; client = sentry_sdk.get_client();"
        " print(client.is_active(), client.options['data_collection']['user_info'], client.dsn)"
    )
    env = production_env(SENTRY_DSN="http://publickey@127.0.0.1:9/1")
    result = run_manage("shell", "--command", code, env=env)

    assert result.returncode == 0, result.stderr
    # The last line: Django's shell may say first what it imported.
    printed = result.stdout.splitlines()[-1].split()
    assert printed == ["True", "False", "http://publickey@127.0.0.1:9/1"]


@pytest.mark.parametrize("dsn", ["", "http://publickey@127.0.0.1:9/1"], ids=["off", "on"])
def test_websocket_errors_are_reported_through_the_asgi_middleware(dsn: str) -> None:
    # Django's integration sees views only; Channels' consumers are seen from the ASGI app.
    code = "from senextrader.asgi import application; print(type(application).__name__)"
    result = run_manage("shell", "--command", code, env=production_env(SENTRY_DSN=dsn))

    assert result.returncode == 0, result.stderr
    wrapper = "SentryAsgiMiddleware" if dsn else "ProtocolTypeRouter"
    assert result.stdout.splitlines()[-1] == wrapper


@override_settings(ROOT_URLCONF="tests.error_urls")
def test_an_error_in_a_view_reaches_the_receiver_without_a_secret() -> None:
    password = settings.DATABASES["default"]["PASSWORD"]
    with receiver() as (dsn, envelopes):
        init_error_reports(dsn, environment="test", release="test-release")
        try:
            response = Client(raise_request_exception=False).get("/broken/")
            sentry_sdk.flush(timeout=10)
        finally:
            sentry_sdk.init(dsn=None)  # off again for the other tests

    body = b"".join(envelopes)
    assert response.status_code == 500
    assert b"RuntimeError" in body
    assert b"broken view, key " + HIDDEN.encode() in body
    assert settings.SECRET_KEY.encode() not in body
    assert len(password) >= 8
    assert password.encode() not in body
    assert b"test-release" in body
