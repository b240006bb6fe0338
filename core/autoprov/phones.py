"""Turning database rows into what templates render: a phone with its lines resolved.

The lookup a phone's request makes is one query, built by peewee once per database and then run as SQL text
(``db.Prepared``): nothing on the request path rebuilds SQL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import peewee

from autoprov.atrest import keyring_of
from autoprov.config import Settings
from autoprov.db import Prepared, database, is_unavailable
from autoprov.devices import PhoneLine, PhoneView
from autoprov.tables import Extension, Phone, display_name
from autoprov.tables import PhoneLine as LineRow

if TYPE_CHECKING:
    from autoprov.site import Site

_PHONE = Prepared(
    lambda: Phone.select(
        Phone.model, Phone.time_zone, LineRow.position, Extension.user_id, Extension.secret, Extension.first_name,
        Extension.last_name, Extension.server, Extension.port, Extension.mailbox,
    )
    .join(LineRow, peewee.JOIN.LEFT_OUTER, on=(LineRow.phone == Phone.id))
    .join(Extension, peewee.JOIN.LEFT_OUTER, on=(LineRow.extension == Extension.id))
    .where(Phone.mac == "")
    .order_by(LineRow.position)
)


def load_phone(db: peewee.Database, settings: Settings, mac: str) -> PhoneView | None:
    """The phone ``mac`` (normalised) as its templates see it, with its model as stored; None if unknown."""
    rows = _PHONE.execute(db, mac).fetchall()
    if not rows:
        return None
    keys = keyring_of(db)  # the query is raw SQL: the secrets come as stored
    lines = tuple(
        line_of(position, user_id, keys.unseal(secret), first, last, server, port, mailbox, settings)
        for _, _, position, user_id, secret, first, last, server, port, mailbox in rows
        if position is not None
    )
    model, time_zone = rows[0][0], rows[0][1]
    return PhoneView(mac=mac, model=model, lines=lines, time_zone=time_zone)


def stored_phone(site: Site, mac: str) -> PhoneView | None:
    """Phone ``mac`` as :func:`load_phone` reads it, through the site's render cache (read again only after a
    change of the database); None if unknown, or while the database is unavailable."""
    try:
        return site.renders.get(("stored-model", mac), lambda: load_phone(site.db, site.settings, mac))
    except peewee.PeeweeException as exc:
        if not is_unavailable(exc):
            raise
        return None


def line_of(position: int, user_id: str, secret: str, first: str, last: str, server: str | None, port: int | None,
            mailbox: str, settings: Settings) -> PhoneLine:
    """One line as templates see it; an extension without its own server uses the site's [sip] server."""
    return PhoneLine(
        index=position,
        user_id=user_id,
        secret=secret,
        display_name=display_name(first, last, user_id),
        label=user_id,
        server=server or settings.sip.server,
        port=port or settings.sip.port,
        transport=settings.sip.transport,
        expires=settings.sip.expires,
        mailbox=mailbox,
        first_name=first,
        last_name=last,
    )


def phone_view(phone: Phone, settings: Settings, model_name: str | None = None) -> PhoneView:
    """Everything needed to render ``phone`` (a row already read), for the CLI and the admin pages."""
    view = load_phone(database.obj, settings, phone.mac)
    assert view is not None, f"phone {phone.mac} vanished"
    return PhoneView(view.mac, model_name or view.model, view.lines, view.time_zone)
