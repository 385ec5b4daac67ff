#!/usr/bin/env python3
"""Open a WebSocket, send one text message and wait for it to come back.

Runs on the controller with its `websockets`. Usage:
  ws_echo.py BASE_URL PATH [TIMEOUT]
Exits 0 and prints what came back; non-zero with the reason otherwise.
"""

import os
import sys

from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect


def main() -> None:
    base, path = sys.argv[1], sys.argv[2]
    timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 30.0
    message = os.urandom(8).hex()
    try:
        with connect(
            base.replace("http", "ws", 1) + path,
            origin=base,
            # As the TLS-terminating proxy would forward it.
            additional_headers={"X-Forwarded-Proto": "https"},
            open_timeout=timeout,
        ) as websocket:
            websocket.send(message)
            answer = websocket.recv(timeout=timeout)
            status = websocket.response.status_code
    except InvalidStatus as error:
        sys.exit(f"handshake refused: {error}")
    if answer != message:
        sys.exit(f"sent {message}, got {answer}")
    print(f"handshake {status}; echo of {message} came back")


if __name__ == "__main__":
    main()
