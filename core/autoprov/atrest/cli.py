"""``autoprov secrets``: the key file of SIP passwords encrypted at rest, and re-encrypting every row; the
migration that gives the column room for encrypted values."""

from __future__ import annotations

import logging
from pathlib import Path

import click
import peewee
from playhouse.migrate import SchemaMigrator

from autoprov import hookimpl
from autoprov.atrest import PREFIX, SecretsUnavailable, add_key, create_key_file, keep_first_key
from autoprov.cli import LazySite, pass_site
from autoprov.credentials import AccessCredential
from autoprov.schema import Migration
from autoprov.site import Site
from autoprov.tables import Extension

log = logging.getLogger(__name__)

WIDE = 1024  # characters: a 128-character password (up to 512 bytes of UTF-8), encrypted, fits


def _key_file(site: Site) -> Path:
    if not site.settings.secrets.key_file:
        raise click.ClickException(f"[secrets] key_file is not set in {site.settings.source}: set it to a path "
                                   "outside the database's directory, e.g. /etc/autoprov/secrets.key")
    return Path(site.settings.secrets.key_file)


@click.group("secrets")
def secrets_group() -> None:
    """SIP passwords encrypted in the database ([secrets] key_file; see README, "Secrets at rest")."""


@secrets_group.command("keygen")
@click.option("--add", is_flag=True, help="Put a new key first in the existing file (the old ones still decrypt); "
                                          "then `autoprov secrets rotate`.")
@click.pass_context
def keygen(ctx: click.Context, add: bool) -> None:
    """Create the key file (0600) with a new key, or --add one to it for rotation."""
    site = ctx.find_object(LazySite).get()
    path = _key_file(site)
    try:
        if add:
            count = add_key(path)
            click.echo(f"added a new first key to {path} ({count} keys); now run `autoprov secrets rotate`")
            return
        create_key_file(path)
    except FileExistsError:
        raise click.ClickException(f"{path} exists: keep it (it decrypts the stored passwords), or use --add to "
                                   "start a rotation") from None
    except FileNotFoundError:
        raise click.ClickException(f"{path}: {'no such file' if add else 'its directory does not exist'}") from None
    except OSError as exc:
        raise click.ClickException(f"{path}: {exc.strerror}") from None
    click.echo(f"created {path} (0600); back it up apart from the database: without it, the stored SIP passwords "
               "are lost. Run `autoprov secrets rotate` to encrypt those already stored.")


@secrets_group.command("rotate")
@click.option("--drop-old", is_flag=True, help="Then keep only the first key in the key file.")
@click.option("--decrypt", is_flag=True, help="Store every password unencrypted again (before turning "
                                              "encryption off or using realtime views).")
@pass_site
def rotate(site: Site, drop_old: bool, decrypt: bool) -> None:
    """Re-encrypt every stored SIP password with the first key (unencrypted ones too), in one transaction."""
    keys = site.keyring
    if decrypt and drop_old:
        raise click.ClickException("--decrypt and --drop-old do not go together")
    if not decrypt:
        _key_file(site)
        keys.check()
    widen_secret_column(site.db, strict=True)
    mark = site.db.param
    done = {}
    with site.db.atomic():
        for table, column in _sealed_columns(site.db):
            # As stored, and written as computed: through a SecretField they would be converted.
            rows = site.db.execute_sql(f'SELECT id, "{column}" FROM "{table}"').fetchall()
            for pk, stored in rows:
                new = keys.unseal(stored) if decrypt else keys.reseal(stored)
                site.db.execute_sql(f'UPDATE "{table}" SET "{column}" = {mark} WHERE id = {mark}', (new, pk))
            done[table] = len(rows)
    login = done.get(AccessCredential._meta.table_name)
    click.echo(f"{done[Extension._meta.table_name]} SIP password(s) "
               f"{'stored unencrypted' if decrypt else 'encrypted with the first key'}"
               + (f", and the {login} row(s) of provisioning logins" if login else ""))
    if drop_old:
        dropped = keep_first_key(_key_file(site))
        click.echo(f"dropped {dropped} old key(s) from {_key_file(site)}")


def _sealed_columns(db: peewee.Database) -> list[tuple[str, str]]:
    """(table, column) of every stored secret: SIP passwords, and provisioning logins once that table exists."""
    columns = [(Extension._meta.table_name, "secret")]
    login = AccessCredential._meta.table_name
    if login in db.get_tables():
        columns += [(login, "password"), (login, "previous_password")]
    return columns


@secrets_group.command("status")
@pass_site
def status(site: Site) -> None:
    """Whether passwords are encrypted, with how many keys, and how many rows are still unencrypted."""
    table = Extension._meta.table_name
    stored = [s for (s,) in site.db.execute_sql(f'SELECT secret FROM "{table}"').fetchall()]
    sealed = sum(1 for s in stored if s.startswith(PREFIX))
    if site.keyring.enabled:
        try:
            site.keyring.check()
            click.echo(f"encryption on: {site.keyring.count} key(s) in {site.keyring.key_file}")
        except SecretsUnavailable as exc:
            raise click.ClickException(str(exc)) from None
    else:
        click.echo("encryption off: [secrets] key_file is not set")
    click.echo(f"{sealed} of {len(stored)} SIP password(s) stored encrypted")
    if site.keyring.enabled and sealed < len(stored):
        click.echo("run `autoprov secrets rotate` to encrypt the others")


# --- The column ------------------------------------------------------------------------------------------

def _dependent_views(db: peewee.Database) -> list[str]:
    """PostgreSQL views that read extension.secret (Asterisk realtime's ps_auths): they pin its type."""
    return [name for (name,) in db.execute_sql(
        "SELECT DISTINCT v.relname FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid "
        "JOIN pg_class v ON v.oid = r.ev_class JOIN pg_attribute a ON a.attrelid = d.refobjid "
        "AND a.attnum = d.refobjsubid WHERE d.refobjid = %s::regclass AND a.attname = 'secret' "
        "AND v.oid <> d.refobjid", (Extension._meta.table_name,)).fetchall()]


def widen_secret_column(db: peewee.Database, strict: bool = False) -> None:
    """Give extension.secret room for encrypted values (PostgreSQL checks lengths; SQLite does not). A view
    reading it (realtime) pins the type: ``strict`` refuses, else it is left and said in the log."""
    if not isinstance(db, peewee.PostgresqlDatabase):
        return
    table = Extension._meta.table_name
    (length,) = db.execute_sql(
        "SELECT character_maximum_length FROM information_schema.columns WHERE table_name = %s "
        "AND column_name = 'secret' AND table_schema = current_schema()", (table,)).fetchone()
    if length is None or length >= WIDE:
        return
    views = _dependent_views(db)
    if views:
        message = (f"view(s) {', '.join(views)} read extension.secret (Asterisk realtime): encrypted passwords "
                   "cannot be used with them (Asterisk would read the ciphertext), and the column is left at "
                   f"{length} characters")
        if strict:
            raise click.ClickException(message + "; drop the views first")
        log.warning("%s", message)
        return
    db.execute_sql(f'ALTER TABLE "{table}" ALTER COLUMN secret TYPE varchar({WIDE})')


def _widen(db: peewee.Database, migrator: SchemaMigrator) -> None:
    widen_secret_column(db)


@hookimpl
def autoprov_migrations() -> list[Migration]:
    return [Migration("secrets", 1, "room for encrypted SIP passwords (extension.secret up to 1,024 characters)",
                      _widen)]


@hookimpl
def autoprov_register_commands(cli: click.Group) -> None:
    cli.add_command(secrets_group)
