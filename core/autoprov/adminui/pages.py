"""What a feature gives the admin UI: pages (``autoprov_admin_pages``), panels of a phone's page
(``autoprov_admin_phone_sections``) and its own Mako templates, which inherit the shared layout."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mako.lookup import TemplateLookup
from werkzeug.wrappers import Response

if TYPE_CHECKING:
    from autoprov.adminui.app import AdminRequest

CORE_TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class AdminPage:
    """A page under ``/admin/``: ``handler(ui, **url_values) -> Response``, reached after login only.

    ``rule`` is a Werkzeug rule below ``/admin/`` (``phones/<mac>``); ``endpoint`` names it for
    ``ui.url_for``. A page with a ``title`` is listed in the navigation, by ``order``. Every POST has passed
    the CSRF check before the handler runs.
    """

    rule: str
    endpoint: str
    handler: Callable[..., Response]
    methods: tuple[str, ...] = ("GET",)
    title: str | None = None
    order: int = 100


@dataclass(frozen=True)
class PhoneSection:
    """A panel of a phone's admin page from any feature: ``render(ui, mac) -> str`` (HTML, escaped by the
    feature's templates). Its forms post to the feature's own pages."""

    title: str
    render: Callable[[AdminRequest, str], str]
    order: int = 100


@dataclass
class Templates:
    """A feature's template directory; its templates ``<%inherit file="/admin_layout.mako"/>`` from core.

    Every expression is HTML-escaped (``default_filters=['h']``): a hostile name shows as text."""

    directory: Path
    extra: list[Path] = field(default_factory=list)

    @cached_property
    def lookup(self) -> TemplateLookup:
        return TemplateLookup(
            directories=[str(self.directory), *map(str, self.extra), str(CORE_TEMPLATES)],
            default_filters=["h"],
            input_encoding="utf-8",
            strict_undefined=True,
        )

    def text(self, ui: AdminRequest, name: str, **values: Any) -> str:
        return self.lookup.get_template(name).render(ui=ui, **values)

    def page(self, ui: AdminRequest, name: str, status: int = 200, **values: Any) -> Response:
        return Response(self.text(ui, name, **values), status=status, mimetype="text/html")


def templates_beside(module_file: str) -> Templates:
    """The ``templates/`` directory next to a module: ``templates_beside(__file__)``."""
    return Templates(Path(module_file).parent / "templates")
