from django.urls import path

from . import views

app_name = "trading"
urlpatterns = [
    path("", views.status, name="status"),
    path("heartbeats/", views.heartbeats, name="heartbeats"),
]
