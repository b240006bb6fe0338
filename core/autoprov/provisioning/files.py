"""What a phone fetches to configure itself: generated files, its own config, and the per-phone names it tries
first and falls back from. The router (``autoprov.phonepath``) has matched the model's declared file and
applied the access rules: a phone config holds SIP passwords and reaches only the clients they admit.

Renders are cached (``Site.renders``) until the database's change counter moves, so an unchanged phone costs
a dictionary look-up; a 304 renders nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from werkzeug.wrappers import Request, Response

from autoprov import hookimpl
from autoprov.access import client_address
from autoprov.devices import FALLBACK, GENERATED, PHONE, DeviceModel, FileRule, PhoneView
from autoprov.logthrottle import log_throttled
from autoprov.phonepath import FileHandler, Served
from autoprov.phones import load_phone
from autoprov.site import Site
from autoprov.web import Rendered, plain, rendered_response

log = logging.getLogger(__name__)


def generated(site: Site, request: Request, served: Served) -> Response:
    """A file rendered from the site's settings alone: no database, rendered once per process."""
    key = (GENERATED, served.model.name, served.rule)
    rendered = site.fixed.get(key)
    if rendered is None:
        rendered = _render(site, request, served, served.model, served.rule, None)
        if isinstance(rendered, Response):
            return rendered
        site.fixed[key] = rendered
    served.sight(site, request)
    return rendered_response(request, rendered, served.rule.media_type)


def fallback(site: Site, request: Request, served: Served) -> Response:
    """A per-phone name the phone tries before its shared file: 404 is the normal answer (also with the
    database down: the phone must fall back, not wait). Worth a sighting: it carries the MAC."""
    served.sight(site, request)
    return plain(404, f"no {request.path.rsplit('/', 1)[-1]} here; the phone falls back to its shared file")


def phone(site: Site, request: Request, served: Served) -> Response:
    """One phone's config from the database, as its real model writes it."""
    mac = served.mac
    assert mac is not None  # a PHONE rule is per-phone
    ua_name = served.ua_model.name if served.ua_model else None
    answer = site.renders.get((PHONE, served.model.name, ua_name, mac), lambda: _phone_answer(site, served))
    if isinstance(answer, NotServed):
        if answer.unknown:  # a guessed MAC, perhaps: counted against the client (site.throttle)
            site.throttle.miss(client_address(request, site.settings), mac)
        served.sight(site, request, problem=answer.problem)
        return plain(404, answer.message)
    rendered, problem, media_type = answer
    if rendered is None:
        served.sight(site, request, problem=problem)
        return plain(500, f"phone {mac}'s config cannot be rendered: {problem}")
    served.sight(site, request, problem=problem, etag=rendered.etag)
    return rendered_response(request, rendered, media_type)


@dataclass(frozen=True)
class NotServed:
    message: str  # for the client
    problem: str  # for the admin, in the sighting
    unknown: bool = False  # the MAC is not in the database


def _phone_answer(site: Site, served: Served) -> NotServed | tuple[Rendered | None, str, str]:
    """(rendered or None, problems, media type), or why there is nothing to serve. Cached per change."""
    mac = served.mac
    assert mac is not None
    view = load_phone(site.db, site.settings, mac)
    if view is None:
        return NotServed(f"phone {mac} is not in the database; add it with `autoprov phone add`", "not in the database",
                         unknown=True)
    problems = []
    ua_model = served.ua_model
    if ua_model is not None and ua_model.name != view.model:
        problems.append(f"the database says {view.model} but the phone's User-Agent says {ua_model.name}")
    # The hardware cannot be wrong about itself: trust the User-Agent, else the database.
    real = ua_model or site.models.get(view.model)
    if real is None:
        return NotServed(f"phone {mac} is a {view.model}, and no such model is installed",
                         "; ".join([*problems, f"model {view.model} is not installed"]))
    rule = served.rule if real is served.model else _phone_rule(site, real, served.rule)
    if rule is None:
        why = f"it is a {real.name}, which has no per-phone config here"
        return NotServed(f"phone {mac}: {why}", "; ".join([*problems, why]))
    if real is not served.model:
        problems.append(f"asked under {served.model.base_path} but it is a {real.name}: served {real.name}'s config")
    if len(view.lines) > real.line_count:
        problems.append(f"it has {len(view.lines)} lines but a {real.name} has {real.line_count}: served the first")
        view = replace(view, lines=view.lines[: real.line_count])
    view = replace(view, model=real.name, login=site.access.handed_login(mac))
    refusals = _check(site, real, view)
    if refusals:
        return None, "; ".join(problems + refusals), rule.media_type
    try:
        body = real.render(rule, view)
    except Exception as exc:  # a plugin's template: a clean answer and a sighting, never a traceback page
        log_throttled(log, logging.ERROR, f"render:{real.name}:{rule.pattern}", "%s cannot render %s for %s: %r",
                  real.name, rule.pattern, mac, exc)
        return None, "; ".join([*problems, f"{real.name} failed to render it: {type(exc).__name__}: {exc}"]), ""
    return Rendered.of(body), "; ".join(problems), rule.media_type


def _phone_rule(site: Site, model: DeviceModel, like: FileRule) -> FileRule | None:
    return next((r for r in site.files_of(model) if r.role == PHONE and r.where == like.where), None)


def _check(site: Site, model: DeviceModel, view: PhoneView) -> list[str]:
    try:
        return [str(r) for r in model.check_phone(view)]
    except Exception as exc:
        site.plugins.report_broken(model.name, "check_phone", exc)
        return []


def _render(site: Site, request: Request, served: Served, model: DeviceModel, rule: FileRule,
            view: PhoneView | None) -> Rendered | Response:
    try:
        return Rendered.of(model.render(rule, view))
    except Exception as exc:
        log_throttled(log, logging.ERROR, f"render:{model.name}:{rule.pattern}", "%s cannot render %s: %r",
                  model.name, rule.pattern, exc)
        served.sight(site, request, problem=f"{model.name} failed to render {rule.pattern}: {type(exc).__name__}")
        return plain(500, f"{model.name} cannot render {rule.pattern}; see the server log")


@hookimpl
def autoprov_file_handlers() -> dict[str, FileHandler]:
    return {GENERATED: generated, PHONE: phone, FALLBACK: fallback}
