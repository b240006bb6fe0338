"""Provisioning's admin pages: phones (list, add, a phone's page, edit, delete), extensions, sightings of
phones not yet added, the fleet at a glance, and CSV import. Changes go through ``admin`` and
``csv_import``, the same checks as the command line; every change is in the audit trail."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import TypeVar

from peewee import SQL, fn
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from autoprov import hookimpl
from autoprov.adminui import AdminPage, templates_beside
from autoprov.adminui.app import AdminRequest
from autoprov.adminui.tables import AuditEntry
from autoprov.mac import InvalidMac, normalize_mac
from autoprov.provisioning import admin, csv_import, import_jobs
from autoprov.provisioning.admin import AdminError, ExtensionData
from autoprov.provisioning.import_jobs import ImportJob, ImportJobError
from autoprov.provisioning.rendered import drift, last_fetched_etag, masked, rendered_files
from autoprov.schema import Migration
from autoprov.tables import Extension, Phone, PhoneLine, Sighting, utcnow

templates = templates_beside(__file__)
T = TypeVar("T")
PAGE_SIZE = 100
DATALIST_LIMIT = 1000  # extensions offered as suggestions in a phone's line fields
DRIFT_LIMIT = 500  # phones whose config the fleet page renders to find drift


def field_of(exc: AdminError, guesses: Iterable[tuple[str, str]] = ()) -> str:
    """The form field a refusal concerns: the one the error names (``AdminError.field``), else the first
    field whose keyword is in the message, else the form as a whole ("")."""
    named = getattr(exc, "field", None)
    if named:
        return named
    text = str(exc)
    return next((name for keyword, name in guesses if keyword in text), "")


def _sightings_of(macs: list[str]) -> dict[str, list[Sighting]]:
    found: dict[str, list[Sighting]] = defaultdict(list)
    if macs:
        for row in Sighting.select().where(Sighting.mac.in_(macs)).order_by(Sighting.last_seen.desc()):
            found[row.mac].append(row)
    return found


def _lines_of(phones: list[Phone]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = defaultdict(list)
    if phones:
        rows = (PhoneLine.select(PhoneLine.phone, PhoneLine.position, Extension.user_id).join(Extension)
                .where(PhoneLine.phone.in_([p.id for p in phones])).order_by(PhoneLine.position))
        for row in rows:
            found[row.phone_id].append(row.extension.user_id)
    return found


# -- phones -------------------------------------------------------------------------------------------------


def phones(ui: AdminRequest) -> Response:
    q, model, ext = ui.args("q").strip(), ui.args("model"), ui.args("ext").strip()
    seen, problem = ui.args("seen"), ui.args("problem")
    query = Phone.select()
    if q:
        needle = q.lower().replace(":", "").replace("-", "")
        query = query.where(Phone.mac.contains(needle) | Phone.notes.contains(q))
    if model:
        query = query.where(Phone.model == model)
    if ext:
        query = query.where(Phone.id.in_(PhoneLine.select(PhoneLine.phone).join(Extension)
                                         .where(Extension.user_id == ext)))
    seen_macs = Sighting.select(Sighting.mac).where(Sighting.mac != "")
    if seen == "seen":
        query = query.where(Phone.mac.in_(seen_macs))
    elif seen == "never":
        query = query.where(Phone.mac.not_in(seen_macs))
    if problem:
        query = query.where(Phone.mac.in_(Sighting.select(Sighting.mac).where(Sighting.problem != "")))
    total = query.count()
    page = max(1, _int(ui.args("page"), 1))
    rows = list(query.order_by(Phone.mac).paginate(page, PAGE_SIZE))
    sightings = _sightings_of([p.mac for p in rows])
    lines = _lines_of(rows)
    flt = {"q": q, "model": model, "ext": ext, "seen": seen, "problem": problem}
    return templates.page(ui, "prov_phones.mako", rows=rows, sightings=sightings, lines=lines, total=total,
                          page=page, pages=max(1, -(-total // PAGE_SIZE)), flt=flt,
                          models=ui.site.models)


def _int(value: str, default: int) -> int:
    try:
        return int(value)
    except ValueError:
        return default


def _line_slots(ui: AdminRequest, model: str | None) -> int:
    models = ui.site.models
    if model in models:
        return models[model].line_count
    return max((m.line_count for m in models.values()), default=1)


def _phone_form_values(ui: AdminRequest, slots: int) -> dict[str, object]:
    form = ui.request.form
    return {
        "mac": form.get("mac", "").strip(),
        "model": form.get("model", ""),
        "lines": [form.get(f"line{i}", "").strip() for i in range(1, max(slots, _posted_lines(form)) + 1)],
        "time_zone": form.get("time_zone", "").strip(),
        "notes": form.get("notes", ""),
    }


def _posted_lines(form: object) -> int:
    return max([int(k[4:]) for k in form if k.startswith("line") and k[4:].isdigit() and int(k[4:]) < 100] or [0])


def _check_phone_form(ui: AdminRequest, values: dict, new: bool) -> tuple[dict[str, str], list[str]]:
    """Field errors found before saving, and the line's user ids in order."""
    errors: dict[str, str] = {}
    if new:
        try:
            mac = admin.parse_mac(values["mac"])
            if Phone.get_or_none(Phone.mac == mac) is not None:
                errors["mac"] = f"phone {mac} already exists"
        except AdminError as exc:
            errors["mac"] = str(exc) if values["mac"] else "enter the MAC address (on the label under the phone)"
    model = values["model"]
    if model not in ui.site.models:
        errors["model"] = "choose a model" if not model else f"model {model!r} is not installed"
    lines: list[str] = values["lines"]
    while lines and not lines[-1]:
        lines = lines[:-1]
    for i, user_id in enumerate(lines, start=1):
        if not user_id:
            errors[f"line{i}"] = "fill the lines in order: this one is empty"
    known = set()
    if lines:
        known = {e.user_id for e in Extension.select(Extension.user_id).where(Extension.user_id.in_(lines))}
    for i, user_id in enumerate(lines, start=1):
        if user_id and user_id not in known:
            errors[f"line{i}"] = f"no extension {user_id}; add it on the Extensions page first"
    if model in ui.site.models and len(lines) > ui.site.models[model].line_count:
        limit = ui.site.models[model].line_count
        errors[f"line{limit + 1}"] = f"a {ui.site.models[model].label} has {limit} line(s); {len(lines)} given"
    try:
        admin.check_time_zone(values["time_zone"])
    except AdminError as exc:
        errors["time_zone"] = str(exc)
    if "\x00" in values["notes"]:
        errors["notes"] = "the notes contain a NUL character"
    return errors, lines


PHONE_GUESSES = (("MAC", "mac"), ("mac", "mac"), ("already exists", "mac"), ("model", "model"),
                 ("line(s)", "lines"), ("extension", "lines"), ("time zone", "time_zone"))


def phone_new(ui: AdminRequest) -> Response:
    form_model = ui.args("model") if ui.request.method == "GET" else ui.form("model")
    slots = _line_slots(ui, form_model or None)
    if ui.request.method == "GET":
        values = {"mac": ui.args("mac"), "model": form_model, "lines": [ui.args("ext")] + [""] * (slots - 1),
                  "time_zone": "", "notes": ""}
        if values["mac"]:
            try:
                values["mac"] = normalize_mac(values["mac"])
            except InvalidMac:
                pass
        return _phone_form(ui, values, {}, slots)
    values = _phone_form_values(ui, slots)
    errors, lines = _check_phone_form(ui, values, new=True)
    if not errors:
        try:
            with ui.site.db.atomic():
                phone = admin.add_phone(ui.site, values["mac"], values["model"], lines, values["time_zone"] or None,
                                        values["notes"])
                ui.audit("phone add", phone.mac, _describe_phone(values["model"], lines, values["time_zone"],
                                                                 values["notes"]))
        except AdminError as exc:
            errors[field_of(exc, PHONE_GUESSES)] = str(exc)
        else:
            return ui.redirect("phone", f"Phone {phone.mac} added. Power it on: it gets its config at boot.",
                               mac=phone.mac)
    return _phone_form(ui, values, errors, max(slots, len(values["lines"])), status=422)


def _describe_phone(model: str, lines: list[str], time_zone: str, notes: str) -> str:
    return "\n".join([f"model: {model}", f"lines: {', '.join(lines) or '(none)'}",
                      f"time zone: {time_zone or '(site)'}", f"notes: {notes}"])


def _phone_form(ui: AdminRequest, values: dict, errors: dict[str, str], slots: int, status: int = 200) -> Response:
    return templates.page(ui, "prov_phone_new.mako", status=status, values=values, errors=errors, slots=slots,
                          models=ui.site.models, extensions=_extension_choices())


def _extension_choices() -> list[Extension]:
    return list(Extension.select(Extension.user_id, Extension.first_name, Extension.last_name)
                .order_by(Extension.user_id).limit(DATALIST_LIMIT))


def _get_phone(mac: str) -> Phone:
    try:
        return admin.get_phone(mac)
    except AdminError:
        raise NotFound() from None


def phone(ui: AdminRequest, mac: str) -> Response:
    """A phone's page; POST saves the edit form."""
    row = _get_phone(mac)
    current_lines = [line.extension.user_id for line in row.lines.order_by(PhoneLine.position)]
    errors: dict[str, str] = {}
    status = 200
    values = {"mac": row.mac, "model": row.model, "lines": current_lines, "time_zone": row.time_zone or "",
              "notes": row.notes}
    if ui.request.method == "POST":
        slots = _line_slots(ui, ui.form("model") or row.model)
        values = _phone_form_values(ui, slots)
        values["mac"] = row.mac
        errors, lines = _check_phone_form(ui, values, new=False)
        if not errors:
            try:
                with ui.site.db.atomic():
                    admin.update_phone(ui.site, row.mac, values["model"], lines, values["time_zone"], values["notes"])
                    changes = _changes(
                        {"model": row.model, "lines": ", ".join(current_lines), "time zone": row.time_zone or "",
                         "notes": row.notes},
                        {"model": values["model"], "lines": ", ".join(lines), "time zone": values["time_zone"],
                         "notes": values["notes"]})
                    if changes:
                        ui.audit("phone update", row.mac, changes)
            except AdminError as exc:
                errors[field_of(exc, PHONE_GUESSES)] = str(exc)
            else:
                return ui.redirect("phone", "Saved." if changes else "Nothing changed.", mac=row.mac)
        status = 422
    return _phone_page(ui, row, values, errors, status=status, revealed=False)


def _changes(old: dict[str, str], new: dict[str, str]) -> str:
    return "\n".join(f"{k}: {old[k]!r} -> {new[k]!r}" for k in old if old[k] != new[k])


def phone_reveal(ui: AdminRequest, mac: str) -> Response:
    """The phone's page with its files' secrets shown (a POST, so it carries the CSRF token; audited)."""
    row = _get_phone(mac)
    ui.audit("reveal secrets", row.mac, "rendered files shown with their SIP passwords")
    values = {"mac": row.mac, "model": row.model,
              "lines": [line.extension.user_id for line in row.lines.order_by(PhoneLine.position)],
              "time_zone": row.time_zone or "", "notes": row.notes}
    return _phone_page(ui, row, values, {}, revealed=True)


def _phone_page(ui: AdminRequest, row: Phone, values: dict, errors: dict[str, str], status: int = 200,
                revealed: bool = False) -> Response:
    files = rendered_files(ui.site, row)
    shown = [(f, f.body if revealed else masked(f.body, f.secrets)) for f in files]
    model = ui.site.models.get(row.model)
    slots = max(model.line_count if model else 1, len(values["lines"]), _line_slots(ui, values["model"] or None))
    line_rows = list(PhoneLine.select(PhoneLine, Extension).join(Extension).where(PhoneLine.phone == row)
                     .order_by(PhoneLine.position))
    return templates.page(
        ui, "prov_phone.mako", status=status, phone=row, model=model, values=values, errors=errors, slots=slots,
        files=shown, revealed=revealed, drift=drift(ui.site, row, files), sightings=_sightings_of([row.mac])[row.mac],
        line_rows=line_rows, models=ui.site.models, extensions=_extension_choices(),
        sections=ui.phone_sections(row.mac), reread=reread_state(ui, row),
        changes=list(AuditEntry.select().where(AuditEntry.target == row.mac).order_by(AuditEntry.id.desc())
                     .limit(20)),
    )


def reread_state(ui: AdminRequest, phone: Phone) -> tuple[bool, str]:
    """(possible, why not) of making the phone re-read its config now; a notify function comes with check-sync
    (issue 13)."""
    return False, "Not available yet: sending check-sync to a phone comes with issue 13. Until then the phone " \
                  "picks up changes when it next reboots or polls."


def phone_delete(ui: AdminRequest, mac: str) -> Response:
    row = _get_phone(mac)
    if ui.request.method == "POST":
        lines = [line.extension.user_id for line in row.lines.order_by(PhoneLine.position)]
        with ui.site.db.atomic():
            admin.remove_phone(row.mac)
            ui.audit("phone remove", row.mac, _describe_phone(row.model, lines, row.time_zone or "", row.notes))
        return ui.redirect("phones", f"Phone {row.mac} removed.")
    return templates.page(ui, "prov_confirm.mako", heading=f"Remove phone {row.mac}?",
                          message="Its lines are freed; the extensions stay. A phone that boots afterwards is "
                                  "listed under Sightings.", action=ui.url_for("phone_delete", mac=row.mac),
                          back=ui.url_for("phone", mac=row.mac))


# -- extensions ---------------------------------------------------------------------------------------------

EXTENSION_GUESSES = (("secret", "secret"), ("first name", "first_name"), ("last name", "last_name"),
                     ("mailbox", "mailbox"), ("port", "port"), ("host name", "server"), ("already exists", "user_id"),
                     ("letters, digits", "user_id"))


def extensions(ui: AdminRequest) -> Response:
    q = ui.args("q").strip()
    query = Extension.select()
    if q:
        query = query.where(Extension.user_id.contains(q) | Extension.first_name.contains(q)
                            | Extension.last_name.contains(q))
    total = query.count()
    page = max(1, _int(ui.args("page"), 1))
    rows = list(query.order_by(Extension.user_id).paginate(page, PAGE_SIZE))
    carried: dict[int, list[str]] = defaultdict(list)
    if rows:
        for line in (PhoneLine.select(PhoneLine.extension, Phone.mac).join(Phone)
                     .where(PhoneLine.extension.in_([e.id for e in rows])).order_by(Phone.mac)):
            carried[line.extension_id].append(line.phone.mac)
    return templates.page(ui, "prov_extensions.mako", rows=rows, carried=carried, q=q, total=total, page=page,
                          pages=max(1, -(-total // PAGE_SIZE)))


def _extension_values(ui: AdminRequest) -> dict[str, object]:
    form = ui.request.form
    return {k: form.get(k, "") for k in ("user_id", "secret", "first_name", "last_name", "mailbox", "server",
                                         "port")} | {"in_directory": form.get("in_directory") == "1"}


def _extension_data(values: dict, errors: dict[str, str]) -> ExtensionData:
    """The form's extension; an empty secret is None (new: a random one; edit: keep the current one)."""
    port: int | None = None
    text = str(values["port"]).strip()
    if text:
        if text.isascii() and text.isdigit():
            port = int(text)
        else:
            errors["port"] = "a port is a number from 1 to 65535"
    return ExtensionData(
        user_id=str(values["user_id"]).strip(),
        secret=values["secret"] or None,
        first_name=str(values["first_name"]).strip(), last_name=str(values["last_name"]).strip(),
        mailbox=str(values["mailbox"]).strip(), server=str(values["server"]).strip() or None, port=port,
        in_directory=bool(values["in_directory"]),
    )


def extension_new(ui: AdminRequest) -> Response:
    values: dict[str, object] = {"user_id": ui.args("user_id"), "secret": "", "first_name": "", "last_name": "",
                                 "mailbox": "", "server": "", "port": "", "in_directory": True}
    errors: dict[str, str] = {}
    if ui.request.method == "POST":
        values = _extension_values(ui)
        data = _extension_data(values, errors)
        if not errors:
            try:
                with ui.site.db.atomic():
                    ext = admin.add_extension(data)
                    ui.audit("extension add", ext.user_id, _describe_extension(ext))
            except AdminError as exc:
                errors[field_of(exc, EXTENSION_GUESSES)] = str(exc)
            else:
                back = ui.form("back")
                if back == "phone_new":
                    return ui.redirect("phone_new", f"Extension {ext.user_id} added.", _query={"ext": ext.user_id})
                return ui.redirect("extensions", f"Extension {ext.user_id} added.")
    return templates.page(ui, "prov_extension_form.mako", status=422 if errors else 200, values=values, errors=errors,
                          new=True, back=ui.args("back") or ui.form("back"), macs=[])


def _describe_extension(ext: Extension) -> str:
    return "\n".join([f"name: {ext.first_name} {ext.last_name}".rstrip(), f"mailbox: {ext.mailbox}",
                      f"server: {ext.server or '(site)'}:{ext.port or '(site)'}",
                      f"in directory: {'yes' if ext.in_directory else 'no'}", "secret: (set)"])


def _found(row: T | None) -> T:
    """The row a page is about, or 404."""
    if row is None:
        raise NotFound()
    return row


def _get_extension(user_id: str) -> Extension:
    return _found(Extension.get_or_none(Extension.user_id == user_id))


def extension_edit(ui: AdminRequest, user_id: str) -> Response:
    ext = _get_extension(user_id)
    values: dict[str, object] = {"user_id": ext.user_id, "secret": "", "first_name": ext.first_name,
                                 "last_name": ext.last_name, "mailbox": ext.mailbox, "server": ext.server or "",
                                 "port": ext.port or "", "in_directory": ext.in_directory}
    errors: dict[str, str] = {}
    if ui.request.method == "POST":
        values = _extension_values(ui) | {"user_id": ext.user_id}
        data = _extension_data(values, errors)
        if not errors:
            changes: dict[str, object] = {"first_name": data.first_name, "last_name": data.last_name,
                                          "mailbox": data.mailbox, "server": data.server, "port": data.port,
                                          "in_directory": data.in_directory}
            if data.secret is not None:
                changes["secret"] = data.secret
            old = {k: getattr(ext, k) for k in changes}
            try:
                with ui.site.db.atomic():
                    admin.update_extension(ext.user_id, site=ui.site, **changes)
                    diff = "\n".join(f"{k}: {'(changed)' if k == 'secret' else repr(old[k])} -> "
                                     f"{'(new secret)' if k == 'secret' else repr(v)}"
                                     for k, v in changes.items() if old[k] != v and not (k == "server" and not old[k]
                                                                                         and not v))
                    if diff:
                        ui.audit("extension update", ext.user_id, diff)
            except AdminError as exc:
                errors[field_of(exc, EXTENSION_GUESSES)] = str(exc)
            else:
                return ui.redirect("extensions", f"Extension {ext.user_id} saved." if diff else "Nothing changed.",
                                   _query={"q": ext.user_id})
    macs = [line.phone.mac for line in PhoneLine.select(PhoneLine, Phone).join(Phone)
            .where(PhoneLine.extension == ext).order_by(Phone.mac)]
    return templates.page(ui, "prov_extension_form.mako", status=422 if errors else 200, values=values,
                          errors=errors, new=False, back="", macs=macs)


def extension_delete(ui: AdminRequest, user_id: str) -> Response:
    ext = _get_extension(user_id)
    error = ""
    if ui.request.method == "POST":
        try:
            with ui.site.db.atomic():
                admin.remove_extension(ext.user_id)
                ui.audit("extension remove", ext.user_id, _describe_extension(ext))
        except AdminError as exc:
            error = str(exc)
        else:
            return ui.redirect("extensions", f"Extension {ext.user_id} removed.")
    return templates.page(ui, "prov_confirm.mako", status=409 if error else 200,
                          heading=f"Remove extension {ext.user_id}?", error=error,
                          message="Phones that carry it must be changed first. Asterisk keeps its own account.",
                          action=ui.url_for("extension_delete", user_id=ext.user_id),
                          back=ui.url_for("extension", user_id=ext.user_id))


# -- sightings, fleet ---------------------------------------------------------------------------------------


def sightings(ui: AdminRequest) -> Response:
    """Phones seen (with a MAC) that are not in the database, newest first."""
    known = Phone.select(Phone.mac)
    rows = list(Sighting.select().where((Sighting.mac != "") & Sighting.mac.not_in(known))
                .order_by(Sighting.last_seen.desc()).limit(500))
    anonymous = list(Sighting.select().where((Sighting.mac == "") & (Sighting.problem != ""))
                     .order_by(Sighting.last_seen.desc()).limit(50))
    return templates.page(ui, "prov_sightings.mako", rows=rows, anonymous=anonymous, models=ui.site.models)


def fleet(ui: AdminRequest) -> Response:
    """Counted in the database (GROUP BY), so a fleet of 100,000 phones is a handful of queries."""
    days = min(max(_int(ui.args("days"), 7), 1), 3650)
    by_model = Counter(dict(Phone.select(Phone.model, fn.COUNT(Phone.id)).group_by(Phone.model).tuples()))
    # Each phone's newest sighting (no newer one of its MAC): its model and firmware as it last reported them,
    # and its current problem. NOT EXISTS walks the (mac, user_agent) index; a join on a GROUP BY subquery
    # took SQLite 20 s for 5,000 phones.
    newer = Sighting.alias()
    newest = Sighting.mac.in_(Phone.select(Phone.mac)) & ~fn.EXISTS(
        newer.select(SQL("1")).where((newer.mac == Sighting.mac) & (newer.last_seen > Sighting.last_seen)))
    firmware: Counter[tuple[str, str]] = Counter()
    for model, version, count in (Sighting.select(Sighting.model, Sighting.firmware, fn.COUNT(Sighting.id))
                                  .where(newest).group_by(Sighting.model, Sighting.firmware).tuples()):
        firmware[(model or "?", version or "?")] += count
    seen = sum(firmware.values())
    problems = list(Sighting.select().where(newest & (Sighting.problem != ""))
                    .order_by(Sighting.last_seen.desc()).limit(500))
    cutoff = utcnow() - dt.timedelta(days=days)
    stale_query = Phone.select().where(Phone.mac.not_in(
        Sighting.select(Sighting.mac).where(Sighting.last_seen >= cutoff)))
    stale_count = stale_query.count()
    stale = list(stale_query.order_by(Phone.mac).limit(500))
    drift_known = last_fetched_etag("") is not False
    drifted = []
    if drift_known:  # each phone's config is rendered to compare: the first DRIFT_LIMIT that fetched one
        fetched = Sighting.select(Sighting.mac).where(Sighting.served_etag.is_null(False))
        for row in Phone.select().where(Phone.mac.in_(fetched)).order_by(Phone.mac).limit(DRIFT_LIMIT):
            state = drift(ui.site, row)
            if state.state == "drifted":
                drifted.append((row, state))
    return templates.page(ui, "prov_fleet.mako", by_model=by_model, firmware=firmware, problems=problems,
                          stale=stale, stale_count=stale_count, days=days, drifted=drifted, drift_known=drift_known,
                          models=ui.site.models, total=sum(by_model.values()), seen=seen)


# -- CSV import ---------------------------------------------------------------------------------------------
# An upload becomes a job (import_jobs) checked, and imported if asked, in the background; its page shows the
# progress from the database, refreshing itself (a meta refresh without JavaScript, a small poll of the
# status URL with it), so a 100,000-row file never holds a request, and any worker can show it.

PREVIEW_ROWS = 2000  # rows of the file shown under a finished check
ERRORS_SHOWN = 1000  # errors listed on a job's page (each preview row shows its own too)
STATUS_ERRORS = 200  # errors per answer of the status URL


def _csv_text(ui: AdminRequest) -> tuple[str, str, bool]:
    """(text, where it came from, pasted): an uploaded file wins over the text box."""
    upload = ui.request.files.get("file")
    if upload is not None and upload.filename:
        raw = upload.read()
        name = upload.filename.replace("\r", " ").replace("\n", " ")[:200]
        return csv_import._decode(name, raw), name, False  # type: ignore[arg-type]
    text = ui.form("text")
    if "\x00" in text:
        raise csv_import.ImportFailed(["the pasted text contains NUL characters: paste the CSV as text"])
    return text, "pasted text", True


def import_csv(ui: AdminRequest) -> Response:
    """The upload form; a POST stores the file as a job and goes to its page (303)."""
    text, general, refused = "", [], False
    busy: ImportJob | None = None
    if ui.request.method == "POST":
        source, pasted = "", True
        try:
            text, source, pasted = _csv_text(ui)
        except csv_import.ImportFailed as exc:
            general = exc.errors
        if not general and not text.strip():
            general = ["choose a CSV file or paste its text"]
        if not general:
            assert ui.user is not None
            try:
                job = import_jobs.start_check(ui.site, ui.user.username, ui.client, source,
                                              text, pasted, then_import=ui.form("action") == "import")
            except import_jobs.Busy as exc:
                refused, busy = True, exc.job
            else:
                return ui.redirect("import_job", job=job.id)
        if not pasted:
            text = ""  # a file input cannot be filled again; the box keeps only what was typed into it
    status = 409 if refused else 422 if general else 200
    recent = list(ImportJob.select(ImportJob.id, ImportJob.created, ImportJob.username, ImportJob.source,
                                   ImportJob.state, ImportJob.rows_total, ImportJob.rows_checked,
                                   ImportJob.error_count).order_by(ImportJob.id.desc()).limit(10))
    running = next((j for j in recent if j.is_running), None) or import_jobs.running_job()
    return templates.page(ui, "prov_import.mako", status=status, text=text, general=general,
                          refused=refused, busy=busy, running=running, recent=recent,
                          columns=csv_import.COLUMNS)


def _get_job(job: int) -> ImportJob:
    return _found(ImportJob.get_or_none(ImportJob.id == job))


def import_job(ui: AdminRequest, job: int) -> Response:
    """A job's progress, then its rows and errors; POST (action=import) imports a file checked without error."""
    row = _get_job(job)
    refusal, refused, busy, status = "", False, None, 200
    if ui.request.method == "POST":
        assert ui.user is not None
        try:
            import_jobs.start_import(ui.site, row.id, ui.user.username, ui.client)
        except import_jobs.Busy as exc:
            refused, busy, status = True, exc.job, 409
        except import_jobs.NotReady as exc:
            refusal, status = str(exc), 409
        else:
            return ui.redirect("import_job", job=row.id)
    errors = import_jobs.errors_of(row.id, limit=ERRORS_SHOWN)
    general = [e.message for e in errors if e.line is None]
    preview: list[list[str]] = []
    by_line: dict[int, list[str]] = defaultdict(list)
    if not row.is_running and row.text:
        preview = _preview(row.text, row.source)
        if len(preview) > 1:
            last = int(preview[-1][0])
            for e in (ImportJobError.select(ImportJobError.line, ImportJobError.message)
                      .where((ImportJobError.job == row.id) & (ImportJobError.line <= last))
                      .order_by(ImportJobError.id)):
                by_line[e.line].append(e.message)
    return templates.page(ui, "prov_import_job.mako", status=status, job=row, errors=errors, general=general,
                          preview=preview, by_line=by_line, refusal=refusal, refused=refused, busy=busy,
                          shown=ERRORS_SHOWN,
                          last_error=max((e.id for e in errors), default=0),
                          pasted_text=row.text if row.pasted and not row.is_running and len(row.text) < 200_000
                          else "")


def _preview(text: str, name: str) -> list[list[str]]:
    """The header and the first PREVIEW_ROWS rows: [line, cells...]; as far as the file is valid CSV."""
    out: list[list[str]] = []
    try:
        for line, cells in csv_import._rows(text, name):
            out.append([str(line), *cells])
            if len(out) > PREVIEW_ROWS:
                break
    except csv_import.ImportFailed:
        pass
    return out


def import_status(ui: AdminRequest, job: int) -> Response:
    """The job's progress as JSON, for the page's script; ``?after=ID``: the errors found since that one."""
    # Polled every second: without the file's text, which may be megabytes.
    counts = [f for f in ImportJob._meta.sorted_fields if f is not ImportJob.text]
    row = _found(ImportJob.select(*counts).where(ImportJob.id == job).first())
    errors = import_jobs.errors_of(row.id, after=max(_int(ui.args("after"), 0), 0), limit=STATUS_ERRORS)
    body = {
        "id": row.id, "state": row.state, "running": row.is_running, "rows_total": row.rows_total,
        "rows_checked": row.rows_checked, "error_count": row.error_count, "problem": row.problem,
        "result": row.result,
        "errors": [{"id": e.id, "line": e.line, "message": e.message} for e in errors],
    }
    return Response(json.dumps(body), mimetype="application/json")


@hookimpl
def autoprov_migrations() -> list[Migration]:
    return import_jobs.MIGRATIONS


@hookimpl
def autoprov_admin_pages() -> list[AdminPage]:
    return [
        AdminPage("phones", "phones", phones, title="Phones", order=10),
        AdminPage("phones/new", "phone_new", phone_new, methods=("GET", "POST")),
        AdminPage("phones/<mac>", "phone", phone, methods=("GET", "POST")),
        AdminPage("phones/<mac>/reveal", "phone_reveal", phone_reveal, methods=("POST",)),
        AdminPage("phones/<mac>/delete", "phone_delete", phone_delete, methods=("GET", "POST")),
        AdminPage("extensions", "extensions", extensions, title="Extensions", order=20),
        AdminPage("extensions/new", "extension_new", extension_new, methods=("GET", "POST")),
        AdminPage("extensions/<user_id>", "extension", extension_edit, methods=("GET", "POST")),
        AdminPage("extensions/<user_id>/delete", "extension_delete", extension_delete, methods=("GET", "POST")),
        AdminPage("sightings", "sightings", sightings, title="Sightings", order=30),
        AdminPage("fleet", "fleet", fleet, title="Fleet", order=40),
        AdminPage("import", "import", import_csv, title="Import", methods=("GET", "POST"), order=50),
        AdminPage("import/<int:job>", "import_job", import_job, methods=("GET", "POST")),
        AdminPage("import/<int:job>/status", "import_status", import_status),
    ]


