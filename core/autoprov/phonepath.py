"""The phone request path: every file a phone asks for, at the server root or under ``/prov/<model>/``.

Core holds no vendor's file names. For each request it identifies the phone once (its User-Agent, scored by
every model), asks the models which of their declared files (:class:`autoprov.devices.FileRule`) the name is,
applies the access rules to files holding secrets, and hands the request to the handler registered for the
file's role (``autoprov_file_handlers``). A name no rule claims is looked up in the model's firmware directory.

Who may fetch a file holding secrets (a phone config with SIP passwords, a provisioning login, a user's
contacts): clients in ``[http] secrets_allowed_from``, or a phone's verified client certificate for its own files
(autoprov.clientcert). See README, "Security".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from werkzeug.wrappers import Request, Response

from autoprov import hookimpl
from autoprov.clientcert import certificate_check
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
                          request.remote_addr, request.path, problem, etag)


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
        model = _stored_model(site, mac) if mac else None
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
    # Mutual TLS (autoprov.clientcert): a verified device certificate binds the client to its phone's files.
    verdict = certificate_check(site, request, served)
    if verdict is not None and not verdict.allowed:
        served.sight(site, request, problem=f"refused {request.method} {request.path}: {verdict.reason}")
        return plain(verdict.status, verdict.reason)
    if rule.secret and verdict is None and not site.settings.may_fetch_secrets(request.remote_addr):
        address = request.remote_addr
        served.sight(site, request, problem=f"refused {request.method} {request.path}: {address} may not fetch "
                                            f"secrets, since {address} is not in [http] secrets_allowed_from")
        return plain(403, "this address may not fetch or write files holding credentials or contacts "
                          "(see [http] secrets_allowed_from)")
    handler = site.file_handlers.get(rule.role)
    if handler is None:
        served.sight(site, request, problem=f"no installed plugin answers {rule.role!r} files ({rule.pattern})")
        return plain(404, f"nothing installed answers {rule.role} files")
    return handler(site, request, served)


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
