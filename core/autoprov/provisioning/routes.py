"""What a phone fetches: the initial config at the root, then everything under ``/prov/<model>/``.

Who may fetch what: firmware, master and site configs hold no secrets. ``<mac>-phone.cfg`` holds the SIP
passwords of that phone's lines, and ``device.cfg`` the provisioning login when ``public_url`` carries one:
only clients in ``[http] secrets_allowed_from`` may fetch those (403 otherwise; empty list: anyone who can
reach the server and knows or guesses the MAC). See README, "Security".
"""

from __future__ import annotations

import re
from dataclasses import replace

from werkzeug.exceptions import abort
from werkzeug.wrappers import Request, Response

from autoprov import hookimpl
from autoprov.devices import DeviceModel
from autoprov.firmware import resolve, serve
from autoprov.mac import ZERO_MAC
from autoprov.provisioning.phones import phone_view
from autoprov.provisioning.sightings import record_sighting
from autoprov.provisioning.tables import Phone
from autoprov.site import Site
from autoprov.web import Route, plain

PHONE_CONFIG = re.compile(r"([0-9A-Fa-f]{12})-phone\.cfg")
MAC_MASTER = re.compile(r"([0-9A-Fa-f]{12})\.cfg")


def config_response(request: Request, body: bytes) -> Response:
    """A generated file: byte-stable, so its ETag lets a polling phone get 304."""
    response = Response(body, mimetype="application/xml")
    response.headers["Cache-Control"] = "no-cache"  # revalidate every time: the database may change
    response.add_etag()
    return response.make_conditional(request)


def _user_agent(request: Request) -> str:
    return request.headers.get("User-Agent") or ""


def initial_config(site: Site, request: Request) -> Response:
    model = site.identify(_user_agent(request))
    mac = _serial_mac(model, request)
    if model is None:
        record_sighting(site, request, mac, problem="no installed model recognises this User-Agent", required=False)
        ua = _user_agent(request) or "(none)"
        return plain(404, f"no installed model recognises the User-Agent {ua!r}; see `autoprov models`")
    record_sighting(site, request, mac, required=False)  # the answer does not need the database
    return config_response(request, model.render_initial_config())


def root_file(site: Site, request: Request, filename: str) -> Response:
    """Before a phone is moved to its model's path it asks the root for ``<mac>.cfg`` and its BootROM."""
    if m := MAC_MASTER.fullmatch(filename):
        record_sighting(site, request, m.group(1).lower(), required=False)
        return plain(404, "no per-phone master config; use 000000000000.cfg")
    model = site.identify(_user_agent(request))
    if model is None:
        return plain(404, "not found (no installed model recognises this User-Agent)")
    return _firmware(model, request, filename)


def installed_model(site: Site, request: Request, model: str) -> DeviceModel:
    """The installed model ``/prov/<model>/`` names; else a 404 (raised) and a sighting."""
    found = site.models.get(model)
    if found is None:
        record_sighting(site, request, problem=f"asked for /prov/{model}/, which no installed model serves")
        abort(plain(404, f"no model {model!r} is installed; see `autoprov models`"))
    return found


def model_file(site: Site, request: Request, model: str, filename: str) -> Response:
    path_model = installed_model(site, request, model)
    role = path_model.generated_files().get(filename)
    if role is not None:
        if path_model.role_holds_secrets(role) and not site.settings.may_fetch_secrets(request.remote_addr):
            return _refuse_secrets(site, request, "")
        return config_response(request, path_model.render_generated(role))
    if m := PHONE_CONFIG.fullmatch(filename):
        return phone_config(site, request, path_model, m.group(1).lower())
    if m := MAC_MASTER.fullmatch(filename):
        # Normal: the phone falls back to 000000000000.cfg (also when the database is down: never a 503 here).
        # Worth a sighting: it carries the MAC.
        record_sighting(site, request, m.group(1).lower(), required=False)
        return plain(404, "no per-phone master config; use 000000000000.cfg")
    return _firmware(path_model, request, filename)


def phone_config(site: Site, request: Request, path_model: DeviceModel, mac: str) -> Response:
    if mac == ZERO_MAC:
        return plain(404, "000000000000 is not a phone")
    if not site.settings.may_fetch_secrets(request.remote_addr):
        return _refuse_secrets(site, request, mac)
    phone = Phone.get_or_none(Phone.mac == mac)
    if phone is None:
        record_sighting(site, request, mac, problem="not in the database")
        return plain(404, f"phone {mac} is not in the database; add it with `autoprov phone add`")
    ua_model = site.identify(_user_agent(request))
    problems = []
    if ua_model is not None and ua_model.name != phone.model:
        problems.append(f"the database says {phone.model} but the phone's User-Agent says {ua_model.name}")
    # The hardware cannot be wrong about itself: trust the User-Agent, else the database.
    real = ua_model or site.models.get(phone.model)
    if real is None:
        problems.append(f"model {phone.model} is not installed")
        record_sighting(site, request, mac, problem="; ".join(problems))
        return plain(404, f"phone {mac} is a {phone.model}, and no such model is installed")
    if real is not path_model:
        problems.append(f"asked under /prov/{path_model.name}/ but it is a {real.name}: served {real.name}'s config")
    view = phone_view(phone, site.settings, real.name)
    if len(view.lines) > real.line_count:
        problems.append(f"it has {len(view.lines)} lines but a {real.name} has {real.line_count}: served the first")
        view = replace(view, lines=view.lines[: real.line_count])
    body = real.render_phone_config(view)
    record_sighting(site, request, mac, problem="; ".join(problems))
    return config_response(request, body)


def _refuse_secrets(site: Site, request: Request, mac: str) -> Response:
    record_sighting(site, request, mac, problem=f"refused: {request.remote_addr} may not fetch secrets",
                    required=False)
    return plain(403, "this address may not fetch files holding credentials (see [http] secrets_allowed_from)")


def _firmware(model: DeviceModel, request: Request, filename: str) -> Response:
    path = resolve(model.firmware_dir, filename)
    if path is None:
        return plain(404, f"{filename} is not in {model.name}'s firmware directory")
    return serve(request, path, model.settings.firmware if model.settings else None)


def _serial_mac(model: DeviceModel | None, request: Request) -> str:
    return (model.serial_mac(_user_agent(request)) if model else None) or ""


@hookimpl
def autoprov_routes() -> list[Route]:
    return [
        Route("/000000000000.cfg", initial_config),
        Route("/<path:filename>", root_file),
        Route("/prov/<model>/<path:filename>", model_file),
    ]
