"""WebSocket capacity: many logged-in connections open to the deployed web server at once, and
broadcasts through the channel layer reaching every one of them."""

import argparse
import json
import shlex

from stackbench.host import MEMORY_FUNCTION, WEB_PORT, BenchHost, unit_cgroup
from stackbench.web import WEB

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
# Runs on the host with the image's Python (its `websockets`), as root: opens the connections
# in batches, reads the web unit's memory with them all open, runs the broadcast command, and
# times each broadcast's arrival on every connection against the time it was sent. Bounded:
# opening, each wait and the whole run have deadlines.
CLIENT = (
    MEMORY_FUNCTION
    + r"""
import asyncio, json, statistics, sys, time
from websockets.asyncio.client import connect

url, origin, cookie, group = sys.argv[1:5]
count, broadcasts, batch = int(sys.argv[5]), int(sys.argv[6]), 100
trigger = sys.argv[7:]
opened = []

def memory():
    return cgroup_memory(group)[0]

async def client(latencies, release):
    try:
        async with connect(url, origin=origin, additional_headers={"Cookie": cookie},
                           open_timeout=60, ping_interval=None, max_queue=None) as ws:
            first = json.loads(await asyncio.wait_for(ws.recv(), 60))
            if first.get("type") != "connected":
                return f"first message: {first}"
            opened.append(True)
            seen = 0
            while seen < broadcasts:
                message = json.loads(await asyncio.wait_for(ws.recv(), broadcasts + 90))
                if message.get("type") == "bench":
                    latencies.append((time.time() - message["sent"]) * 1000)
                    seen += 1
            await asyncio.wait_for(release.wait(), 120)
            return None
    except Exception as error:
        return f"{type(error).__name__}: {error}"

async def main():
    before = memory()
    latencies, release, tasks = [], asyncio.Event(), []
    start = time.monotonic()
    for first in range(0, count, batch):
        tasks += [asyncio.create_task(client(latencies, release))
                  for _ in range(min(batch, count - first))]
        deadline = time.monotonic() + 60
        while (len(opened) + sum(task.done() for task in tasks) < len(tasks)
               and time.monotonic() < deadline):
            await asyncio.sleep(0.05)
    open_seconds = time.monotonic() - start
    await asyncio.sleep(2)
    with_open = memory()
    sender = await asyncio.create_subprocess_exec(*trigger)
    await asyncio.wait_for(sender.wait(), broadcasts + 120)
    deadline = time.monotonic() + 30
    while len(latencies) < len(opened) * broadcasts and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    release.set()
    errors = [error for error in await asyncio.gather(*tasks) if error]
    ordered = sorted(latencies)
    print("BROADCAST " + json.dumps({
        "connections": count, "opened": len(opened), "open_seconds": open_seconds,
        "errors": len(errors), "first_errors": sorted(set(errors))[:5],
        "memory_before": before, "memory_open": with_open,
        "memory_source": cgroup_memory(group)[1],
        "broadcasts": broadcasts, "expected": len(opened) * broadcasts,
        "delivered": len(latencies),
        "p50_ms": statistics.median(ordered) if ordered else None,
        "p99_ms": statistics.quantiles(ordered, n=100)[98] if len(ordered) > 1 else None,
        "max_ms": ordered[-1] if ordered else None,
        "sender_exit": sender.returncode,
    }))

asyncio.run(main())
"""
)


def session_cookie(host: BenchHost) -> str:
    out = host.user(f"podman exec {WEB} python manage.py shell --command {shlex.quote(SESSION)}")
    for line in out.splitlines():
        if line.startswith("SESSION "):
            return line.removeprefix("SESSION ")
    raise RuntimeError(f"no session for the WebSocket clients:\n{out[-2000:]}")


def measure_broadcast(host: BenchHost, args: argparse.Namespace) -> dict:
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
