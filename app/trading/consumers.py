from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from core.metrics import websocket_connections, websocket_connections_opened

from .selectors import heartbeat_get
from .services import STATUS_GROUP


@database_sync_to_async
def _last_heartbeat_at() -> str | None:
    heartbeat = heartbeat_get()
    return heartbeat.last_run_at.isoformat() if heartbeat else None


class StatusConsumer(AsyncJsonWebsocketConsumer):
    """Streams heartbeats to logged-in users; anyone else is refused at the handshake."""

    # Set once the handshake is accepted: a refused one is not counted, so its disconnect
    # must not count down.
    counted = False

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            # Closing before accepting rejects the handshake (HTTP 403).
            await self.close()
            return
        await self.channel_layer.group_add(STATUS_GROUP, self.channel_name)
        await self.accept()
        self.counted = True
        websocket_connections.inc()
        websocket_connections_opened.inc()
        # Sent once subscribed: from here on, every heartbeat reaches this client.
        await self.send_json({"type": "connected", "last_heartbeat_at": await _last_heartbeat_at()})

    async def disconnect(self, code: int) -> None:
        if self.counted:
            websocket_connections.dec()
        await self.channel_layer.group_discard(STATUS_GROUP, self.channel_name)

    async def status_heartbeat(self, event: dict) -> None:
        await self.send_json(event["payload"])
