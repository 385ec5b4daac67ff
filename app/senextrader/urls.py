from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="trading:status"), name="home"),
    path("", include("core.urls")),
    path("accounts/", include("accounts.urls")),
    path("trading/", include("trading.urls")),
    path("admin/", admin.site.urls),
]
