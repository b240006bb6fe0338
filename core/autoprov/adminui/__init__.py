"""The admin web UI under ``/admin/``: login, sessions, CSRF, audit trail and the layout; features add pages
(``autoprov_admin_pages``) and panels of a phone's page (``autoprov_admin_phone_sections``)."""

from autoprov.adminui.pages import AdminPage, PhoneSection, Templates, templates_beside

__all__ = ["AdminPage", "PhoneSection", "Templates", "templates_beside"]
