"""What a phone would be served now, for the admin UI: its files rendered by its model, secrets masked until
revealed, and drift (whether the config the phone last fetched is what it would get now)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from urllib.parse import urlsplit
from xml.sax.saxutils import escape, quoteattr

from autoprov.devices import GENERATED, MODEL, PHONE, DeviceModel
from autoprov.phones import phone_view
from autoprov.site import Site
from autoprov.tables import Phone, Sighting
from autoprov.web import Rendered

MASK = "••••••••"


@dataclass(frozen=True)
class RenderedFile:
    name: str
    body: str  # decoded for display; the phone gets the bytes
    etag: str  # as the server's ETag header carries it (unquoted)
    secrets: tuple[str, ...]  # values to mask in ``body``
    per_phone: bool
    error: str = ""  # the model could not render it (or refuses the phone's data)


def rendered_files(site: Site, phone: Phone) -> list[RenderedFile]:
    """The phone's own config first, then the model's generated files, as its model renders them now (lines it
    cannot carry left out, as the route does). Empty if the model is not installed."""
    model = site.models.get(phone.model)
    if model is None:
        return []
    # With the provisioning login the phone is handed ([access] credentials), as the route renders it.
    view = replace(phone_view(phone, site.settings, model.name), login=site.access.handed_login(phone.mac))
    if len(view.lines) > model.line_count:
        view = replace(view, lines=view.lines[: model.line_count])
    line_secrets = tuple(line.secret for line in view.lines if line.secret) + (view.login[1:] if view.login else ())
    login = urlsplit(site.settings.public_url).password
    site_secrets = (login,) if login else ()
    rules = sorted(site.files_of(model), key=lambda r: (r.role != PHONE, r.where != MODEL))
    generation = _generation(model, phone.mac)
    files = []
    for rule in rules:
        if rule.role not in (PHONE, GENERATED):
            continue
        per_phone = rule.role == PHONE
        name = rule.pattern.replace("{mac}", phone.mac) if per_phone else rule.pattern
        if rule.where != MODEL:
            name = "/" + name  # at the server root
        try:
            if per_phone:
                refusals = model.check_phone(view)
                if refusals:
                    raise ValueError("; ".join(str(r) for r in refusals))
            # As the phone gets them: its firmware generation (last sighting) for a model with generations.
            args = (rule, view if per_phone else None) + ((generation,) if generation is not None else ())
            body = model.render(*args)
        except Exception as exc:  # a plugin's template or refusal: shown, not a traceback page
            files.append(RenderedFile(name, "", "", (), per_phone, f"{type(exc).__name__}: {exc}"))
            continue
        secrets = line_secrets + site_secrets if per_phone else (site_secrets if rule.secret else ())
        files.append(RenderedFile(name, body.decode("utf-8", "replace"), Rendered.of(body).etag, secrets, per_phone))
    return files


def _generation(model: DeviceModel, mac: str) -> str | None:
    """The firmware generation phone ``mac`` last reported, for a model whose files differ by generation."""
    if not model.generations:
        return None
    seen = (Sighting.select(Sighting.firmware).where((Sighting.mac == mac) & Sighting.firmware.is_null(False))
            .order_by(Sighting.last_seen.desc()).first())
    return model.generation(seen.firmware if seen is not None else None)


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
    """(ETag, since when) of the config last served to the phone; None if it never fetched one; False when
    sightings do not record ETags."""
    field = Sighting._meta.fields.get("served_etag")
    if field is None:
        return False
    row = (Sighting.select().where((Sighting.mac == mac) & field.is_null(False) & (field != ""))
           .order_by(Sighting.last_seen.desc()).first())
    if row is None:
        return None
    return row.served_etag, row.etag_since or row.last_seen


def drift(site: Site, phone: Phone, files: list[RenderedFile] | None = None) -> Drift:
    fetched = last_fetched_etag(phone.mac)
    if fetched is False:
        return Drift("unknown", detail="sightings do not record which config a phone fetched")
    if fetched is None:
        return Drift("never fetched", detail="the phone has not fetched its config since it was added")
    files = files if files is not None else rendered_files(site, phone)
    own = next((f for f in files if f.per_phone and not f.error), None)
    etag, since = fetched
    if own is None:
        return Drift("unknown", since, "its config cannot be rendered now")
    if etag.strip().removeprefix("W/").strip('"') == own.etag:
        return Drift("same", since)
    return Drift("drifted", since, "its config changed since; it gets the new one when it next asks")
