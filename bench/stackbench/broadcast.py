"""WebSocket capacity: many logged-in connections open to the deployed web server at once, and
broadcasts through the channel layer reaching every one of them."""

import argparse
import json
import shlex

from stackbench.host import MEMORY_FUNCTION, WEB_PORT, BenchHost, unit_cgroup
from stackbench.web import WEB, wait_http

# Runs in the web container (`manage.py shell --command`): a session for a bench user, whose
# cookie the clients send.
SESSION = """
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
user, _ = get_user_model().objects.get_or_create(username="senex-bench-websockets")
client = Client()
client.force_login(user)
name = settings.SESSION_COOKIE_NAME
print("SESSION " + name + "=" + client.cookies[name].value)
"""
# Runs there too, once every client is open: broadcasts to the consumers' group, each with the
# time it was sent, one a second.
BROADCAST = """
import time
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from trading.services import STATUS_GROUP
send = async_to_sync(get_channel_layer().group_send)
for number in range({count}):
    payload = {{"type": "bench", "number": number, "sent": time.time()}}
    send(STATUS_GROUP, {{"type": "status.heartbeat", "payload": payload}})
    time.sleep(1)
"""
# Runs on the host with the image's Python (its `websockets`), as root. One thread, one
# selector, the websockets library's Sans-I/O protocol: the client costs little per message,
# and each message's arrival is the kernel's receive time of its segment (SO_TIMESTAMPNS),
# which the client's own processing cannot delay. The time the client got round to the message
# is kept beside it, to show what a busier client would have measured. Opens the connections
# in batches, reads the web unit's memory with them all open, runs the broadcast command, and
# times each broadcast on every connection against the time it was sent. Bounded: opening,
# each wait and the whole run have deadlines.
CLIENT = (
    MEMORY_FUNCTION
    + r"""
import json, os, selectors, socket, statistics, struct, subprocess, sys, time
from websockets.client import ClientProtocol
from websockets.frames import Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

url, origin, cookie, group = sys.argv[1:5]
count, broadcasts, batch = int(sys.argv[5]), int(sys.argv[6]), 100
trigger = sys.argv[7:]
# Linux's SO_TIMESTAMPNS (and SCM_TIMESTAMPNS); the socket module does not name it.
SO_TIMESTAMPNS = 35
TIMESPEC = struct.Struct("@qq")
uri = parse_uri(url)
selector = selectors.DefaultSelector()
kernel, seen, errors, others = [], [], [], []
per_broadcast = {}

def memory():
    return cgroup_memory(group)[0]

def process_ticks():
    # CPU clock ticks of each process in the web unit's cgroup: the workers that are there
    # before the broadcasts, not the sender that `podman exec` adds during them.
    ticks = {}
    for directory, _, files in os.walk(group):
        if "cgroup.procs" in files:
            for pid in open(os.path.join(directory, "cgroup.procs")).read().split():
                try:
                    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                ticks[pid] = int(fields[11]) + int(fields[12])
    return ticks

class Connection:
    def __init__(self):
        self.protocol = ClientProtocol(uri, origin=origin, max_size=None)
        request = self.protocol.connect()
        request.headers["Cookie"] = cookie
        self.sock = socket.create_connection((uri.host, uri.port), timeout=10)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.setblocking(False)
        self.protocol.send_request(request)
        self.flush()
        self.opened = self.failed = False
        selector.register(self.sock, selectors.EVENT_READ, self)

    def flush(self):
        out = b"".join(self.protocol.data_to_send())
        if out:
            self.sock.setblocking(True)
            self.sock.sendall(out)
            self.sock.setblocking(False)

    def fail(self, reason):
        if not self.failed:
            self.failed = True
            errors.append(reason)
            selector.unregister(self.sock)
            self.sock.close()

    def readable(self):
        try:
            data, ancillary, _, _ = self.sock.recvmsg(65536, socket.CMSG_SPACE(TIMESPEC.size))
        except BlockingIOError:
            return
        except OSError as error:
            return self.fail(f"{type(error).__name__}: {error}")
        arrived = None
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                seconds, nanoseconds = TIMESPEC.unpack(value[: TIMESPEC.size])
                arrived = seconds + nanoseconds / 1e9
        if not data:
            return self.fail("closed by the server")
        self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            if isinstance(event, Response):
                if self.protocol.handshake_exc is not None:
                    return self.fail(f"handshake: {self.protocol.handshake_exc}")
            elif event.opcode == Opcode.TEXT:
                message = json.loads(event.data)
                if not self.opened:
                    if message.get("type") != "connected":
                        return self.fail(f"first message: {message}")
                    self.opened = True
                elif message.get("type") != "bench":
                    others.append(message.get("type"))
                elif message.get("type") == "bench":
                    now = time.time()
                    stamp = arrived or now
                    kernel.append((stamp - message["sent"]) * 1000)
                    seen.append((now - message["sent"]) * 1000)
                    first, last = per_broadcast.get(message["number"], (stamp, stamp))
                    per_broadcast[message["number"]] = (min(first, stamp), max(last, stamp))
        # Pongs to the server's pings, and the close handshake.
        self.flush()

def pump(until, deadline):
    while not until() and time.monotonic() < deadline:
        for key, _ in selector.select(0.05):
            key.data.readable()

def quantile(values, q):
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else None

before = memory()
connections = []
start = time.monotonic()
for first in range(0, count, batch):
    for _ in range(min(batch, count - first)):
        try:
            connections.append(Connection())
        except OSError as error:
            errors.append(f"{type(error).__name__}: {error}")
    pump(lambda: all(c.opened or c.failed for c in connections), time.monotonic() + 60)
open_seconds = time.monotonic() - start
opened = sum(c.opened and not c.failed for c in connections)
pump(lambda: False, time.monotonic() + 2)
with_open = memory()
ticks_before = process_ticks()
others.clear()
sender = subprocess.Popen(trigger)
pump(lambda: sender.poll() is not None, time.monotonic() + broadcasts + 120)
pump(lambda: len(kernel) >= opened * broadcasts, time.monotonic() + 30)
sender.kill() if sender.poll() is None else None
ticks_after = process_ticks()
cpu_seconds = sum(ticks_after[pid] - ticks for pid, ticks in ticks_before.items()
                  if pid in ticks_after) / os.sysconf("SC_CLK_TCK")
# Other broadcasts in the same time (the beat's heartbeats) cost the server as much.
every_broadcast = broadcasts + round(len(others) / max(opened, 1))
for c in connections:
    if not c.failed:
        c.protocol.send_close()
        try:
            c.flush()
        except OSError:
            pass
        c.sock.close()
ordered, ordered_seen = sorted(kernel), sorted(seen)
spreads = sorted((last - first) * 1000 for first, last in per_broadcast.values())
print("BROADCAST " + json.dumps({
    "connections": count, "opened": opened, "open_seconds": open_seconds,
    "errors": len(errors), "first_errors": sorted(set(errors))[:5],
    "memory_before": before, "memory_open": with_open,
    "memory_source": cgroup_memory(group)[1],
    "broadcasts": broadcasts, "expected": opened * broadcasts,
    "delivered": len(ordered),
    "p50_ms": statistics.median(ordered) if ordered else None,
    "p99_ms": quantile(ordered, 99),
    "max_ms": ordered[-1] if ordered else None,
    "seen_p50_ms": statistics.median(ordered_seen) if ordered_seen else None,
    "seen_p99_ms": quantile(ordered_seen, 99),
    "spread_median_ms": statistics.median(spreads) if spreads else None,
    "cpu_seconds": cpu_seconds, "other_broadcasts": every_broadcast - broadcasts,
    "cpu_ms_per_broadcast": cpu_seconds * 1000 / every_broadcast,
    "sender_exit": sender.returncode,
}))
"""
)


def session_cookie(host: BenchHost) -> str:
    out = host.user(f"podman exec {WEB} python manage.py shell --command {shlex.quote(SESSION)}")
    for line in out.splitlines():
        if line.startswith("SESSION "):
            return line.removeprefix("SESSION ")
    raise RuntimeError(f"no session for the WebSocket clients:\n{out[-2000:]}")


def measure_broadcast(host: BenchHost, args: argparse.Namespace) -> dict:
    # Fresh workers: a worker keeps the heap that an earlier run's connections grew, which on a
    # reused host hid most of the memory per connection (11 KB against 111 KB).
    host.user(f"systemctl --user restart {WEB}.service")
    wait_http(host, "127.0.0.1")
    cookie = session_cookie(host)
    group = unit_cgroup(host, f"{WEB}.service")
    shell = f'cd && podman exec {WEB} python manage.py shell --command "$0"'
    trigger = (
        f"{host.as_user} sh -c {shlex.quote(shell)}"
        f" {shlex.quote(BROADCAST.format(count=args.ws_broadcasts))}"
    )
    argv = [
        f"ws://127.0.0.1:{WEB_PORT}/ws/trading/status/",
        f"http://127.0.0.1:{WEB_PORT}",
        cookie,
        group,
        str(args.ws_connections),
        str(args.ws_broadcasts),
        "sh",
        "-c",
        trigger,
    ]
    out = host.root(
        f'ulimit -n "$(ulimit -Hn)" && timeout 900 /opt/venv/bin/python - {shlex.join(argv)}',
        stdin=CLIENT.encode(),
    )
    for line in out.splitlines():
        if line.startswith("BROADCAST "):
            result = json.loads(line.removeprefix("BROADCAST "))
            break
    else:
        raise RuntimeError(f"the WebSocket client printed no result:\n{out[-2000:]}")
    opened = result["opened"] or 1
    result["memory_per_connection_kb"] = (
        (result["memory_open"] - result["memory_before"]) / opened / 1024
    )
    print(
        f"  WebSockets: {result['opened']}/{result['connections']} open,"
        f" {result['delivered']}/{result['expected']} delivered, p99 {result['p99_ms']} ms",
        flush=True,
    )
    return result
