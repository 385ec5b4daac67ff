"""Re-encrypt stored credentials with the first key of FIELD_ENCRYPTION_KEY: the step after a
new key was put first, before the older keys can be dropped."""

from django.core.management.base import BaseCommand, CommandParser

from accounts.models import BrokerAccount
from accounts.selectors import broker_accounts_under_older_key_count
from accounts.services import broker_accounts_reencrypt


class Command(BaseCommand):
    help = "Re-encrypt broker credentials that an older FIELD_ENCRYPTION_KEY key encrypted."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--check",
            action="store_true",
            help="Only count the accounts an older key encrypted; change nothing.",
        )

    def handle(self, *args: object, check: bool, **options: object) -> None:
        stale = broker_accounts_under_older_key_count()
        total = BrokerAccount.objects.count()
        if stale and not check:
            broker_accounts_reencrypt()
            stale_after = broker_accounts_under_older_key_count()
            self.stdout.write(
                f"Re-encrypted {stale} of {total} broker accounts with the current key;"
                f" {stale_after} still under an older key."
            )
        else:
            self.stdout.write(
                f"{stale} of {total} broker accounts are under an older key"
                f"{'; nothing changed (--check)' if check else ''}."
            )
