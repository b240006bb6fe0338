"""The admin UI under ``/admin/``: one route in the site's URL map, then its own Werkzeug map built from
every plugin's ``autoprov_admin_pages``. Every page but the login form and the stylesheet needs a session;
every POST needs the session's CSRF token. Responses are never cached and never framed."""

from __future__ import annotations

import logging
import re
import secrets
import weakref
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from werkzeug.exceptions import NotFound
from werkzeug.routing import Map, MapAdapter, RequestRedirect, Rule
from werkzeug.utils import redirect as werkzeug_redirect
from werkzeug.utils import safe_join, send_file
from werkzeug.wrappers import Request, Response

from autoprov import hookimpl
from autoprov.access import client_address
from autoprov.adminui import sessions
from autoprov.adminui.pages import CORE_TEMPLATES, AdminPage, PhoneSection, Templates
from autoprov.adminui.tables import AdminUser, AuditEntry
from autoprov.adminui.users import Throttled, authenticate
from autoprov.site import Site
from autoprov.web import Route

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
FLASH_COOKIE = "autoprov_admin_flash"
MAX_UPLOAD = 64 * 1024 * 1024  # bytes of one admin request (a CSV of 100,000 phones is ~10 MB)
core_templates = Templates(CORE_TEMPLATES)
_SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class AdminRequest:
    """What a page handler gets: the site, the request, the logged-in user and helpers for forms."""

    def __init__(self, ui: AdminUI, request: Request, adapter: MapAdapter, key: bytes,
                 user: AdminUser | None = None, session: sessions.Session | None = None) -> None:
        self.ui = ui
        self.site: Site = ui.site
        self.request = request
        self.client = client_address(request, self.site.settings) or ""  # through trusted proxies ([access])
        self.adapter = adapter
        self.key = key
        self.user = user
        self.session = session
        self.flash = request.cookies.get(FLASH_COOKIE, "")[:300]
        self._set_cookies: list[tuple[str, str, int | None]] = []

    @property
    def csrf(self) -> str:
        """The token every form carries in its ``csrf`` field."""
        if self.session is None:
            return ""
        return self.session.csrf_token(self.key)

    @property
    def path(self) -> str:
        return self.request.path

    @property
    def cookie_path(self) -> str:
        """The admin UI's path, below wherever the application is mounted (Apache's WSGIScriptAlias)."""
        return self.request.script_root + "/admin/"

    def url_for(self, endpoint: str, _query: dict[str, Any] | None = None, **values: Any) -> str:
        url = self.adapter.build(endpoint, values)
        if _query:
            from urllib.parse import urlencode

            url += "?" + urlencode({k: v for k, v in _query.items() if v not in (None, "")})
        return url

    def redirect(self, endpoint: str, flash: str = "", _query: dict[str, Any] | None = None, **values: Any) -> Response:
        """303 See Other to another page (after a POST), with a one-time message shown there."""
        response = werkzeug_redirect(self.url_for(endpoint, _query, **values), code=303)
        if flash:
            response.set_cookie(FLASH_COOKIE, flash[:300], httponly=True, samesite="Lax", path=self.cookie_path)
        return response

    def audit(self, action: str, target: str = "", details: str = "") -> None:
        """Record an admin change; call it in the transaction that makes the change."""
        AuditEntry.create(username=self.user.username if self.user else "", ip=self.client,
                          action=action, target=target[:255], details=details)

    def nav(self) -> list[tuple[str, str, bool]]:
        """(title, url, current) of the navigation's pages."""
        out = []
        for page in self.ui.nav_pages:
            url = self.url_for(page.endpoint)
            out.append((page.title or "", url, self.request.path.startswith(url)))
        return out

    def phone_sections(self, mac: str) -> list[tuple[str, str]]:
        """(title, HTML) of every feature's panel of a phone's page; a panel that raises is left out and logged."""
        out = []
        for section in self.ui.sections:
            try:
                out.append((section.title, section.render(self, mac)))
            except Exception:
                log.exception("admin phone section %r failed for %s", section.title, mac)
                out.append((section.title, "<p class=\"error\">This panel could not be shown; see the server log.</p>"))
        return out

    def form(self, name: str, default: str = "") -> str:
        return self.request.form.get(name, default)

    def args(self, name: str, default: str = "") -> str:
        return self.request.args.get(name, default)


class AdminUI:
    """The admin pages of one Site (built on first request)."""

    def __init__(self, site: Site) -> None:
        self.site = site
        pages: list[AdminPage] = list(_core_pages())
        impls = site.plugins.hook.autoprov_admin_pages.get_hookimpls()
        for _, batch in site.plugins.each_result("autoprov_admin_pages", impls):
            pages.extend(batch or ())
        sections: list[PhoneSection] = []
        impls = site.plugins.hook.autoprov_admin_phone_sections.get_hookimpls()
        for _, batch in site.plugins.each_result("autoprov_admin_phone_sections", impls):
            sections.extend(batch or ())
        self.pages = {p.endpoint: p for p in pages}
        self.sections = sorted(sections, key=lambda s: s.order)
        self.nav_pages = sorted((p for p in pages if p.title), key=lambda p: p.order)
        self.url_map = Map(
            [Rule("/admin/" + p.rule, endpoint=p.endpoint, methods=list(p.methods)) for p in pages],
            merge_slashes=False,
            strict_slashes=True,
        )

    def dispatch(self, request: Request) -> Response:
        request.max_content_length = MAX_UPLOAD
        request.max_form_memory_size = MAX_UPLOAD
        adapter = self.url_map.bind_to_environ(request.environ)
        key = sessions.signing_key()
        try:
            endpoint, values = adapter.match()
        except NotFound:
            ui = AdminRequest(self, request, adapter, key, *self._session(request, key))
            return _secure(error_page(ui, 404, "Not found", "There is no such page."))
        except RequestRedirect as exc:  # a slash too many or missing
            return exc.get_response(request.environ)
        page = self.pages[endpoint]
        user, session = self._session(request, key)
        ui = AdminRequest(self, request, adapter, key, user, session)
        if endpoint not in PUBLIC:
            if user is None:
                if request.method == "GET":
                    return werkzeug_redirect(ui.url_for("login", _query={"next": request.full_path.rstrip("?")}),
                                             code=303)
                return _secure(error_page(ui, 403, "Your session has ended",
                                          "Log in again, then repeat what you were doing; nothing was changed.",
                                          login_link=True))
            if request.method == "POST" and not sessions.csrf_ok(key, session.nonce, request.form.get("csrf")):
                log.warning("admin POST %s refused: wrong CSRF token (user %s, %s)", request.path, user.username,
                            ui.client)
                return _secure(error_page(ui, 400, "This form has expired",
                                          "Its security token does not match your session. Go back, reload the "
                                          "page and try again; nothing was changed."))
        try:
            response = page.handler(ui, **values)
        except NotFound:
            return _secure(error_page(ui, 404, "Not found", "There is no such page, or what it shows was removed."))
        if ui.flash and request.method == "GET":
            response.delete_cookie(FLASH_COOKIE, path=ui.cookie_path)
        return _secure(response)

    def _session(self, request: Request, key: bytes) -> tuple[AdminUser | None, sessions.Session | None]:
        value = request.cookies.get(sessions.COOKIE)
        session = sessions.Session.decode(value, key) if value else None
        if session is None:
            return None, None
        user = AdminUser.get_or_none(AdminUser.id == session.user_id)
        if user is None or user.session_epoch != session.epoch:
            return None, None
        return user, session


def _secure(response: Response) -> Response:
    for name, value in _SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def error_page(ui: AdminRequest, status: int, title: str, message: str, login_link: bool = False) -> Response:
    return core_templates.page(ui, "admin_error.mako", status=status, heading=title, message=message,
                               login_link=login_link)


# -- core pages: login, logout, audit trail, static files -------------------------------------------------

PUBLIC = {"login", "static"}
_STATIC_NAME = re.compile(r"[a-z0-9_-]+\.(css|js)\Z")


def index(ui: AdminRequest) -> Response:
    first = ui.ui.nav_pages[0].endpoint if ui.ui.nav_pages else "audit"
    return werkzeug_redirect(ui.url_for(first), code=303)


def _safe_next(value: str) -> str | None:
    """Only a path of this admin UI: never another site (an open redirect)."""
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/admin/") or "\\" in value or "//" in value:
        return None
    return value


def login(ui: AdminRequest) -> Response:
    request = ui.request
    nonce = request.cookies.get(sessions.LOGIN_COOKIE) or secrets.token_urlsafe(16)
    token = sessions.csrf_token(ui.key, nonce)
    next_path = _safe_next(request.values.get("next", "")) or ""  # below the application's root
    username, error, status = "", "", 200
    if request.method == "POST":
        username = request.form.get("username", "").strip()
        password = request.form.get("password", "")
        if not sessions.csrf_ok(ui.key, request.cookies.get(sessions.LOGIN_COOKIE), request.form.get("csrf")):
            error, status = "This login form has expired; it was reloaded, please try again.", 400
        else:
            try:
                user = authenticate(username, password, ui.client)
            except Throttled as exc:
                user, error, status = None, str(exc) + ".", 429
            else:
                if user is None:
                    error, status = "Wrong user name or password.", 401
            if user is not None:
                session = sessions.new_session(user.id, user.session_epoch)
                ui.user = user
                ui.audit("login")
                response = werkzeug_redirect(request.script_root + next_path if next_path else ui.url_for("index"),
                                             code=303)
                response.set_cookie(sessions.COOKIE, session.encode(ui.key), max_age=sessions.SESSION_LIFETIME,
                                    httponly=True, samesite="Lax", secure=request.scheme == "https",
                                    path=ui.cookie_path)
                response.delete_cookie(sessions.LOGIN_COOKIE, path=ui.cookie_path)
                return response
    response = core_templates.page(ui, "admin_login.mako", status=status, csrf=token, username=username,
                                   error=error, next_url=next_path)
    response.set_cookie(sessions.LOGIN_COOKIE, nonce, max_age=3600, httponly=True, samesite="Lax",
                        secure=request.scheme == "https", path=ui.cookie_path)
    return response


def logout(ui: AdminRequest) -> Response:
    """Ends every session of this user (the cookie alone cannot be recalled)."""
    assert ui.user is not None
    with ui.site.db.atomic():
        AdminUser.update(session_epoch=AdminUser.session_epoch + 1).where(AdminUser.id == ui.user.id).execute()
        ui.audit("logout")
    response = werkzeug_redirect(ui.url_for("login"), code=303)
    response.delete_cookie(sessions.COOKIE, path=ui.cookie_path)
    return response


AUDIT_PAGE = 200


def audit(ui: AdminRequest) -> Response:
    query = AuditEntry.select().order_by(AuditEntry.id.desc())
    who, text = ui.args("user").strip(), ui.args("q").strip()
    if who:
        query = query.where(AuditEntry.username == who)
    if text:
        query = query.where(AuditEntry.target.contains(text) | AuditEntry.action.contains(text)
                            | AuditEntry.details.contains(text))
    try:
        before = int(ui.args("before") or 0)
    except ValueError:
        before = 0
    if before:
        query = query.where(AuditEntry.id < before)
    rows = list(query.limit(AUDIT_PAGE + 1))
    more = rows[AUDIT_PAGE].id + 1 if len(rows) > AUDIT_PAGE else None
    return core_templates.page(ui, "admin_audit.mako", rows=rows[:AUDIT_PAGE], who=who, text=text, more=more)


def static(ui: AdminRequest, name: str) -> Response:
    path = safe_join(str(STATIC), name)
    if not _STATIC_NAME.match(name) or path is None or not Path(path).is_file():
        raise NotFound()
    response = send_file(path, ui.request.environ, max_age=3600)
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


def _core_pages() -> Iterable[AdminPage]:
    return [
        AdminPage("", "index", index),
        AdminPage("login", "login", login, methods=("GET", "POST")),
        AdminPage("logout", "logout", logout, methods=("POST",)),
        AdminPage("audit", "audit", audit, title="Audit", order=900),
        AdminPage("static/<name>", "static", static),
    ]


# -- the route in the site's URL map ------------------------------------------------------------------------

_uis: weakref.WeakKeyDictionary[Site, AdminUI] = weakref.WeakKeyDictionary()


def admin_ui(site: Site) -> AdminUI:
    ui = _uis.get(site)
    if ui is None:
        ui = _uis[site] = AdminUI(site)
    return ui


def handle(site: Site, request: Request, rest: str = "") -> Response:
    return admin_ui(site).dispatch(request)


def to_index(site: Site, request: Request) -> Response:
    return werkzeug_redirect(request.script_root + "/admin/", code=308)


@hookimpl
def autoprov_routes() -> list[Route]:
    return [
        Route("/admin", to_index, methods=("GET", "POST")),
        Route("/admin/", handle, methods=("GET", "POST")),
        Route("/admin/<path:rest>", handle, methods=("GET", "POST")),
    ]
