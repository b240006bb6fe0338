"""The company directory, and how it meets a phone's own contacts.

Company entries come from the extensions listed in the directory, sorted by last name, first name, number.
A phone writes its whole directory back (``contacts/<mac>-directory.xml``) after its user edits it; that
upload is stored as sent (every version kept), and what the phone reads is the merge:

- every company entry, with the database's names and number (company data wins); the per-contact settings
  the user gave it on the phone (speed dial, ring tone, label, ...) are kept, matched by number;
- then every personal entry of the phone's last upload: an entry whose number is not an extension's;
- an entry whose number is an extension no longer listed in the directory is dropped, so withdrawing an
  extension from the directory withdraws it from phones too. (An extension that is deleted instead stays on
  the phones that uploaded a directory holding it, as a personal entry: its number is no longer known.)
"""

from __future__ import annotations

import logging
from dataclasses import replace

from autoprov.devices import DeviceModel, DirectoryEntry
from autoprov.phonefiles import storedfiles
from autoprov.provisioning.tables import Extension

log = logging.getLogger(__name__)

CONTACTS_NAME = "directory.xml"


def company_entries() -> list[DirectoryEntry]:
    """Extensions listed in the directory. Sorted here rather than by SQL so every backend's collation gives
    the same bytes (and so the same ETag)."""
    rows = Extension.select(Extension.user_id, Extension.first_name, Extension.last_name).where(
        Extension.in_directory == True  # noqa: E712 (peewee expression)
    )
    entries = [
        # A nameless extension shows its number rather than a blank line.
        DirectoryEntry(first_name=r.first_name or ("" if r.last_name else r.user_id), last_name=r.last_name,
                       contact=r.user_id)
        for r in rows
    ]
    return sorted(entries, key=lambda e: (e.last_name.casefold(), e.first_name.casefold(), e.contact))


def merge(company: list[DirectoryEntry], phone: list[DirectoryEntry], unlisted: set[str]) -> list[DirectoryEntry]:
    """Company entries with the phone's settings for them, then the phone's personal entries (see module doc).
    ``unlisted``: numbers of extensions that exist but are not in the directory."""
    numbers = {e.contact for e in company}
    settings: dict[str, tuple[tuple[str, str], ...]] = {}
    personal = []
    for entry in phone:
        number = entry.contact.strip()
        if number in numbers:
            settings.setdefault(number, entry.extra)
        elif number not in unlisted:
            personal.append(entry)
    return [replace(e, extra=settings.get(e.contact, e.extra)) for e in company] + personal


def directory_for(model: DeviceModel, mac: str | None) -> bytes | None:
    """The directory file ``mac`` reads (the company directory alone for None); None if the model has none."""
    company = company_entries()
    stored = storedfiles.current(mac, storedfiles.CONTACTS, CONTACTS_NAME) if mac else None
    if stored is None:
        return model.render_directory(company)
    try:
        phone = model.parse_directory(storedfiles.content_of(stored))
    except Exception:  # a plugin's parser, a body stored before uploads were checked as it reads them
        log.warning("contacts/%s-%s (version %d) cannot be read: serving the company directory alone", mac,
                    CONTACTS_NAME, stored.version, exc_info=True)
        return model.render_directory(company)
    unlisted = {
        r.user_id for r in Extension.select(Extension.user_id).where(Extension.in_directory == False)  # noqa: E712
    }
    return model.render_directory(merge(company, phone, unlisted))
