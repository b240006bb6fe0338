"""Small XML files a phone writes (local setting overrides, personal contacts): size-limited, checked to be
well-formed, stored per phone with every version kept, served back as the newest version.

A contacts upload is stored with its entries sorted out into company and personal ones as it arrived
(``classified``, see ``autoprov.phonefiles.directory``). A re-upload of the same bytes adds no version.
``clear`` adds an empty version (content None), so the history shows when the admin cleared the file and
what it held before.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from xml.parsers import expat

import peewee
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Request

from autoprov.phonefiles.tables import StoredFile
from autoprov.phonefiles.transactions import write_transaction
from autoprov.tables import utcnow

ATTEMPTS = 3  # concurrent writers of one file on PostgreSQL: the loser of the version number retries


class InvalidXml(ValueError):
    pass


@dataclass(frozen=True)
class Kind:
    """A directory of phone-written files. Which names a phone may write there is its model's to say (the
    FileRule that matched the upload); what is stored is listed by :func:`names`."""

    directory: str


OVERRIDES = Kind("overrides")
CONTACTS = Kind("contacts")


def read_limited(request: Request, limit: int) -> bytes:
    """The request body; 413 past ``limit`` bytes. A body without Content-Length (chunked) is read to one byte
    past the limit, since a stream cut at the limit (Werkzeug's max_content_length) would be stored cut short."""
    too_large = RequestEntityTooLarge(f"an overrides or contacts file may be at most {limit} bytes")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    stream, chunks, size = request.stream, [], 0
    while size <= limit and (chunk := stream.read(limit + 1 - size)):
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:
        raise too_large
    return b"".join(chunks)


def check_xml(body: bytes) -> None:
    """Raise InvalidXml unless ``body`` is one well-formed XML document without a DTD (no entity tricks).

    Parsed with namespaces, as ElementTree (which the model plugins use to read it back) parses it: a prefix
    that is never declared (``<x:sd>``) is refused here rather than breaking every later read of the file."""
    parser = expat.ParserCreate(namespace_separator="}")  # ElementTree's own expat setting

    def refuse_dtd(*args: object) -> None:
        raise InvalidXml("a DOCTYPE is not accepted")

    parser.StartDoctypeDeclHandler = refuse_dtd
    parser.EntityDeclHandler = refuse_dtd
    try:
        parser.Parse(body, True)
    except expat.ExpatError as exc:
        raise InvalidXml(f"not well-formed XML: {exc}") from None


def latest(mac: str, kind: Kind, name: str) -> StoredFile | None:
    """The newest version (a clear too), or None if there is none."""
    return (
        StoredFile.select()
        .where(StoredFile.mac == mac, StoredFile.directory == kind.directory, StoredFile.name == name)
        .order_by(StoredFile.version.desc())
        .first()
    )


def current(mac: str, kind: Kind, name: str) -> StoredFile | None:
    """The newest version, or None if there is none or it was cleared."""
    row = latest(mac, kind, name)
    return row if row is not None and row.content is not None else None


def content_of(row: StoredFile) -> bytes:
    return bytes(row.content)  # PostgreSQL hands bytea back as a memoryview


def store(db: peewee.Database, mac: str, kind: Kind, name: str, content: bytes | None, source: str,
          classified: str | None = None) -> bool:
    """Add a version (``content`` None clears), with ``classified`` (a contacts upload sorted out); False if
    the file already is exactly that (its version keeps what it was stored with)."""
    digest = hashlib.sha256(content).hexdigest() if content is not None else ""
    for attempt in range(ATTEMPTS):
        try:
            with write_transaction(db):
                latest = (
                    StoredFile.select(StoredFile.version, StoredFile.sha256, StoredFile.content.is_null().alias("gone"))
                    .where(StoredFile.mac == mac, StoredFile.directory == kind.directory, StoredFile.name == name)
                    .order_by(StoredFile.version.desc())
                    .first()
                )
                if latest is None and content is None:
                    return False
                if latest is not None and latest.sha256 == digest and bool(latest.gone) == (content is None):
                    return False
                StoredFile.create(
                    mac=mac, directory=kind.directory, name=name, version=(latest.version if latest else 0) + 1,
                    content=content, size=len(content or b""), sha256=digest, stored_at=utcnow(), source=source[:300],
                    classified=classified,
                )
                return True
        except peewee.IntegrityError:
            if attempt == ATTEMPTS - 1:
                raise
    return False  # not reached


def history(mac: str, kind: Kind, name: str | None = None) -> list[StoredFile]:
    query = StoredFile.select().where(StoredFile.mac == mac, StoredFile.directory == kind.directory)
    if name:
        query = query.where(StoredFile.name == name)
    return list(query.order_by(StoredFile.name, StoredFile.version))


def names(mac: str, kind: Kind) -> list[str]:
    """The names the phone has stored files under in ``kind``'s directory, sorted."""
    query = StoredFile.select(StoredFile.name).where(StoredFile.mac == mac, StoredFile.directory == kind.directory)
    return sorted({row.name for row in query})


def clear(db: peewee.Database, mac: str, kind: Kind, names_: tuple[str, ...] | None = None) -> list[str]:
    """Stop serving the phone's files (all it stored of the kind by default); the names that were cleared."""
    return [name for name in names_ or names(mac, kind) if store(db, mac, kind, name, None, "admin: clear")]
