"""Turning database rows into what templates render: a phone with its lines resolved."""

from __future__ import annotations

from autoprov.config import Settings
from autoprov.devices import PhoneLine, PhoneView
from autoprov.provisioning.tables import Extension, Phone
from autoprov.provisioning.tables import PhoneLine as LineRow


def phone_view(phone: Phone, settings: Settings, model_name: str | None = None) -> PhoneView:
    """Everything needed to render ``phone`` (one query for its lines and their extensions)."""
    rows = (
        LineRow.select(LineRow, Extension)
        .join(Extension)
        .where(LineRow.phone == phone)
        .order_by(LineRow.position)
    )
    sip = settings.sip
    lines = tuple(
        PhoneLine(
            index=row.position,
            user_id=row.extension.user_id,
            secret=row.extension.secret,
            display_name=row.extension.display_name,
            label=row.extension.user_id,
            server=row.extension.server or sip.server,
            port=row.extension.port or sip.port,
            transport=sip.transport,
            expires=sip.expires,
            mailbox=row.extension.mailbox,
        )
        for row in rows
    )
    return PhoneView(mac=phone.mac, model=model_name or phone.model, lines=lines, time_zone=phone.time_zone)
