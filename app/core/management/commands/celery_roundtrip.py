"""Prove workers serve the queues: send a ping to each and wait for the answer, which names
the worker that took it."""

import time

from celery.exceptions import TimeoutError as CeleryTimeoutError
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.tasks import ping

QUEUES = tuple(queue.name for queue in settings.CELERY_TASK_QUEUES)


class Command(BaseCommand):
    help = "Send a ping task to each Celery queue and wait for a worker's answer."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--timeout", type=float, default=30.0, help="Seconds to wait for all answers."
        )
        parser.add_argument(
            "--hold",
            type=float,
            default=0.0,
            help="Seconds each ping task runs before it answers (a long task on demand).",
        )
        parser.add_argument(
            "--queue",
            action="append",
            choices=QUEUES,
            dest="queues",
            help="A queue to ping (repeat for more); default every queue the app declares.",
        )

    def handle(
        self,
        *args: object,
        timeout: float,
        hold: float,
        queues: list[str] | None,
        **options: object,
    ) -> None:
        queues = queues or list(QUEUES)
        if hold >= timeout:
            raise CommandError(f"--hold ({hold:g} s) must be shorter than --timeout ({timeout:g}).")
        # An unanswered ping expires, so a late worker does not run stale ones.
        results = {
            queue: ping.apply_async(kwargs={"hold": hold}, queue=queue, expires=timeout)
            for queue in queues
        }
        deadline = time.monotonic() + timeout
        silent = []
        for queue, result in results.items():
            try:
                answer = result.get(timeout=max(deadline - time.monotonic(), 0.1))
            except CeleryTimeoutError:
                silent.append(queue)
                continue
            finally:
                result.forget()
            self.stdout.write(f"Queue {queue}: {answer}")
        if silent:
            raise CommandError(
                f"No worker answered within {timeout:g} s on queue(s): {', '.join(silent)}."
            )
        self.stdout.write(self.style.SUCCESS(f"All queues answered: {', '.join(queues)}."))
