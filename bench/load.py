"""A steady stream of GET requests to a loopback URL, bounded in count and time.

Each request opens a new connection, as a client arriving during a deploy would, so a
refused or reset connection counts as a failure rather than being hidden by a pool.
Prints the request and failure counts, the failures by reason, and the latencies (median,
p99, worst); --json also writes them to a file. Exits 1 when any request failed.

    python bench/load.py http://127.0.0.1:8000/health/simple/ --rate 20 --max-seconds 300 \\
        --stop-file /tmp/stop-load --json load.json

An https:// URL (the edge) is checked against --cacert, with a TLS handshake per request.
"""

import argparse
import http.client
import ipaddress
import json
import ssl
import statistics
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit


def loopback_url(url: str) -> str:
    """Only 127.0.0.0/8, ::1 or localhost: this load is never aimed at another machine."""
    host = urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if urlsplit(url).scheme not in ("http", "https") or not loopback:
        raise argparse.ArgumentTypeError(
            f"{url!r} is not an http:// or https:// URL on the loopback interface"
        )
    return url


class Stream:
    """Requests shared out to a few threads, each keeping its share of the rate."""

    def __init__(self, url: str, timeout: float, cacert: Path | None = None) -> None:
        parts = urlsplit(url)
        self.tls = ssl.create_default_context(cafile=cacert) if parts.scheme == "https" else None
        self.host, self.port = parts.hostname, parts.port or (443 if self.tls else 80)
        self.path = parts.path + (f"?{parts.query}" if parts.query else "")
        self.timeout = timeout
        self.latencies: list[float] = []
        self.failures: Counter[str] = Counter()
        self.sent = 0
        self.lock = threading.Lock()

    def request(self) -> None:
        started = time.monotonic()
        if self.tls:
            connection = http.client.HTTPSConnection(
                self.host, self.port, timeout=self.timeout, context=self.tls
            )
        else:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            connection.request("GET", self.path, headers={"Connection": "close"})
            response = connection.getresponse()
            response.read()
            failure = None if response.status == 200 else f"HTTP {response.status}"
        except (OSError, http.client.HTTPException) as error:
            failure = type(error).__name__
        finally:
            connection.close()
        with self.lock:
            self.latencies.append(time.monotonic() - started)
            if failure:
                self.failures[failure] += 1

    def run(
        self, rate: float, workers: int, max_requests: int, deadline: float, stop: Path | None
    ) -> None:
        interval = workers / rate

        def worker() -> None:
            next_at = time.monotonic()
            while time.monotonic() < deadline and not (stop and stop.exists()):
                with self.lock:
                    if self.sent >= max_requests:
                        return
                    self.sent += 1
                self.request()
                next_at += interval
                time.sleep(max(0.0, next_at - time.monotonic()))

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def summary(self, seconds: float) -> dict[str, object]:
        ordered = sorted(self.latencies)

        def ms(value: float) -> float:
            return round(value * 1000, 1)

        return {
            "requests": len(ordered),
            "failed": sum(self.failures.values()),
            "failures": dict(self.failures),
            "seconds": round(seconds, 1),
            "latency_ms": {
                "median": ms(statistics.median(ordered)) if ordered else None,
                "p99": ms(ordered[int(len(ordered) * 0.99)]) if ordered else None,
                "worst": ms(ordered[-1]) if ordered else None,
            },
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", type=loopback_url)
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second in all")
    parser.add_argument("--workers", type=int, default=4, help="requests in flight at most")
    parser.add_argument("--max-requests", type=int, default=20_000)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds one request may take")
    parser.add_argument("--stop-file", type=Path, help="stop early once this file exists")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--cacert", type=Path, help="the CA an https:// URL's certificate is from")
    args = parser.parse_args()

    stream = Stream(args.url, args.timeout, args.cacert)
    started = time.monotonic()
    stream.run(
        args.rate, args.workers, args.max_requests, started + args.max_seconds, args.stop_file
    )
    figures = stream.summary(time.monotonic() - started)

    latency = figures["latency_ms"]
    print(
        f"{figures['requests']} requests in {figures['seconds']} s to {args.url}: "
        f"{figures['failed']} failed {figures['failures'] or ''}".rstrip()
    )
    print(f"latency ms: median {latency['median']}, p99 {latency['p99']}, worst {latency['worst']}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 1 if figures["failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
