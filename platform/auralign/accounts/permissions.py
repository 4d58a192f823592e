"""API permission classes. Campaign-level checks live in auralign.campaigns.permissions."""

from rest_framework import permissions

from auralign.accounts.models import ApiToken


class TokenWriteAllowed(permissions.BasePermission):
    """A read-only token may only read."""

    message = "this API token is read-only"

    def has_permission(self, request, view):
        token = request.auth
        if isinstance(token, ApiToken) and token.read_only:
            return request.method in permissions.SAFE_METHODS
        return True


class IsLead(permissions.BasePermission):
    """May create and edit the shared building blocks: rubrics, policies, dialogue sets, campaigns."""

    message = "only project leads may do this"

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated and request.user.can_lead)


def lead_permissions() -> list:
    """The default permissions plus IsLead (a view that sets permission_classes replaces the defaults)."""
    from rest_framework.settings import api_settings

    return [*api_settings.DEFAULT_PERMISSION_CLASSES, IsLead]
