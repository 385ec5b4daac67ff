"""Under ASGI the middleware chain runs synchronously: a request to a view switches between the
event loop and a thread a few times, not for every middleware's hooks (without the chain's
last, sync-only middleware: 17 switches for /trading/heartbeats/)."""

import pytest
from asgiref.sync import SyncToAsync, async_to_sync
from django.test import AsyncClient

pytestmark = pytest.mark.django_db

# Django's ASGI handler switches for the request_started signal, the chain, the view
# middlewares' process_view (CSRF's), the view, and the response's close.
MOST_SWITCHES = 5


def test_a_database_view_switches_threads_a_few_times_not_per_middleware(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    switched = []
    original = SyncToAsync.__call__

    async def counting(self: SyncToAsync, *args: object, **kwargs: object) -> object:
        switched.append(getattr(self.func, "__qualname__", repr(self.func)))
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", counting)
    response = async_to_sync(AsyncClient().get)("/trading/heartbeats/")

    assert response.status_code == 200
    assert len(switched) <= MOST_SWITCHES, switched
