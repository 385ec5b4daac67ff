#!/usr/bin/env python3
"""Log in, open /ws/trading/status/ and wait for a heartbeat pushed by Celery beat.

Standard library only, so it runs on any host with Python 3. Usage:
  ws_heartbeat.py BASE_URL USERNAME [TIMEOUT]   (password in the WS_CHECK_PASSWORD variable)
An https:// BASE_URL (the edge) is checked against the CA certificate in WS_CHECK_CA; http://
goes straight to the app, as a TLS-terminating proxy would.
Exits 0 and prints the heartbeat once one arrives; non-zero with the reason otherwise.
"""

import base64
import http.client
import http.cookies
import json
import os
import re
import socket
import ssl
import sys
import time
import urllib.parse


def tls() -> ssl.SSLContext:
    """Trust only the edge's CA: a certificate from anywhere else fails the check."""
    return ssl.create_default_context(cafile=os.environ["WS_CHECK_CA"])


def request(base: str, method: str, path: str, cookies: dict, body: str = "") -> dict:
    """Send one request as the TLS-terminating proxy would; return the cookies it sets."""
    url = urllib.parse.urlsplit(base)
    if url.scheme == "https":
        connection = http.client.HTTPSConnection(
            url.hostname, url.port or 443, timeout=10, context=tls()
        )
    else:
        connection = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=10)
    headers = {
        # The app sits behind a TLS proxy: it trusts this header and marks its cookies Secure.
        "X-Forwarded-Proto": "https",
        "Origin": f"https://{url.netloc}",
        "Cookie": "; ".join(f"{name}={value}" for name, value in cookies.items()),
    }
    if body:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    page = response.read().decode(errors="replace")
    if response.status >= 400:
        sys.exit(f"{method} {path}: HTTP {response.status}")
    jar = http.cookies.SimpleCookie()
    for header in response.headers.get_all("Set-Cookie") or []:
        jar.load(header)
    return {"page": page, "cookies": {name: morsel.value for name, morsel in jar.items()}}


def login(base: str, username: str, password: str) -> str:
    """Return the Cookie header of a logged-in session."""
    form_page = request(base, "GET", "/accounts/login/", {})
    cookies = form_page["cookies"]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form_page["page"])
    if not token:
        sys.exit("no CSRF token in /accounts/login/")
    form = urllib.parse.urlencode(
        {"username": username, "password": password, "csrfmiddlewaretoken": token.group(1)}
    )
    cookies |= request(base, "POST", "/accounts/login/", cookies, form)["cookies"]
    if "sessionid" not in cookies:
        sys.exit("login failed: no session cookie (wrong user or password?)")
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


def read_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            sys.exit("the server closed the WebSocket")
        data += chunk
    return data


def read_frame(sock: socket.socket) -> tuple[int, bytes]:
    first, second = read_exact(sock, 2)
    length = second & 0x7F
    if length == 126:
        length = int.from_bytes(read_exact(sock, 2), "big")
    elif length == 127:
        length = int.from_bytes(read_exact(sock, 8), "big")
    return first & 0x0F, read_exact(sock, length)


def main() -> int:
    base, username = sys.argv[1].rstrip("/"), sys.argv[2]
    if urllib.parse.urlsplit(base).scheme not in ("http", "https"):
        sys.exit(f"BASE_URL must start with http:// or https://, got {base}")
    timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 60.0
    cookie = login(base, username, os.environ["WS_CHECK_PASSWORD"])
    url = urllib.parse.urlsplit(base)
    secure = url.scheme == "https"
    sock = socket.create_connection(
        (url.hostname, url.port or (443 if secure else 80)), timeout=timeout
    )
    if secure:
        sock = tls().wrap_socket(sock, server_hostname=url.hostname)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws/trading/status/ HTTP/1.1\r\nHost: {url.netloc}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: {base}\r\nCookie: {cookie}\r\n\r\n"
        ).encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += read_exact(sock, 1)
    status = response.split(b"\r\n", 1)[0].decode()
    if " 101 " not in status:
        sys.exit(f"WebSocket handshake refused: {status}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        opcode, payload = read_frame(sock)
        if opcode != 1:
            continue
        message = json.loads(payload)
        if message.get("type") == "heartbeat":
            print(json.dumps(message))
            return 0
    sys.exit(f"no heartbeat within {timeout:g} s")


if __name__ == "__main__":
    sys.exit(main())
