"""Commands: ``autoprov credentials show|rotate|site set``: the provisioning logins phones send (README, "Security:
HTTP credentials")."""

from __future__ import annotations

import datetime as dt

import click

from autoprov import credentials, hookimpl
from autoprov.cli import parse_mac, pass_site
from autoprov.credentials import SITE, AccessCredential
from autoprov.site import Site
from autoprov.tables import Phone, utcnow

MASK = "***"


def _state(row: AccessCredential, grace: int) -> str:
    parts = [f"rotated {row.rotated:%Y-%m-%d %H:%M:%S} UTC"]
    if row.previous_password:
        until = row.rotated + dt.timedelta(seconds=grace)
        parts.append(f"previous password valid until {until:%Y-%m-%d %H:%M:%S} UTC" if until > utcnow()
                     else "previous password expired")
    if row.owner != SITE:
        parts.append(f"authenticated since {row.confirmed:%Y-%m-%d %H:%M:%S} UTC" if row.confirmed
                     else "not yet authenticated (its first contact needs no credentials)")
    return "; ".join(parts)


@click.group("credentials")
def credentials_group() -> None:
    """The provisioning logins phones send over HTTP ([access] credentials)."""


@credentials_group.command("show")
@click.argument("mac", required=False)
@click.option("--reveal", is_flag=True, help="Print the passwords (they are secrets: mind who watches).")
@pass_site
def show(site: Site, mac: str | None, reveal: bool) -> None:
    """The site-wide login and every phone's own (or MAC's); passwords masked unless --reveal."""
    access = site.settings.access
    click.echo(f"# [access] credentials = {access.credentials!r}; rotated passwords stay valid "
               f"{access.credentials_grace} s")
    owners = [parse_mac(mac)] if mac else None
    query = AccessCredential.select().where(AccessCredential.owner != credentials.NONCE_KEY)
    if owners is not None:
        query = query.where(AccessCredential.owner.in_(owners))
    rows = sorted(query, key=lambda r: (r.owner != SITE, r.owner))
    if not rows:
        click.echo("no login yet" + (f" for {mac} (made when its config is first served)" if mac else ""))
    for row in rows:
        who = "site" if row.owner == SITE else row.owner
        click.echo(f"{who}: user {row.user} password {row.password if reveal else MASK}; "
                   f"{_state(row, access.credentials_grace)}")


@credentials_group.command("rotate")
@click.argument("mac", required=False)
@click.option("--all", "everyone", is_flag=True, help="Every phone that has a login.")
@pass_site
def rotate(site: Site, mac: str | None, everyone: bool) -> None:
    """A new random password for phone MAC (or --all); the old one stays valid for [access]
    credentials_grace, and each phone gets the new one when it next fetches its config."""
    if bool(mac) == everyone:
        raise click.UsageError("give a MAC or --all")
    if mac:
        owner = parse_mac(mac)
        if Phone.get_or_none(Phone.mac == owner) is None:
            raise click.ClickException(f"phone {owner} is not in the database")
        owners = [owner]
    else:
        owners = [row.owner for row in credentials.phones_with_logins()]
    with site.db.atomic():
        for owner in owners:
            credentials.rotate(owner)
    grace = site.settings.access.credentials_grace
    click.echo(f"rotated {len(owners)} phone login(s): {', '.join(owners) or 'none'}; the old passwords stay "
               f"valid {grace} s, so each phone must fetch its config within that time")
    if site.settings.access.credentials != "phone":
        click.echo(f"note: [access] credentials = {site.settings.access.credentials!r}: phones are not handed "
                   "their own logins now, so this affects no phone until it is \"phone\"")


@credentials_group.group("site")
def site_group() -> None:
    """The site-wide login."""


@site_group.command("set")
@click.option("--user", help="The user name (default: the current one, else 'autoprov').")
@click.option("--password", help="The password (default: a new random one). Visible in the shell's history.")
@pass_site
def site_set(site: Site, user: str | None, password: str | None) -> None:
    """Set (or rotate) the site-wide login; the previous password stays valid for [access] credentials_grace."""
    for value, is_user in ((user, True), (password, False)):
        why = credentials.login_problem(value, user=is_user) if value is not None else None
        if why is not None:
            raise click.ClickException(f"the {'user' if is_user else 'password'} {why}")
    current = AccessCredential.get_or_none(AccessCredential.owner == SITE)
    with site.db.atomic():
        row = credentials.rotate(SITE, password, user or (current.user if current else "autoprov"))
    mode = site.settings.access.credentials
    phones = Phone.select().count()
    if mode == "site":
        affected = f"all {phones} phone(s) get it in their configs and must send it"
    elif mode == "phone":
        affected = "phones still accept it besides their own logins; it is handed to none"
    else:
        affected = "no phone: [access] credentials = \"none\""
    shown = row.password if password is None else MASK
    click.echo(f"site login: user {row.user} password {shown}; affected: {affected}")


@hookimpl
def autoprov_register_commands(cli: click.Group) -> None:
    cli.add_command(credentials_group)
