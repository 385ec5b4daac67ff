"""A receiver of the Sentry protocol, for the checks: prints each envelope it is sent.

Listens on 0.0.0.0:8999 inside its container on the stack's network; the app's SENTRY_DSN names
it (http://KEY@<container>:8999/1). Every POST body (gzip undone) becomes one JSON line on
stdout, which the checks read with `podman logs`.
"""

import gzip
import http.server
import json


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        print(json.dumps({"path": self.path, "body": body.decode(errors="replace")}), flush=True)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *_: object) -> None:
        pass


http.server.ThreadingHTTPServer(("0.0.0.0", 8999), Receiver).serve_forever()  # noqa: S104
