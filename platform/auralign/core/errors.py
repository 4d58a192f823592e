"""Errors raised by services. The API turns them into 4xx answers that name the field."""

from __future__ import annotations


class ServiceError(Exception):
    """A request that cannot be carried out; `field` names what was wrong (None = the whole request)."""

    status_code = 400

    def __init__(self, message: str, *, field: str | None = None, code: str = "invalid"):
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code

    def describe(self) -> str:
        """One line for a person: "field: message", or the message alone."""
        return f"{self.field}: {self.message}" if self.field else self.message

    def as_detail(self) -> dict:
        return {self.field or "non_field_errors": [self.message]}


class Conflict(ServiceError):
    """The request is valid but the object's state forbids it (illegal transition, frozen version)."""

    status_code = 409


class NotFound(ServiceError):
    status_code = 404


class Forbidden(ServiceError):
    """A member whose role does not allow this action."""

    status_code = 403
