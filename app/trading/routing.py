from django.urls import path

from .consumers import StatusConsumer

websocket_urlpatterns = [
    path("ws/trading/status/", StatusConsumer.as_asgi()),
]
