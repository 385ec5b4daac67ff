from django import forms

from .models import BrokerAccount

SECRET_FIELDS = ("client_secret", "refresh_token")


class BrokerAccountForm(forms.ModelForm):
    """Secrets are write-only: never rendered back, kept as they are when left blank."""

    client_secret = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        help_text="Leave blank to keep the stored value.",
    )
    refresh_token = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        help_text="Leave blank to keep the stored value.",
    )

    class Meta:
        model = BrokerAccount
        fields = (
            "user",
            "label",
            "account_number",
            "client_id",
            "client_secret",
            "refresh_token",
            "is_active",
        )

    def clean(self) -> dict:
        cleaned = super().clean()
        for name in SECRET_FIELDS:
            if cleaned.get(name):
                continue
            if self.instance.pk:
                cleaned[name] = getattr(self.instance, name)
            else:
                self.add_error(name, "Required for a new account.")
        return cleaned
