from django.db import models


class Heartbeat(models.Model):
    """The last run of a periodic task: proof that beat schedules and a worker runs."""

    name = models.CharField(max_length=100, unique=True)
    last_run_at = models.DateTimeField()
    runs = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name} at {self.last_run_at.isoformat()}"
