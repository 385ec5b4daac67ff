"""Dependency probes for /health/: each does what a user's request does to its dependency.

A PING passes on a Redis that refuses every write (out of memory under noeviction), so the
Redis probe writes a key and reads it back, and the channel layer probe sends a message to a
fresh channel and receives it, as a WebSocket consumer would.
"""

import asyncio
import logging
import secrets
from collections.abc import Callable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection
from django_redis import get_redis_connection

logger = logging.getLogger(__name__)

# The channel layer round trip is bounded; the cache's socket timeouts bound the Redis probe.
CHANNEL_LAYER_TIMEOUT_SECONDS = 3.0
# How long the probe waits for its message before it sends it again.
CHANNEL_LAYER_RESEND_SECONDS = 0.25
# Long enough to read the key back, short enough that a crashed probe leaves nothing behind.
REDIS_KEY_TTL_SECONDS = 30


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _redis() -> None:
    client = get_redis_connection("default")
    token = secrets.token_hex(8)
    # A key per probe: concurrent probes, from this process or another, never share one.
    key = f"senex:health:{token}"
    client.set(key, token, ex=REDIS_KEY_TTL_SECONDS)
    if client.get(key) != token.encode():
        raise RuntimeError("Redis did not return the value just written")
    client.delete(key)


async def _channel_layer_round_trip() -> None:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    token = secrets.token_hex(8)
    # Pub/sub keeps nothing: a message Redis gets before the subscription (sent on another
    # connection, which may be the first to finish its handshake, as across hosts over TLS) is
    # lost. So it is sent again until one arrives; the caller bounds the whole round trip.
    receiving = asyncio.ensure_future(layer.receive(channel))
    try:
        while not receiving.done():
            await layer.send(channel, {"type": "health.check", "token": token})
            await asyncio.wait({receiving}, timeout=CHANNEL_LAYER_RESEND_SECONDS)
        message = receiving.result()
    finally:
        receiving.cancel()
    if message.get("token") != token:
        raise RuntimeError("the channel layer returned another message than the one sent")


def _channel_layer() -> None:
    async def bounded() -> None:
        await asyncio.wait_for(_channel_layer_round_trip(), CHANNEL_LAYER_TIMEOUT_SECONDS)

    async_to_sync(bounded)()


PROBES: dict[str, Callable[[], None]] = {
    "database": _database,
    "redis": _redis,
    "channel_layer": _channel_layer,
}


def health_check() -> dict[str, bool]:
    """Run every probe; the details of a failure go to the log, never to the caller."""
    results = {}
    for name, probe in PROBES.items():
        try:
            probe()
        except Exception:
            logger.exception("Health check %s failed", name)
            results[name] = False
        else:
            results[name] = True
    if not results["database"]:
        # Drop the broken connection so the next probe opens a fresh one.
        connection.close()
    return results
