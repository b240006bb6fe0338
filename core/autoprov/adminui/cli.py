"""``autoprov admin``: the accounts that may log in to the admin web UI."""

from __future__ import annotations

import sys

import click

from autoprov import hookimpl
from autoprov.adminui.tables import AdminUser
from autoprov.adminui.users import (
    UserError,
    check_password,
    create_user,
    get_user,
    remove_user,
    set_password,
)
from autoprov.cli import pass_site
from autoprov.site import Site


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


def _checked(fn, *args):  # type: ignore[no-untyped-def]
    try:
        return fn(*args)
    except UserError as exc:
        raise click.ClickException(str(exc)) from None


@click.group("admin")
def admin_group() -> None:
    """Accounts of the admin web UI (/admin/)."""


@admin_group.command("create-user")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
@pass_site
def create_user_cmd(site: Site, username: str, password_stdin: bool) -> None:
    """Create an admin account USERNAME (asks for its password)."""
    password = _password(password_stdin)
    _checked(check_password, password)
    _checked(create_user, username, password)
    click.echo(f"created admin user {username}")


@admin_group.command("passwd")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
@pass_site
def passwd_cmd(site: Site, username: str, password_stdin: bool) -> None:
    """Set USERNAME's password; the user's open sessions end."""
    _checked(get_user, username)  # before asking for a password
    password = _password(password_stdin)
    _checked(set_password, username, password)
    click.echo(f"password of {username} changed")


@admin_group.command("list")
@pass_site
def list_cmd(site: Site) -> None:
    """List admin accounts: name, created, last login (UTC)."""
    for user in AdminUser.select().order_by(AdminUser.username):
        last = user.last_login.strftime("%Y-%m-%d %H:%M") if user.last_login else "never"
        click.echo(f"{user.username}\t{user.created:%Y-%m-%d %H:%M}\t{last}")


@admin_group.command("remove")
@click.argument("username")
@pass_site
def remove_cmd(site: Site, username: str) -> None:
    """Remove the admin account USERNAME (its sessions end at once)."""
    _checked(remove_user, username)
    click.echo(f"removed admin user {username}")


@hookimpl
def autoprov_register_commands(cli: click.Group) -> None:
    cli.add_command(admin_group)
