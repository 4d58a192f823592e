from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A person. Roles in a campaign come from campaigns.Membership; `is_lead` lets a user create
    the shared building blocks (rubrics, policies, dialogue sets) and new campaigns."""

    is_lead = models.BooleanField(
        default=False, help_text="May create rubrics, policies, dialogue sets and campaigns."
    )

    @property
    def can_lead(self) -> bool:
        return self.is_active and (self.is_lead or self.is_superuser)


class ApiToken(models.Model):
    """A script credential. Only a sha256 digest of the secret is stored; the secret is shown once.
    `campaigns` (when not empty) narrows the token to those campaigns; `read_only` forbids writes."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, unique=True)
    digest = models.CharField(max_length=64)
    read_only = models.BooleanField(default=False)
    campaigns = models.ManyToManyField("campaigns.Campaign", blank=True, related_name="api_tokens")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
