from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db.models import TextField
from django.db.models.functions import Cast

from .models import BrokerAccount

ENCRYPTED_FIELDS = ("client_secret", "refresh_token")


def broker_accounts_under_older_key_count() -> int:
    """How many accounts hold a credential that the first key of FIELD_ENCRYPTION_KEY did not
    encrypt (written before a key rotation and not re-encrypted since)."""
    current = Fernet(settings.FIELD_ENCRYPTION_KEY[0])
    # Cast to a plain text field: the stored ciphertext, not the decrypted value.
    stored = BrokerAccount.objects.values_list(
        *(Cast(name, output_field=TextField()) for name in ENCRYPTED_FIELDS)
    )
    count = 0
    for values in stored.iterator():
        try:
            for value in values:
                if value:
                    current.decrypt(value.encode())
        except InvalidToken:
            count += 1
    return count
