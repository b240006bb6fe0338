"""The company directory, and how it meets a phone's own contacts.

Company entries come from the extensions listed in the directory, sorted by last name, first name, number.
A phone writes its whole directory back (``contacts/<mac>-directory.xml``) after its user edits it; that
upload is stored as sent (every version kept), and what the phone reads is the merge.

An uploaded entry is a company entry only if its number *and* its names are those the server gave it: the
company entry as the phone holds it (names cleaned and cut as the model renders them). Anything else the
user made or changed, even with a colleague's number, is the user's own. Then:

- every company entry comes with the database's names and number (company data wins), and with the
  per-contact settings (speed dial, ring tone, label, ...) of the uploaded entry that is it;
- an uploaded entry that is, by the same rule, an extension no longer listed in the directory is dropped,
  so withdrawing an extension from the directory withdraws it from phones too;
- every other uploaded entry is personal and kept, unchanged: one the user renamed, a second one with a
  company number, one with the number of an unlisted extension.

Each company (or unlisted) entry is matched by one uploaded entry at most: an exact copy is personal too.
An entry the server gave under a name it no longer has (the extension was renamed, or deleted) is no
longer recognised, and stays on the phone as a personal entry beside the renamed company one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace

from autoprov.devices import DeviceModel, DirectoryEntry
from autoprov.phonefiles import storedfiles
from autoprov.provisioning.tables import Extension

log = logging.getLogger(__name__)

CONTACTS_NAME = "directory.xml"

Key = tuple[str, str, str]  # number, first name, last name: what makes an uploaded entry a company entry


def extension_entries(listed: bool) -> list[DirectoryEntry]:
    """The extensions listed in the directory (or those not listed), as entries. Sorted here rather than by
    SQL so every backend's collation gives the same bytes (and so the same ETag)."""
    rows = Extension.select(Extension.user_id, Extension.first_name, Extension.last_name).where(
        Extension.in_directory == listed
    )
    entries = [
        # A nameless extension shows its number rather than a blank line.
        DirectoryEntry(first_name=r.first_name or ("" if r.last_name else r.user_id), last_name=r.last_name,
                       contact=r.user_id)
        for r in rows
    ]
    return sorted(entries, key=lambda e: (e.last_name.casefold(), e.first_name.casefold(), e.contact))


def key(entry: DirectoryEntry) -> Key:
    return entry.contact, entry.first_name, entry.last_name


def merge(company: list[DirectoryEntry], phone: Iterable[DirectoryEntry], sent: list[Key],
          withdrawn: Iterable[Key]) -> list[DirectoryEntry]:
    """Company entries with the phone's settings for them, then the phone's personal entries (see module doc).
    ``sent``: each company entry as the phone holds it, in ``company``'s order; ``withdrawn``: the same for
    the extensions not listed."""
    unclaimed = {k: i for i, k in enumerate(sent)}
    gone = set(withdrawn)
    settings: dict[int, tuple[tuple[str, str], ...]] = {}
    personal = []
    for entry in phone:
        k = key(entry)
        if k in unclaimed:
            settings[unclaimed.pop(k)] = entry.extra
        elif k in gone:
            gone.discard(k)
        else:
            personal.append(entry)
    return [replace(e, extra=settings.get(i, e.extra)) for i, e in enumerate(company)] + personal


def as_sent(model: DeviceModel, entries: list[DirectoryEntry]) -> list[Key]:
    """``entries`` as a phone holds them once it has read them: names cleaned and cut as the model writes them."""
    body = model.render_directory(entries) if entries else None
    return [key(e) for e in model.parse_directory(body)] if body is not None else []


def directory_for(model: DeviceModel, mac: str | None) -> bytes | None:
    """The directory file ``mac`` reads (the company directory alone for None); None if the model has none."""
    company = extension_entries(listed=True)
    alone = model.render_directory(company)
    stored = storedfiles.current(mac, storedfiles.CONTACTS, CONTACTS_NAME) if mac else None
    if alone is None or stored is None:
        return alone
    try:
        phone = model.parse_directory(storedfiles.content_of(stored))
    except Exception:  # a plugin's parser, a body stored before uploads were checked as it reads them
        log.warning("contacts/%s-%s (version %d) cannot be read: serving the company directory alone", mac,
                    CONTACTS_NAME, stored.version, exc_info=True)
        return alone
    withdrawn = as_sent(model, extension_entries(listed=False))
    return model.render_directory(merge(company, phone, as_sent(model, company), withdrawn))
