"""Picks the settings module from ENVIRONMENT, before Django's settings exist."""

import os

ENVIRONMENTS = ("development", "production", "test")


def settings_module() -> str:
    """Return `senextrader.settings.<ENVIRONMENT>`; ENVIRONMENT defaults to development."""
    name = os.environ.get("ENVIRONMENT", "development")
    if name not in ENVIRONMENTS:
        raise SystemExit(
            f"ENVIRONMENT={name!r} is not one of {', '.join(ENVIRONMENTS)}: "
            "set ENVIRONMENT to one of them, or set DJANGO_SETTINGS_MODULE."
        )
    return f"senextrader.settings.{name}"
