"""The image's Gunicorn configuration (docker/gunicorn/gunicorn.conf.py), run as in the image."""

import signal
import socket
import sys
import time
from pathlib import Path

from tests.commands import APP_DIR, http_ready
from tests.servers import free_port, running

CONFIG = APP_DIR.parent / "docker" / "gunicorn" / "gunicorn.conf.py"
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
    command = [
        *(sys.executable, "-m", "gunicorn", "--config", str(CONFIG)),
        *("--bind", f"127.0.0.1:{port}", "--workers", "1", "senextrader.asgi:application"),
    ]
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
