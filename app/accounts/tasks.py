from celery import shared_task

from . import services


@shared_task
def broker_accounts_reencrypt() -> int:
    """Runs on the `accounts` queue (see CELERY_TASK_ROUTES)."""
    return services.broker_accounts_reencrypt()
