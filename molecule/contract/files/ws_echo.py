#!/usr/bin/env python3
"""Open a WebSocket, send one text message and wait for it to come back.

Standard library only, so it runs on any host with Python 3. Usage:
  ws_echo.py BASE_URL PATH [TIMEOUT]
Exits 0 and prints what came back; non-zero with the reason otherwise.
"""

import base64
import os
import socket
import struct
import sys
import urllib.parse


def frame(text: str) -> bytes:
    """One masked text frame, as a client must send it (RFC 6455, 5.3)."""
    payload = text.encode()
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + mask + masked


def read_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            sys.exit("the server closed the connection")
        data += chunk
    return data


def read_text(sock: socket.socket) -> str:
    first, second = read_exact(sock, 2)
    size = second & 0x7F
    if size == 126:
        size = struct.unpack("!H", read_exact(sock, 2))[0]
    elif size == 127:
        size = struct.unpack("!Q", read_exact(sock, 8))[0]
    if first & 0x0F != 0x1:
        sys.exit(f"expected a text frame, got opcode {first & 0x0F}")
    return read_exact(sock, size).decode()


def main() -> None:
    base, path = sys.argv[1], sys.argv[2]
    timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 30.0
    url = urllib.parse.urlsplit(base)
    key = base64.b64encode(os.urandom(16)).decode()
    sock = socket.create_connection((url.hostname, url.port or 80), timeout=timeout)
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: {url.netloc}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: {base}\r\nX-Forwarded-Proto: https\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1024)
        if not chunk:
            sys.exit(f"no handshake answer: {head!r}")
        head += chunk
    status = head.split(b"\r\n", 1)[0].decode()
    if " 101 " not in f"{status} ":
        sys.exit(f"handshake refused: {status}")
    message = base64.b16encode(os.urandom(8)).decode()
    sock.sendall(frame(message))
    answer = read_text(sock)
    if answer != message:
        sys.exit(f"sent {message}, got {answer}")
    print(f"handshake {status}; echo of {message} came back")


if __name__ == "__main__":
    main()
