"""The live status page end to end: real login over HTTP, a real WebSocket handshake with the
session cookie, and a heartbeat published by a real Celery worker through channels_redis."""

import http.cookiejar
import json
import time
import urllib.parse
import urllib.request

import pytest
import redis
from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils.module_loading import import_string
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.commands import APP_DIR, daphne, http_ready
from tests.servers import CACHE_DB, free_port, redis_server, running
from trading.services import STATUS_GROUP
from trading.tasks import heartbeat_publish

pytestmark = pytest.mark.django_db(transaction=True)

WAIT = 20


def _log_in(url: str, username: str, password: str) -> str:
    """Log in through the login form as a browser does; returns the session cookie."""
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    browser.open(f"{url}/accounts/login/", timeout=WAIT).read()
    csrf = next(cookie.value for cookie in jar if cookie.name == "csrftoken")
    form = urllib.parse.urlencode(
        {"username": username, "password": password, "csrfmiddlewaretoken": csrf}
    ).encode()
    with browser.open(f"{url}/accounts/login/", data=form, timeout=WAIT) as page:
        assert page.url == f"{url}/trading/"
        assert b"Live status" in page.read()
    return next(cookie.value for cookie in jar if cookie.name == "sessionid")


def _open(url: str, *, session: str | None, origin: str | None = None) -> ClientConnection:
    headers = {"Cookie": f"sessionid={session}"} if session else {}
    return connect(
        url.replace("http://", "ws://") + "/ws/trading/status/",
        origin=origin or url,
        additional_headers=headers,
        open_timeout=WAIT,
    )


def _receive(socket: ClientConnection) -> dict:
    return json.loads(socket.recv(timeout=WAIT))


@pytest.fixture
def trader_session(live_server_url: str) -> str:
    get_user_model().objects.create_user("trader", password="pw-trader")
    return _log_in(live_server_url, "trader", "pw-trader")


def test_logged_in_user_receives_heartbeats_from_the_worker(
    live_server_url: str, celery_worker: str, trader_session: str
) -> None:
    with _open(live_server_url, session=trader_session) as socket:
        # Sent after the consumer joined the group: heartbeats from now on reach us.
        assert _receive(socket)["type"] == "connected"

        # Several, so a worker process publishes more than once: each publication runs in
        # a fresh event loop, which channels_redis must cope with.
        for _ in range(4):
            sent = heartbeat_publish.delay().get(timeout=WAIT)
            received = _receive(socket)
            while received.get("sequence") != sent["sequence"]:  # an older beat
                received = _receive(socket)
            assert received == sent
            assert received["type"] == "heartbeat"


def test_anonymous_websocket_is_refused(live_server_url: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        _open(live_server_url, session=None)

    assert refused.value.response.status_code == 403


def test_websocket_from_another_origin_is_refused(
    live_server_url: str, trader_session: str
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        _open(live_server_url, session=trader_session, origin="https://evil.example")

    assert refused.value.response.status_code == 403


def test_an_idle_websocket_outlives_the_redis_read_timeout(
    live_server_url: str, celery_worker: str, trader_session: str
) -> None:
    # The channel layer's subscriber waits on Redis with nothing to read; a wait bounded by a
    # socket timeout (redis-py 8 defaults to 5 s) that tears the connection down would drop
    # every idle consumer.
    idle = 8
    with _open(live_server_url, session=trader_session) as socket:
        assert _receive(socket)["type"] == "connected"
        with pytest.raises(TimeoutError):
            socket.recv(timeout=idle)

        sent = heartbeat_publish.delay().get(timeout=WAIT)
        received = _receive(socket)
        while received.get("sequence") != sent["sequence"]:
            received = _receive(socket)
        assert received == sent


def _broadcast_until_received(layer: object, socket: ClientConnection) -> dict:
    """Broadcasts a numbered message every half second until one arrives; returns it."""
    send = async_to_sync(layer.group_send)
    deadline = time.monotonic() + WAIT
    number = 0
    while True:
        number += 1
        send(STATUS_GROUP, {"type": "status.heartbeat", "payload": {"number": number}})
        try:
            return json.loads(socket.recv(timeout=0.5))
        except TimeoutError:
            if time.monotonic() > deadline:
                raise


def test_an_open_websocket_receives_broadcasts_again_after_redis_restarts(
    app_env: dict[str, str], tmp_path
) -> None:
    # What is broadcast while Redis is down is lost, but a page that stays open must get the
    # broadcasts after it: the server's subscriber must subscribe again by itself. (With
    # channels_redis' list-based layer the waiting consumer failed: closed with 1011.)
    get_user_model().objects.create_user("trader", password="pw-trader")
    with redis_server() as own:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**app_env, "REDIS_URL": own.url(CACHE_DB)}
        log = tmp_path / "daphne.log"
        with running(
            daphne(port), env=env, cwd=APP_DIR, log=log, ready=http_ready(url), what="Daphne"
        ):
            session = _log_in(url, "trader", "pw-trader")
            # The configured layer, on this test's Redis.
            layer = import_string(settings.CHANNEL_LAYERS["default"]["BACKEND"])(
                hosts=[own.url(CACHE_DB)]
            )
            with _open(url, session=session) as socket:
                assert _receive(socket)["type"] == "connected"
                before = _broadcast_until_received(layer, socket)

                redis.Redis.from_url(own.url(CACHE_DB)).shutdown(nosave=True)
                with redis_server(port=own.port):
                    after = _broadcast_until_received(layer, socket)

    assert before == {"number": 1}
    assert "number" in after
