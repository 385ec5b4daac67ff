import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.services import broker_account_create
from trading.services import heartbeat_record

pytestmark = pytest.mark.django_db


def _logged_in_admin_with_account(client: Client, client_secret: str, refresh_token: str):
    """A superuser logged in to the admin, owning one broker account with these secrets."""
    admin = get_user_model().objects.create_superuser("admin", "admin@example.com", "pw-admin")
    account = broker_account_create(
        user=admin,
        label="Main",
        account_number="5WT00001",
        client_id="client-id",
        client_secret=client_secret,
        refresh_token=refresh_token,
    )
    client.force_login(admin)
    return admin, account


def test_admin_redirects_anonymous_users_to_login(client: Client) -> None:
    response = client.get("/admin/")

    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/admin/"


def test_admin_never_shows_stored_secrets(client: Client) -> None:
    _, account = _logged_in_admin_with_account(client, "secret-in-admin", "token-in-admin")

    page = client.get(f"/admin/accounts/brokeraccount/{account.pk}/change/")

    assert page.status_code == 200
    assert b"5WT00001" in page.content
    assert b"secret-in-admin" not in page.content
    assert b"token-in-admin" not in page.content


def test_admin_keeps_secrets_left_blank_and_replaces_given_ones(client: Client) -> None:
    admin, account = _logged_in_admin_with_account(client, "old-secret", "old-token")

    response = client.post(
        f"/admin/accounts/brokeraccount/{account.pk}/change/",
        {
            "user": admin.pk,
            "label": "Renamed",
            "account_number": "5WT00001",
            "client_id": "client-id",
            "client_secret": "",
            "refresh_token": "new-token",
            "is_active": "on",
        },
    )

    assert response.status_code == 302
    account.refresh_from_db()
    assert account.label == "Renamed"
    assert account.client_secret == "old-secret"
    assert account.refresh_token == "new-token"


def test_login_page_logs_in_and_leads_to_the_status_page(client: Client) -> None:
    get_user_model().objects.create_user("trader", password="pw-trader")

    assert client.get("/trading/").status_code == 302
    response = client.post(
        "/accounts/login/", {"username": "trader", "password": "pw-trader"}, follow=True
    )

    assert response.redirect_chain[-1][0] == "/trading/"
    assert b"Live status" in response.content


def test_admin_shows_the_last_heartbeat_read_only(client: Client) -> None:
    admin = get_user_model().objects.create_superuser("admin", "admin@example.com", "pw-admin")
    heartbeat = heartbeat_record()
    client.force_login(admin)

    listing = client.get("/admin/trading/heartbeat/")
    change = client.post(f"/admin/trading/heartbeat/{heartbeat.pk}/change/", {"runs": "99"})

    assert listing.status_code == 200
    assert b"beat" in listing.content
    assert change.status_code == 403
    heartbeat.refresh_from_db()
    assert heartbeat.runs == 1
