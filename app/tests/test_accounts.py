import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from accounts.models import BrokerAccount
from accounts.services import broker_account_create, broker_accounts_reencrypt
from core.fields import DecryptionError

pytestmark = pytest.mark.django_db

SECRET = "tastytrade-client-secret-123"
TOKEN = "tastytrade-refresh-token-456"


def _stored(account: BrokerAccount) -> tuple[str, str]:
    """The columns as PostgreSQL holds them, bypassing the model fields."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT client_secret, refresh_token FROM accounts_brokeraccount WHERE id = %s",
            [account.pk],
        )
        return cursor.fetchone()


@pytest.fixture
def account() -> BrokerAccount:
    user = get_user_model().objects.create_user("trader", password="pw")
    return broker_account_create(
        user=user,
        label="Main",
        account_number="5WT00001",
        client_id="client-id",
        client_secret=SECRET,
        refresh_token=TOKEN,
    )


def test_credentials_are_ciphertext_in_the_database(account: BrokerAccount) -> None:
    stored_secret, stored_token = _stored(account)

    assert SECRET not in stored_secret
    assert TOKEN not in stored_token
    key = Fernet(settings.FIELD_ENCRYPTION_KEY[0])
    assert key.decrypt(stored_secret.encode()).decode() == SECRET
    assert key.decrypt(stored_token.encode()).decode() == TOKEN


def test_credentials_round_trip(account: BrokerAccount) -> None:
    loaded = BrokerAccount.objects.get(pk=account.pk)

    assert loaded.client_secret == SECRET
    assert loaded.refresh_token == TOKEN


def test_a_rotated_key_still_reads_and_reencrypt_moves_to_it(account: BrokerAccount) -> None:
    old_key = settings.FIELD_ENCRYPTION_KEY[0]
    new_key = Fernet.generate_key().decode()

    with override_settings(FIELD_ENCRYPTION_KEY=[new_key, old_key]):
        assert BrokerAccount.objects.get(pk=account.pk).client_secret == SECRET
        assert broker_accounts_reencrypt() == 1

    stored_secret, stored_token = _stored(account)
    assert Fernet(new_key).decrypt(stored_secret.encode()).decode() == SECRET
    assert Fernet(new_key).decrypt(stored_token.encode()).decode() == TOKEN
    with override_settings(FIELD_ENCRYPTION_KEY=[new_key]):
        assert BrokerAccount.objects.get(pk=account.pk).refresh_token == TOKEN


def test_a_missing_key_fails_loudly_instead_of_returning_ciphertext(
    account: BrokerAccount,
) -> None:
    with (
        override_settings(FIELD_ENCRYPTION_KEY=[Fernet.generate_key().decode()]),
        pytest.raises(DecryptionError, match=r"BrokerAccount\.client_secret.*FIELD_ENCRYPTION_KEY"),
    ):
        BrokerAccount.objects.get(pk=account.pk)


def test_reencrypt_fields_moves_old_rows_to_the_first_key_and_then_changes_nothing(
    account: BrokerAccount, capsys: pytest.CaptureFixture[str]
) -> None:
    old_key = settings.FIELD_ENCRYPTION_KEY[0]
    new_key = Fernet.generate_key().decode()

    with override_settings(FIELD_ENCRYPTION_KEY=[new_key, old_key]):
        call_command("reencrypt_fields", "--check")
        checked = capsys.readouterr().out
        after_check = _stored(account)[0]
        call_command("reencrypt_fields")
        moved = capsys.readouterr().out
        call_command("reencrypt_fields")
        again = capsys.readouterr().out

    assert (
        checked.strip()
        == "1 of 1 broker accounts are under an older key; nothing changed (--check)."
    )
    assert Fernet(old_key).decrypt(after_check.encode()).decode() == SECRET
    assert Fernet(new_key).decrypt(_stored(account)[0].encode()).decode() == SECRET
    assert moved.strip() == (
        "Re-encrypted 1 of 1 broker accounts with the current key; 0 still under an older key."
    )
    assert again.strip() == "0 of 1 broker accounts are under an older key."
