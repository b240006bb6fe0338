"""The phone request path: every file a phone asks for, at the server root or under ``/prov/<model>/``.

Core holds no vendor's file names. For each request it identifies the phone once (its User-Agent, scored by
every model), asks the models which of their declared files (:class:`autoprov.devices.FileRule`) the name is,
applies the access rules to files holding secrets, and hands the request to the handler registered for the
file's role (``autoprov_file_handlers``). A name no rule claims is looked up in the model's firmware directory.

Who may fetch a file holding secrets (a phone config with SIP passwords, a provisioning login, a user's
contacts) or upload: the access policy decides (``autoprov.access``, ``site.access``). A client blocked
for guessing MACs (``site.throttle``) gets 429 for every per-phone file. Secrets sent, refusals and blocks
are in the audit trail (``site.audit``). A phone's verified client certificate admits it to its own files
only (``autoprov.clientcert``, asked by the policy). See README, "Security".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from werkzeug.wrappers import Request, Response

from autoprov import hookimpl
from autoprov.access import client_address
from autoprov.devices import MODEL, ROOT, DeviceModel, FileRule, Identity
from autoprov.firmware import resolve, serve
from autoprov.mac import ZERO_MAC
from autoprov.phones import stored_phone
from autoprov.site import Site
from autoprov.web import Route, plain

FileHandler = Callable[[Site, Request, "Served"], Response]


@dataclass(frozen=True)
class Served:
    """One request for a model's declared file, as the router resolved it."""

    model: DeviceModel  # whose file it is (the path's model; at the root, the phone's)
    rule: FileRule
    mac: str | None  # from the file name, normalised (None: not a per-phone file)
    name: str | None  # the rule's {name} part
    user_agent: str
    identity: Identity | None  # what the best model read off the User-Agent
    ua_model: DeviceModel | None  # that model

    def sight(self, site: Site, request: Request, problem: str | None = None, etag: str | None = None) -> None:
        """Record this request as a sighting (buffered: the phone never waits for it)."""
        sight(site, request, self.mac or "", self.user_agent, self.ua_model, self.identity, problem, etag)


def sight(site: Site, request: Request, mac: str, user_agent: str, ua_model: DeviceModel | None,
          identity: Identity | None, problem: str | None = None, etag: str | None = None) -> None:
    """Record a request as a sighting of ``mac`` (or of the User-Agent alone, for "")."""
    if not mac and identity is not None and identity.mac:
        mac = identity.mac
    site.sightings.record(mac, user_agent, ua_model.name if ua_model else None, identity.firmware if identity else None,
                          client_address(request, site.settings), request.path, problem, etag)


def _user_agent(request: Request) -> str:
    return request.headers.get("User-Agent") or ""


def root_file(site: Site, request: Request, filename: str) -> Response:
    """A file at the server root, where DHCP points a factory-fresh phone: its model's, by User-Agent.

    A phone whose User-Agent no model knows is answered only for a per-phone name of a phone in the
    database (its stored model answers); anything else is a 404 and a sighting for the admin.
    """
    user_agent = _user_agent(request)
    ua_model, identity = site.identify(user_agent)
    mac = ""
    model = ua_model
    if model is None:
        mac = _mac_in(site, filename)
        client = client_address(request, site.settings)
        if mac and (wait := site.throttle.blocked(client)):
            return throttled(site, request, mac, user_agent, wait)
        model = _stored_model(site, mac) if mac else None
        if mac and model is None:
            site.throttle.miss(client, mac)
    found = site.match(filename, ROOT, model) if model is not None else None
    if found is not None:
        _, rule, values = found
        return _dispatch(site, request, Served(found[0], rule, values.get("mac"), values.get("name"), user_agent,
                                               identity, ua_model))
    if ua_model is None:
        guess = site.model_by_oui(mac)
        hint = f" (its MAC is of a maker whose {guess.label} is installed)" if guess else ""
        sight(site, request, mac, user_agent, None, None,
              problem=f"no installed model recognises this User-Agent{hint}")
        return plain(404, f"no installed model recognises the User-Agent {user_agent or '(none)'!r}; "
                          "see `autoprov models`")
    return _malformed(site, filename, ROOT, ua_model) or _firmware(ua_model, request, filename)


def _stored_model(site: Site, mac: str) -> DeviceModel | None:
    """The installed model the database gives phone ``mac`` (None: unknown, or the database is down)."""
    view = stored_phone(site, mac)
    return site.models.get(view.model) if view is not None else None


def model_file(site: Site, request: Request, model: str, filename: str) -> Response:
    """A file under ``/prov/<model>/``: the named model's."""
    user_agent = _user_agent(request)
    ua_model, identity = site.identify(user_agent)
    path_model = site.models.get(model)
    if path_model is None:
        sight(site, request, "", user_agent, ua_model, identity,
              problem=f"asked for /prov/{model}/, which no installed model serves")
        return plain(404, f"no model {model!r} is installed; see `autoprov models`")
    found = site.match(filename, MODEL, path_model)
    if found is not None:
        _, rule, values = found
        return _dispatch(site, request, Served(path_model, rule, values.get("mac"), values.get("name"), user_agent,
                                               identity, ua_model))
    return _malformed(site, filename, MODEL, path_model) or _firmware(path_model, request, filename)


def _malformed(site: Site, filename: str, where: str, model: DeviceModel) -> Response | None:
    rule = site.malformed(filename, where, model)
    if rule is None:
        return None
    return plain(400, f"malformed name {filename!r}: expected {rule.shape} (<mac>: 12 hex digits)")


def _mac_in(site: Site, filename: str) -> str:
    """The MAC in a root file name any model gives one (a per-phone name), else ""."""
    found = site.match(filename, ROOT, None, per_phone=True)
    mac = found[2].get("mac", "") if found else ""
    return "" if mac == ZERO_MAC else mac


def _dispatch(site: Site, request: Request, served: Served) -> Response:
    rule = served.rule
    allowed = rule.methods + (("HEAD",) if "GET" in rule.methods else ())
    if request.method not in allowed:
        return plain(405, f"{request.method} is not allowed here", Allow=", ".join(allowed))
    if served.mac == ZERO_MAC:
        if rule.malformed:
            return plain(400, "000000000000 is the shared-defaults name, not a phone's MAC")
        return plain(404, "000000000000 is not a phone")
    if served.mac is not None and (wait := site.throttle.blocked(client_address(request, site.settings))):
        return throttled(site, request, served.mac, served.user_agent, wait)
    decision = site.access.decide(request, served)
    if not decision.allowed:
        served.sight(site, request, problem="; ".join(p for p in (
            f"refused {request.method} {request.path} ({decision.status}): {decision.reason}", decision.problem) if p))
        audit(site, request, served.mac, served.user_agent, decision.status, "refused", decision.reason)
        if decision.status == 401:
            response = plain(401, "credentials required: this phone's provisioning login (see [access] credentials)")
            response.headers.extend(decision.headers)
            return response
        return plain(decision.status, f"refused: {decision.reason} (see README, \"Security\")")
    if decision.problem:
        served.sight(site, request, problem=decision.problem)
    handler = site.file_handlers.get(rule.role)
    if handler is None:
        served.sight(site, request, problem=f"no installed plugin answers {rule.role!r} files ({rule.pattern})")
        return plain(404, f"nothing installed answers {rule.role} files")
    response = handler(site, request, served)
    if rule.secret and response.status_code in (200, 206):  # a 304 sends no secret: see autoprov.audit
        audit(site, request, served.mac, served.user_agent, response.status_code, "allowed",
              f"admitted by {decision.admitted_by or 'network'}")
    return response


def audit(site: Site, request: Request, mac: str | None, user_agent: str, status: int, outcome: str,
          reason: str) -> None:
    """Record this request in the audit trail (buffered: the phone never waits for it)."""
    site.audit.record(outcome, mac=mac or "", client=client_address(request, site.settings), user_agent=user_agent,
                      method=request.method, path=request.path, status=status, reason=reason)


def throttled(site: Site, request: Request, mac: str, user_agent: str, wait: float) -> Response:
    """429 for a client blocked for guessing MACs; one audit record per client per write interval."""
    client = client_address(request, site.settings)
    site.audit.record("throttled", mac=mac, client=client, user_agent=user_agent,
                      method=request.method, path=request.path, status=429,
                      reason="refused while blocked for asking for too many unknown MACs",
                      merge=("throttled", client))
    seconds = str(max(1, int(wait + 0.999)))
    return plain(429, "too many unknown phones asked for from this address; try again later",
                 **{"Retry-After": seconds})


def _firmware(model: DeviceModel, request: Request, filename: str) -> Response:
    path = resolve(model.firmware_dir, filename)
    if path is None:
        return plain(404, f"{filename} is not in {model.name}'s firmware directory")
    return serve(request, path, model.settings.firmware)


@hookimpl
def autoprov_routes() -> list[Route]:
    return [
        Route("/<path:filename>", root_file, ("GET", "PUT")),
        Route("/prov/<model>/<path:filename>", model_file, ("GET", "PUT")),
    ]
