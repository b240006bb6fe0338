"""What can go wrong talking to Asterisk, as exceptions that carry the reply's code and text."""

from __future__ import annotations


class AGIError(Exception):
    """Base of every AGI error; ``code`` is the reply's three-digit code, or None when there was no reply."""

    def __init__(self, text: str, code: int | None = None) -> None:
        super().__init__(f"{code} {text}" if code is not None else text)
        self.code = code
        self.text = text


class AGIProtocolError(AGIError):
    """Asterisk sent something that is not AGI (or a line too long to be a reply)."""


class AGICommandError(AGIError):
    """Asterisk refused the command (any code but 200 and 511)."""


class AGIInvalidCommand(AGICommandError):
    """510: Asterisk does not know the command."""


class AGIUsageError(AGICommandError):
    """520: the command's syntax was wrong; ``usage`` holds the usage text Asterisk sent, if any."""

    def __init__(self, text: str, code: int | None = 520, usage: str = "") -> None:
        super().__init__(text, code)
        self.usage = usage


class AGIResultError(AGIError):
    """The command ran but reported failure (``200 result=-1``), on a channel that is still up."""

    def __init__(self, text: str, code: int | None = 200, reply: object = None) -> None:
        super().__init__(text, code)
        self.reply = reply


class AGIHangup(AGIError):
    """The channel is gone: the connection closed, or a command failed after Asterisk said ``HANGUP``."""


class AGIDeadChannel(AGIHangup):
    """511: the command is not permitted on a dead channel (or in an intercept routine)."""
