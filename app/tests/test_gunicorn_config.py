"""The image's Gunicorn configuration (docker/gunicorn/gunicorn.conf.py), run as in the image."""

import signal
import socket
import time
from pathlib import Path

from tests.commands import APP_DIR, http_ready, image_gunicorn
from tests.servers import free_port, running

REQUEST = b"GET /health/simple/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


def _response(connection: socket.socket) -> bytes:
    chunks = []
    while chunk := connection.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_a_stopping_server_answers_the_connections_it_accepted_before_their_request(
    app_env: dict[str, str], tmp_path: Path
) -> None:
    # A restart under load: connections the worker accepted a moment before it was told to
    # stop, whose requests arrive after. uvicorn's own shutdown closed them unanswered.
    port = free_port()
    command = image_gunicorn(port)
    log = tmp_path / "gunicorn.log"
    ready = http_ready(f"http://127.0.0.1:{port}")
    with running(command, env=app_env, cwd=APP_DIR, log=log, ready=ready, what="gunicorn") as p:
        connections = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(4)]
        time.sleep(0.5)  # the idle worker accepts them at once
        p.send_signal(signal.SIGTERM)
        time.sleep(0.5)  # the worker's loop sees the stop within 0.1 s and begins to shut down
        for connection in connections:
            connection.sendall(REQUEST)
        responses = [_response(connection) for connection in connections]
        p.wait(timeout=30)

    assert [r.split(b"\r\n", 1)[0] for r in responses] == [b"HTTP/1.1 200 OK"] * 4, log.read_text()
    assert p.returncode == 0, log.read_text()


def test_an_app_without_structlog_boots_with_plain_logs_in_json_mode(
    app_env: dict[str, str], tmp_path: Path
) -> None:
    # The image is generic: its Gunicorn configuration must not need the app's libraries.
    (tmp_path / "structlog.py").write_text("raise ImportError('not installed in this app')\n")
    (tmp_path / "bare.py").write_text(
        "async def app(scope, receive, send):\n"
        "    if scope['type'] != 'http':\n"
        "        return\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': b'ok'})\n"
    )
    port = free_port()
    command = [*image_gunicorn(port)[:-1], "bare:app"]
    env = {**app_env, "LOG_FORMAT": "json", "PYTHONPATH": str(tmp_path)}
    log = tmp_path / "gunicorn.log"
    ready = http_ready(f"http://127.0.0.1:{port}")

    with running(command, env=env, cwd=tmp_path, log=log, ready=ready, what="gunicorn"):
        pass

    assert "Booting worker with pid" in log.read_text()
    assert not log.read_text().startswith("{"), log.read_text()
