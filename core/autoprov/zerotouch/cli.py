"""Commands: ``autoprov dhcp isc|kea|dnsmasq``, ``autoprov asterisk pjsip``."""

from __future__ import annotations

import click

from autoprov import hookimpl
from autoprov.cli import LazySite, pass_site
from autoprov.site import Site
from autoprov.zerotouch import dhcp, pjsip


@click.command("dhcp")
@click.argument("server", type=click.Choice(sorted(dhcp.WRITERS)))
@click.pass_context
def dhcp_command(ctx: click.Context, server: str) -> None:
    """Print the DHCP server configuration that hands [http] public_url to the installed models' phones
    (matched by MAC prefix, plus [dhcp] extra_ouis) as option 66 and 160; other clients get neither."""
    site = ctx.find_object(LazySite).get()
    try:
        offer = dhcp.build_offer(site.settings, site.models.values())
    except dhcp.DhcpError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(dhcp.WRITERS[server](offer), nl=False)


@click.group("asterisk")
def asterisk() -> None:
    """Asterisk configuration from the provisioning database."""


@asterisk.command("pjsip")
@pass_site
def asterisk_pjsip(site: Site) -> None:
    """Print a pjsip.conf include: endpoint, auth and aor for every extension ([asterisk] settings: context,
    allow, transport, templates). It holds the SIP passwords."""
    try:
        text = pjsip.pjsip_conf(site.settings.asterisk)
    except pjsip.PjsipError as exc:
        raise click.ClickException(f"{exc}; nothing was written") from None
    click.echo(text, nl=False)


@hookimpl
def autoprov_register_commands(cli: click.Group) -> None:
    cli.add_command(dhcp_command)
    cli.add_command(asterisk)
