"""What a phone would be served now, for the admin UI: its files rendered by its model, secrets masked until
revealed, and drift (whether the config the phone last fetched is what it would get now)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from urllib.parse import urlsplit
from xml.sax.saxutils import escape, quoteattr

from werkzeug.http import generate_etag

from autoprov.provisioning.phones import phone_view
from autoprov.provisioning.tables import Phone, Sighting
from autoprov.site import Site

MASK = "••••••••"


@dataclass(frozen=True)
class RenderedFile:
    name: str
    body: str  # decoded for display; the phone gets the bytes
    etag: str  # as the server's ETag header would carry it (unquoted)
    secrets: tuple[str, ...]  # values to mask in ``body``
    per_phone: bool


def phone_file_name(site: Site, phone: Phone) -> str:
    """The name the phone fetches its own config by. Until models declare it (issue 7), the one
    provisioning's routes answer today."""
    model = site.models.get(phone.model)
    declared = getattr(model, "phone_file_name", None)
    return declared(phone.mac) if callable(declared) else f"{phone.mac}-phone.cfg"


def rendered_files(site: Site, phone: Phone) -> list[RenderedFile]:
    """The phone's own config first, then the model's shared generated files, as its model renders them now
    (the lines it cannot carry left out, as the route does). Empty if the model is not installed."""
    model = site.models.get(phone.model)
    if model is None:
        return []
    view = phone_view(phone, site.settings, model.name)
    if len(view.lines) > model.line_count:
        view = replace(view, lines=view.lines[: model.line_count])
    line_secrets = tuple(line.secret for line in view.lines if line.secret)
    login = urlsplit(site.settings.public_url).password
    site_secrets = (login,) if login else ()
    body = model.render_phone_config(view)
    files = [RenderedFile(phone_file_name(site, phone), body.decode("utf-8", "replace"), generate_etag(body),
                          line_secrets + site_secrets, True)]
    render_generated = getattr(model, "render_generated", None)
    for name, role in model.generated_files().items():
        if render_generated is None:
            break
        data = render_generated(role)
        files.append(RenderedFile(name, data.decode("utf-8", "replace"), generate_etag(data),
                                  site_secrets if model.role_holds_secrets(role) else (), False))
    return files


def masked(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with each secret replaced, as written raw, XML-escaped or as an attribute value."""
    for secret in sorted(secrets, key=len, reverse=True):
        for form in {secret, escape(secret), quoteattr(secret)[1:-1], escape(secret, {'"': "&quot;"})}:
            if form:
                text = text.replace(form, MASK)
    return text


@dataclass(frozen=True)
class Drift:
    state: str  # "same", "drifted", "unknown" or "never fetched"
    fetched_at: dt.datetime | None = None
    detail: str = ""


def last_fetched_etag(mac: str) -> tuple[str, dt.datetime] | None | bool:
    """(ETag, when) of the config the phone last fetched; None if it never fetched one; False when sightings do
    not record ETags (yet). The one place to wire once sightings carry the ETag."""
    field = Sighting._meta.fields.get("etag")
    if field is None:
        return False
    row = (Sighting.select().where((Sighting.mac == mac) & field.is_null(False) & (field != ""))
           .order_by(Sighting.last_seen.desc()).first())
    if row is None:
        return None
    return row.etag, row.last_seen


def drift(site: Site, phone: Phone, files: list[RenderedFile] | None = None) -> Drift:
    fetched = last_fetched_etag(phone.mac)
    if fetched is False:
        return Drift("unknown", detail="sightings do not record which config a phone fetched yet")
    if fetched is None:
        return Drift("never fetched", detail="the phone has not fetched its config since it was added")
    files = files if files is not None else rendered_files(site, phone)
    own = next((f for f in files if f.per_phone), None)
    etag, when = fetched
    if own is None:
        return Drift("unknown", when, "its model is not installed")
    current = etag.strip().removeprefix("W/").strip('"')
    if current == own.etag:
        return Drift("same", when)
    return Drift("drifted", when, "its config changed since the phone fetched it; it gets the new one when it "
                                  "next asks")
