from django.contrib import admin

from .forms import BrokerAccountForm
from .models import BrokerAccount


@admin.register(BrokerAccount)
class BrokerAccountAdmin(admin.ModelAdmin):
    form = BrokerAccountForm
    list_display = ("label", "account_number", "user", "is_active", "updated_at")
    list_filter = ("is_active",)
    search_fields = ("label", "account_number", "user__username")
    readonly_fields = ("created_at", "updated_at")
