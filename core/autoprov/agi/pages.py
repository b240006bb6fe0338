"""The call scripts' tables in the admin UI: caller-ID names and incoming-call routes (add, edit, delete),
and "which route would this number take now?". Values are checked by the same validators as
``autoprov cid|route add``, so what is saved here is what the scripts can dial."""

from __future__ import annotations

import datetime as dt
import re

from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from autoprov import hookimpl
from autoprov.adminui import AdminPage, templates_beside
from autoprov.adminui.app import AdminRequest
from autoprov.agi import routing
from autoprov.agi.tables import CallerName, Route, caller_number

templates = templates_beside(__file__)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
ROUTE_FIELDS = ("pattern", "priority", "dest_type", "destination", "ring_timeout", "days", "start", "end",
                "time_zone", "fallback_type", "fallback", "description")


# -- caller-ID names ----------------------------------------------------------------------------------------


def _name_errors(number_text: str, name: str) -> tuple[str | None, dict[str, str]]:
    errors = {}
    number = caller_number(number_text)
    if number is None:
        errors["number"] = f"not a caller-ID number: {number_text!r}" if number_text else "enter the number"
    if not name or len(name) > 80 or _CONTROL.search(name):
        errors["name"] = "the name must be 1 to 80 printable characters"
    return number, errors


def caller_names(ui: AdminRequest) -> Response:
    q = ui.args("q").strip()
    values = {"number": "", "name": ""}
    errors: dict[str, str] = {}
    if ui.request.method == "POST":
        values = {"number": ui.form("number").strip(), "name": ui.form("name").strip()}
        number, errors = _name_errors(values["number"], values["name"])
        if not errors:
            with ui.site.db.atomic():
                old = CallerName.get_or_none(CallerName.number == number)
                CallerName.insert(number=number, name=values["name"]).on_conflict(
                    conflict_target=[CallerName.number], update={CallerName.name: values["name"]}).execute()
                ui.audit("caller name set", number, f"{old.name!r} -> {values['name']!r}" if old
                         else f"name: {values['name']!r}")
            return ui.redirect("caller_names", f"Calls from {number} show {values['name']}.")
    query = CallerName.select().order_by(CallerName.number)
    if q:
        query = query.where(CallerName.number.contains(q) | CallerName.name.contains(q))
    return templates.page(ui, "agi_names.mako", status=422 if errors else 200, rows=list(query.limit(1000)), q=q,
                          values=values, errors=errors)


def caller_name(ui: AdminRequest, number: str) -> Response:
    row = CallerName.get_or_none(CallerName.number == number)
    if row is None:
        raise NotFound()
    values = {"number": row.number, "name": row.name}
    errors: dict[str, str] = {}
    if ui.request.method == "POST":
        if ui.form("action") == "delete":
            with ui.site.db.atomic():
                row.delete_instance()
                ui.audit("caller name remove", row.number, f"name was {row.name!r}")
            return ui.redirect("caller_names", f"Removed the name of {row.number}.")
        values["name"] = ui.form("name").strip()
        _, errors = _name_errors(row.number, values["name"])
        if not errors:
            with ui.site.db.atomic():
                CallerName.update(name=values["name"]).where(CallerName.id == row.id).execute()
                ui.audit("caller name set", row.number, f"{row.name!r} -> {values['name']!r}")
            return ui.redirect("caller_names", f"Calls from {row.number} show {values['name']}.")
    return templates.page(ui, "agi_name.mako", status=422 if errors else 200, values=values, errors=errors)


# -- routes -------------------------------------------------------------------------------------------------


def _route_values(ui: AdminRequest) -> dict[str, str]:
    return {k: ui.form(k).strip() for k in ROUTE_FIELDS}


def _check_route(values: dict[str, str]) -> tuple[dict[str, object], dict[str, str]]:
    """The row's values, or errors by field (each validator as the command line uses it)."""
    errors: dict[str, str] = {}
    clean: dict[str, object] = dict(values)

    def check(name: str, fn, *args):  # type: ignore[no-untyped-def]
        try:
            return fn(*args)
        except ValueError as exc:
            errors[name] = str(exc)
            return None

    check("pattern", routing.validate_pattern, values["pattern"])
    clean["destination"] = check("destination", routing.validate_destination, values["dest_type"],
                                 values["destination"])
    if values["dest_type"] not in routing.DEST_TYPES:
        errors["dest_type"] = "choose a destination type"
    clean["priority"] = int(values["priority"]) if re.fullmatch(r"-?\d{1,6}", values["priority"]) else None
    if clean["priority"] is None:
        errors["priority"] = "a whole number; lower is tried first"
    clean["ring_timeout"] = check("ring_timeout", routing.ring_timeout, values["ring_timeout"])
    check("days", routing.parse_days, values["days"])
    for name in ("start", "end"):
        if values[name]:
            check(name, routing.parse_hhmm, values[name])
    if "start" not in errors and "end" not in errors:
        check("end", routing.validate_window, values["start"], values["end"])
    check("time_zone", routing.validate_zone, values["time_zone"])
    if values["fallback_type"] or values["fallback"]:
        clean["fallback"] = check("fallback", routing.validate_destination, values["fallback_type"],
                                  values["fallback"])
    else:
        clean["fallback_type"] = clean["fallback"] = ""
    if _CONTROL.search(values["description"]) or len(values["description"]) > 255:
        errors["description"] = "the description must be printable, at most 255 characters"
    return clean, errors


def _describe(values: dict[str, object]) -> str:
    return "\n".join(f"{k}: {values[k]!r}" for k in ROUTE_FIELDS if values.get(k) not in ("", None))


def routes(ui: AdminRequest) -> Response:
    rows = list(Route.select().order_by(Route.priority, Route.id))
    number = ui.args("number").strip()
    tested, chosen, when = None, None, None
    if number:
        tested = caller_number(number) or number
        when = dt.datetime.now(dt.UTC)
        chosen = routing.choose_route(rows, tested, when, ui.site.settings.time.time_zone)
    return templates.page(ui, "agi_routes.mako", rows=rows, number=number, tested=tested, chosen=chosen,
                          when=when, zone=ui.site.settings.time.time_zone)


def route_edit(ui: AdminRequest, route_id: int | None = None) -> Response:
    row = Route.get_or_none(Route.id == route_id) if route_id is not None else None
    if route_id is not None and row is None:
        raise NotFound()
    defaults = {"priority": "100", "dest_type": "extension", "ring_timeout": "30"}
    values = ({k: str(getattr(row, k)) for k in ROUTE_FIELDS} if row
              else {k: defaults.get(k, "") for k in ROUTE_FIELDS})
    errors: dict[str, str] = {}
    if ui.request.method == "POST":
        if row is not None and ui.form("action") == "delete":
            with ui.site.db.atomic():
                old = {k: getattr(row, k) for k in ROUTE_FIELDS}
                row.delete_instance()
                ui.audit("route remove", f"route {route_id}", _describe(old))
            return ui.redirect("routes", f"Route {route_id} removed.")
        values = _route_values(ui)
        clean, errors = _check_route(values)
        if not errors:
            with ui.site.db.atomic():
                if row is None:
                    row = Route.create(**clean)
                    ui.audit("route add", f"route {row.id}", _describe(clean))
                else:
                    old = {k: getattr(row, k) for k in ROUTE_FIELDS}
                    Route.update(**clean).where(Route.id == row.id).execute()
                    diff = "\n".join(f"{k}: {old[k]!r} -> {clean[k]!r}" for k in ROUTE_FIELDS if old[k] != clean[k])
                    if diff:
                        ui.audit("route update", f"route {row.id}", diff)
            return ui.redirect("routes", f"Route {row.id} saved: {clean['pattern']} -> {clean['dest_type']} "
                                         f"{clean['destination']}.")
    return templates.page(ui, "agi_route.mako", status=422 if errors else 200, values=values, errors=errors,
                          route_id=route_id, dest_types=routing.DEST_TYPES)


@hookimpl
def autoprov_admin_pages() -> list[AdminPage]:
    return [
        AdminPage("caller-names", "caller_names", caller_names, methods=("GET", "POST"), title="Caller names",
                  order=60),
        AdminPage("caller-names/<number>", "caller_name", caller_name, methods=("GET", "POST")),
        AdminPage("routes", "routes", routes, title="Routes", order=70),
        AdminPage("routes/new", "route_new", route_edit, methods=("GET", "POST")),
        AdminPage("routes/<int:route_id>", "route", route_edit, methods=("GET", "POST")),
    ]
