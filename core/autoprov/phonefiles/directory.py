"""The company directory, and how it meets a phone's own contacts.

Company entries come from the extensions listed in the directory, sorted by last name, first name, number.
A phone writes its whole directory back (``contacts/<mac>-directory.xml``) after its user edits it; that
upload is stored as sent (every version kept), and with it the upload sorted out (``classify``) against the
company directory as it is when the upload arrives, which is what the phone was showing its user:

- an uploaded entry is a company entry if its number *and* its names are those the server gives for an
  extension, listed or not (names cleaned and cut as the model renders them); its per-contact settings
  (speed dial, ring tone, label, ...) are kept by number. Each extension matches one uploaded entry at most;
- every other uploaded entry is the user's own (personal): one the user made or renamed, a second one with a
  company number (an exact copy too), one with the number of an unlisted extension.

What the phone reads is every company entry as the database has it *now*, with the settings the upload gave
it, then the upload's personal entries, unchanged. So an extension renamed since the upload shows its new
name with the user's settings and no stale copy; one deleted or unlisted since leaves the phone (it was a
company entry); a personal entry stays until the user deletes it.

An upload stored before uploads were sorted out (``StoredFile.classified`` None) is sorted out on each read
against the company directory of that moment, the rule there was then: an entry the server gave under a
name it no longer has stays on the phone as a personal one, beside the renamed company entry.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace

from autoprov.devices import DeviceModel, DirectoryEntry
from autoprov.phonefiles import storedfiles
from autoprov.tables import Extension

log = logging.getLogger(__name__)

# The name a phone's own directory is stored under, whatever its model calls the file (the first vendor's
# name, kept so stored uploads stay found).
CONTACTS_NAME = "directory.xml"

Key = tuple[str, str, str]  # number, first name, last name: what makes an uploaded entry a company entry
Extra = tuple[tuple[str, str], ...]  # an entry's per-contact settings


@dataclass(frozen=True)
class Classified:
    """A contacts upload sorted out: the settings of each company entry by number, and the personal entries."""

    settings: dict[str, Extra]
    personal: list[DirectoryEntry]

    def to_json(self) -> str:
        personal = [[e.first_name, e.last_name, e.contact, e.extra] for e in self.personal]
        return json.dumps({"company": self.settings, "personal": personal}, ensure_ascii=False,
                          separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Classified:
        data = json.loads(text)
        return cls({number: _extra(fields) for number, fields in data["company"].items()},
                   [DirectoryEntry(fn, ln, ct, _extra(fields)) for fn, ln, ct, fields in data["personal"]])


def _extra(fields: list[list[str]]) -> Extra:
    return tuple((tag, value) for tag, value in fields)


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


def as_sent(model: DeviceModel, entries: list[DirectoryEntry]) -> list[Key]:
    """``entries`` as a phone holds them once it has read them: names cleaned and cut as the model writes them."""
    body = model.render_directory(entries) if entries else None
    return [key(e) for e in model.parse_directory(body)] if body is not None else []


def classify(model: DeviceModel, phone: Iterable[DirectoryEntry]) -> Classified:
    """``phone``'s entries sorted out against the company directory as it is now (see module doc)."""
    extensions = extension_entries(listed=True) + extension_entries(listed=False)
    # Each as the phone holds it, to the extension; none for a model without a directory file.
    unclaimed = dict(zip(as_sent(model, extensions), extensions, strict=False))
    settings: dict[str, Extra] = {}
    personal = []
    for entry in phone:
        company = unclaimed.pop(key(entry), None)
        if company is None:
            personal.append(entry)
        else:
            settings[company.contact] = entry.extra
    return Classified(settings, personal)


def classified(model: DeviceModel, body: bytes) -> str | None:
    """What is stored beside a contacts upload: ``body`` sorted out, as JSON; None if the model cannot read it."""
    try:
        return classify(model, model.parse_directory(body)).to_json()
    except Exception:  # a plugin's parser: the upload is stored all the same, and served as one stored before
        log.warning("a contacts upload cannot be read by %s: stored without sorting it out", model.name,
                    exc_info=True)
        return None


def merge(company: list[DirectoryEntry], phone: Classified) -> list[DirectoryEntry]:
    """Company entries with the phone's settings for them, then the phone's personal entries (see module doc)."""
    return [replace(e, extra=phone.settings.get(e.contact, e.extra)) for e in company] + phone.personal


def directory_for(model: DeviceModel, mac: str | None) -> bytes | None:
    """The directory file ``mac`` reads (the company directory alone for None); None if the model has none."""
    company = extension_entries(listed=True)
    stored = storedfiles.current(mac, storedfiles.CONTACTS, CONTACTS_NAME) if mac else None
    if stored is None:
        return model.render_directory(company)
    try:
        if stored.classified is not None:
            phone = Classified.from_json(stored.classified)
        else:  # stored before uploads were sorted out: against the company directory now, as then
            phone = classify(model, model.parse_directory(storedfiles.content_of(stored)))
    except Exception:  # a plugin's parser, a body stored before uploads were checked as it reads them
        log.warning("contacts/%s-%s (version %d) cannot be read: serving the company directory alone", mac,
                    CONTACTS_NAME, stored.version, exc_info=True)
        return model.render_directory(company)
    # Rendered once: a model without a directory file renders None whatever the entries.
    return model.render_directory(merge(company, phone))
