import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from trading.services import heartbeat_record

pytestmark = pytest.mark.django_db


def test_heartbeats_lists_each_periodic_task_anonymously(client: Client) -> None:
    beat = heartbeat_record()
    heartbeat_record(name="another")
    another = heartbeat_record(name="another")

    with CaptureQueriesContext(connection) as queries:
        response = client.get("/trading/heartbeats/")

    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"]
    assert response.json() == {
        "heartbeats": [
            {"name": "another", "last_run_at": another.last_run_at.isoformat(), "runs": 2},
            {"name": "beat", "last_run_at": beat.last_run_at.isoformat(), "runs": 1},
        ]
    }
    assert len(queries) == 1


def test_heartbeats_answers_an_empty_list_before_beat_ran(client: Client) -> None:
    assert client.get("/trading/heartbeats/").json() == {"heartbeats": []}


def test_heartbeats_refuses_writes(client: Client) -> None:
    assert client.post("/trading/heartbeats/").status_code == 405
