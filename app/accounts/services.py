from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from .models import BrokerAccount


def broker_account_create(
    *,
    user: AbstractBaseUser,
    label: str,
    account_number: str,
    client_id: str,
    client_secret: str,
    refresh_token: str,
) -> BrokerAccount:
    account = BrokerAccount(
        user=user,
        label=label,
        account_number=account_number,
        client_id=client_id,
        client_secret=client_secret,
        refresh_token=refresh_token,
    )
    account.full_clean()
    account.save()
    return account


def broker_accounts_reencrypt() -> int:
    """Re-save every account so its secrets are encrypted with the first key in
    FIELD_ENCRYPTION_KEY (the step after putting a new key first). Returns the count."""
    count = 0
    with transaction.atomic():
        for account in BrokerAccount.objects.select_for_update().iterator():
            account.save(update_fields=["client_secret", "refresh_token"])
            count += 1
    return count
