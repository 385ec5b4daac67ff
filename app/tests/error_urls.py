"""A URLconf with a view that fails, quoting secrets in its message (test_error_reports.py)."""

from django.conf import settings
from django.urls import path


def fail(request):
    password = settings.DATABASES["default"]["PASSWORD"]
    raise RuntimeError(f"broken view, key {settings.SECRET_KEY}, password {password}")


urlpatterns = [path("broken/", fail)]
