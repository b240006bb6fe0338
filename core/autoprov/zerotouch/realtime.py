"""PostgreSQL views Asterisk's realtime (sorcery ``realtime`` with res_config_pgsql or res_config_odbc) reads
as ``ps_endpoints``, ``ps_auths`` and ``ps_aors``: the same rows ``autoprov asterisk pjsip`` writes, straight
from the extension table, so nothing is exported at all.

The ``[asterisk]`` settings are written into the views as literals (they are checked to be plain names
first); templates do not exist in realtime and are not used.
"""

from __future__ import annotations

from autoprov.config import AsteriskSettings
from autoprov.tables import Extension
from autoprov.zerotouch.pjsip import check_settings

VIEWS = ("ps_endpoints", "ps_auths", "ps_aors")


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def views_sql(s: AsteriskSettings) -> str:
    """CREATE OR REPLACE VIEW statements for the three tables (PostgreSQL)."""
    check_settings(s)
    table = Extension._meta.table_name
    name = "btrim(e.first_name || ' ' || e.last_name)"
    transport = _literal(s.transport) if s.transport else "NULL"
    return f"""-- autoprov: Asterisk realtime PJSIP tables as views of the provisioning database.
CREATE OR REPLACE VIEW ps_endpoints AS
  SELECT e.user_id::text AS id, {transport}::text AS transport, e.user_id::text AS aors, e.user_id::text AS auth,
         {_literal(s.context)}::text AS context, 'all'::text AS disallow, {_literal(",".join(s.allow))}::text AS allow,
         CASE WHEN {name} = '' THEN '<' || e.user_id || '>'
              ELSE '"' || {name} || '" <' || e.user_id || '>' END::text AS callerid,
         CASE WHEN e.mailbox = '' THEN NULL
              ELSE split_part(e.mailbox, '@', 1) || '@' || {_literal(s.voicemail_context)} END::text AS mailboxes
  FROM "{table}" e;
CREATE OR REPLACE VIEW ps_auths AS
  SELECT e.user_id::text AS id, 'userpass'::text AS auth_type, e.user_id::text AS username,
         e.secret::text AS password
  FROM "{table}" e;
CREATE OR REPLACE VIEW ps_aors AS
  SELECT e.user_id::text AS id, {int(s.max_contacts)}::integer AS max_contacts
  FROM "{table}" e;
"""
