"""API plumbing shared by every app: error translation and small view helpers."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular import openapi
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from auralign.core.errors import ServiceError


def exception_handler(exc, context):
    """DRF's handler, plus: ServiceError -> its status with {field: [message]};
    Django ValidationError -> 400 with its message dict (never a 500 for bad input)."""
    if isinstance(exc, ServiceError):
        return Response(exc.as_detail(), status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return Response(detail, status=status.HTTP_400_BAD_REQUEST)
    return drf_exception_handler(exc, context)


class AutoSchema(openapi.AutoSchema):
    """Name nested `InputSerializer` / `OutputSerializer` classes after their view
    (HackSoft style nests them, so plain class names would collide in the OpenAPI components)."""

    def get_serializer_name(self, serializer, direction):
        name = super().get_serializer_name(serializer, direction)
        qualname = type(serializer).__qualname__.split(".")
        if len(qualname) >= 2:
            view, inner = qualname[-2], qualname[-1]
            name = view.removesuffix("Api") + inner.removesuffix("Serializer")
            if direction == "request" and self.method == "PATCH":
                name = "Patched" + name
        return name
