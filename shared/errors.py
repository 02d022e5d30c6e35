"""The errors a use case raises when a request cannot be done, one set for every service.
Each carries its HTTP status; one exception handler (shared/http.py ``install_edges``) turns
any of them into a problem answer, so routes do not map errors one by one."""

from __future__ import annotations


class DomainError(Exception):
    """A request that cannot be done; the message says why, for the caller, and ``errors``
    (field, reason) which part of the request it is about, when one is."""

    status = 400
    errors: tuple[dict[str, str], ...] = ()

    def __init__(self, message: str = "", errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        if errors is not None:
            self.errors = tuple(errors)


class NotFound(DomainError, LookupError):
    status = 404


class Conflict(DomainError, ValueError):
    """The request does not fit the current state of what it acts on."""

    status = 409


class Unprocessable(DomainError, ValueError):
    """Well formed, but never acceptable as it is (not a question of state)."""

    status = 422
