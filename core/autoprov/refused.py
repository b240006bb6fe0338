"""A change refused with a reason a person can act on: one line, and the field it concerns if any."""

from __future__ import annotations


class Refused(ValueError):
    """Raised by any front end's shared checks; the CLI prints the message, the admin UI shows it by the field."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
