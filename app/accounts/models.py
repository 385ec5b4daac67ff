from django.conf import settings
from django.db import models

from core.fields import EncryptedTextField


class BrokerAccount(models.Model):
    """A user's TastyTrade account; its OAuth credentials are stored encrypted."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="broker_accounts"
    )
    label = models.CharField(max_length=100)
    account_number = models.CharField(max_length=32)
    # The OAuth client id is public; the secret and refresh token are not.
    client_id = models.CharField(max_length=255)
    client_secret = EncryptedTextField()
    refresh_token = EncryptedTextField()
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("user", "label")
        constraints = (
            models.UniqueConstraint(
                fields=("user", "account_number"), name="unique_broker_account_per_user"
            ),
        )

    def __str__(self) -> str:
        return f"{self.label} ({self.account_number})"
