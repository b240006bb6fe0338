"""What the security machinery of the phone request path shows an admin: ``autoprov audit`` (the audit trail
of secrets served, refusals, throttled clients and flagged first contacts, see ``autoprov.audit``) and its
admin page, ``/admin/access-audit``."""
