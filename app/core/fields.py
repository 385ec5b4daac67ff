"""Model fields whose values are stored encrypted with Fernet under FIELD_ENCRYPTION_KEY.

FIELD_ENCRYPTION_KEY is a list of Fernet keys: the first encrypts, every one decrypts, so a
key is rotated by putting the new one first and re-saving the rows
(`accounts.services.broker_accounts_reencrypt`). Encryption is randomised, so these fields
cannot be filtered on or made unique.
"""

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

KEY_HINT = (
    'generate one with: python -c "from cryptography.fernet import Fernet; '
    'print(Fernet.generate_key().decode())"'
)


class DecryptionError(Exception):
    """A stored value was encrypted with a key that FIELD_ENCRYPTION_KEY no longer holds."""


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured(f"FIELD_ENCRYPTION_KEY is empty; {KEY_HINT}")
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"FIELD_ENCRYPTION_KEY holds a value that is not a Fernet key; {KEY_HINT}"
        ) from exc


def fernet() -> MultiFernet:
    """The MultiFernet built from the current FIELD_ENCRYPTION_KEY."""
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEY))


class EncryptedTextField(models.TextField):
    """Text encrypted at rest; in Python it is always the plain value."""

    def get_prep_value(self, value: object) -> object:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return fernet().encrypt(str(value).encode()).decode()

    def from_db_value(self, value: str | None, expression: object, connection: object) -> str:
        if value is None or value == "":
            return value
        try:
            return fernet().decrypt(value.encode()).decode()
        except InvalidToken as exc:
            raise DecryptionError(
                f"Cannot decrypt {self.model.__name__}.{self.name}: no key in "
                "FIELD_ENCRYPTION_KEY fits; add the key it was written with (after the "
                "current one)."
            ) from exc
