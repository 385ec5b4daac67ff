"""System checks: configuration mistakes reported by `manage.py check` (and migrate)."""

from django.conf import settings
from django.core.checks import Error, Warning, register
from django.core.exceptions import ImproperlyConfigured

from .fields import fernet


@register()
def field_encryption_key_check(app_configs: object, **kwargs: object) -> list[Error]:
    try:
        fernet()
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="core.E001")]
    return []


@register(deploy=True)
def deploy_environment_check(app_configs: object, **kwargs: object) -> list[Warning]:
    warnings = []
    if not settings.ALLOWED_HOSTS:
        warnings.append(
            Warning(
                "ALLOWED_HOSTS is empty: every request but /health/ is refused.",
                hint="Set ALLOWED_HOSTS to the site's host names, comma-separated.",
                id="core.W001",
            )
        )
    if not settings.DATABASES["default"]["PASSWORD"]:
        warnings.append(
            Warning(
                "DB_PASSWORD is empty.",
                hint="Set DB_PASSWORD (or DB_PASSWORD_FILE) to the database user's password.",
                id="core.W002",
            )
        )
    return warnings
