"""``cid-name``: show the caller's name from the caller-ID substitution table.

Dialplan: ``same => n,AGI(agi://127.0.0.1/cid-name)``. The name is left alone when the number has no
entry, when there is no caller ID, and when the database is unavailable (then AGISTATUS=FAILURE).
"""

from __future__ import annotations

import functools

from autoprov.agi.context import DatabaseUnavailable, ScriptContext
from autoprov.agi.quoting import printable
from autoprov.agi.session import AGISession
from autoprov.agi.tables import CallerName, caller_number, normalize_number

NO_CALLER_ID = ("", "unknown", "anonymous")


@functools.cache
def _lookup_sql(kind: type) -> str:
    """The lookup's SQL for one kind of database (its parameter style): peewee builds it once, not per call."""
    sql, _ = CallerName.select(CallerName.name).where(CallerName.number == "").limit(1).sql()
    return sql


def lookup_name(number: str) -> str | None:
    """The name for this caller ID. The caller ID is attacker-controlled: only ever a query parameter.

    Building the query costs peewee about 15 times what SQLite takes to answer it, on every call: the
    SQL is built once per kind of database and run with the number as its parameter.
    """
    db = CallerName._meta.database
    row = db.execute_sql(_lookup_sql(type(getattr(db, "obj", db))), (normalize_number(number), 1)).fetchone()
    return row[0] if row else None


def cid_name(session: AGISession, ctx: ScriptContext) -> None:
    if ctx.params.get("number"):
        raw = ctx.params["number"]
    elif "callerid" in session.continued:  # it held a newline: no entry can have it (its first line is not it)
        return
    else:
        raw = session.env.get("callerid", "")
    number = caller_number(raw) if raw.strip().lower() not in NO_CALLER_ID else None
    if number is None:  # no caller ID, or one no entry can have (checked before it reaches the database)
        return
    try:
        name = ctx.query(lookup_name, number)
    except DatabaseUnavailable:
        return  # the call goes on with the name it has; the runner reports FAILURE in AGISTATUS
    if name:
        session.set_callerid_name(printable(name))
