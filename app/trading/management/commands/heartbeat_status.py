"""Prove beat is alive: the periodic heartbeat ran recently."""

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from trading.selectors import heartbeat_get


class Command(BaseCommand):
    help = "Print the last heartbeat; exit non-zero when it is missing or older than --max-age."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--max-age",
            type=float,
            required=True,
            help="Seconds; a heartbeat older than this fails (give beat's interval plus slack).",
        )

    def handle(self, *args: object, max_age: float, **options: object) -> None:
        heartbeat = heartbeat_get()
        if heartbeat is None:
            raise CommandError(
                "No heartbeat recorded yet: is celery beat running, and a worker on the "
                "`trading` queue?"
            )
        age = (timezone.now() - heartbeat.last_run_at).total_seconds()
        self.stdout.write(
            f"Last heartbeat: {heartbeat.last_run_at.isoformat()} ({age:.0f} s ago, "
            f"run {heartbeat.runs})"
        )
        if age > max_age:
            raise CommandError(f"The last heartbeat is {age:.0f} s old, more than {max_age:g} s.")
