"""The Asterisk Gateway Interface: a session over any streams, a FastAGI server, and call scripts.

A call script is ``script(session: AGISession, ctx: ScriptContext) -> None``, registered by name through
the ``autoprov_agi_scripts`` hook.
"""

from autoprov.agi.context import DatabaseUnavailable, ScriptContext
from autoprov.agi.errors import (
    AGICommandError,
    AGIDeadChannel,
    AGIError,
    AGIHangup,
    AGIInvalidCommand,
    AGIProtocolError,
    AGIResultError,
    AGIUsageError,
)
from autoprov.agi.replies import Reply, parse_result
from autoprov.agi.session import AGISession, StreamResult

__all__ = [
    "AGICommandError",
    "AGIDeadChannel",
    "AGIError",
    "AGIHangup",
    "AGIInvalidCommand",
    "AGIProtocolError",
    "AGIResultError",
    "AGISession",
    "AGIUsageError",
    "DatabaseUnavailable",
    "Reply",
    "ScriptContext",
    "StreamResult",
    "parse_result",
]
